"""Stored bytes per active instance, and the server's resident memory as instances pile up."""

from __future__ import annotations

import random
from typing import Any

import httpx
from sqlalchemy import func, select

from carepath.engine.persistence.database import Database
from carepath.engine.persistence.tables import Event, Instance, Task, TaskCandidate, Timer

from .common import log

SHIPPED = "post-ed-follow-up"


def start_shipped(base: str, token: str, count: int) -> None:
    """Instances of the shipped pathway, taken one step in, for realistic state sizes."""
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        for n in range(count):
            body = client.post(f"/api/pathways/{SHIPPED}/instances", json={
                "business_key": f"ed-{n}", "patient_id": f"pat-ed-{n}", "data": {
                    "ed_visit_date": "2026-11-20", "diagnosis_category": "mental_illness",
                    "high_risk_chronic_conditions": 0}})
            body.raise_for_status()
            task = body.json()["open_tasks"][0]["id"]
            client.post(f"/api/tasks/{task}/complete", json={"data": {"reached": True}}).raise_for_status()


def state_sizes(database_url: str) -> dict[str, Any]:
    db = Database(database_url)
    try:
        with db.engine.connect() as connection:
            sizes = {}
            for key in connection.scalars(select(Instance.pathway_key).distinct()):
                avg, biggest, count = connection.execute(
                    select(func.avg(func.length(Instance.state)), func.max(func.length(Instance.state)),
                           func.count()).where(Instance.pathway_key == key, Instance.status == "running",
                                               ~Instance.business_key.startswith("bulk-"))).one()
                if count:
                    sizes[key] = {"instances": count, "avg_state_bytes": round(float(avg or 0)),
                                  "max_state_bytes": int(biggest or 0)}
            rows = {table.__tablename__: connection.scalar(select(func.count()).select_from(table))
                    for table in (Instance, Task, TaskCandidate, Timer, Event)}
        return {"by_pathway": sizes, "rows": rows}
    finally:
        db.dispose()


def touch_instances(base: str, token: str, instance_ids: list[str], requests: int) -> None:
    """Read many instances and page through the lists, as a busy day of users would."""
    rng = random.Random(3)
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        for n in range(requests):
            client.get(f"/api/instances/{rng.choice(instance_ids)}").raise_for_status()
            if n % 20 == 0:
                client.get("/api/instances", params={"limit": 200, "offset": rng.randint(0, 50_000)})
    log(f"footprint: read {requests} instances")
