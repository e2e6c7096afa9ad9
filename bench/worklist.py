"""Worklist latency with many open tasks: rows bulk-inserted into the projection tables, queried
over HTTP the way coordinators and supervisors filter their lists."""

from __future__ import annotations

import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, insert, select, text

from carepath.engine.persistence.database import Database
from carepath.engine.persistence.tables import Instance, PathwayVersion, Task, TaskCandidate
from carepath.engine.queries import TaskFilter, _task_query

from .common import log, percentiles
from .pathway import KEY

LANES = ["Care Coordinator", "Pharmacy", "Social Work", "Scheduling", "Care Team Supervisor"]
BATCH = 5000


def group_of(lane: str) -> str:
    return lane.lower().replace(" ", "-")


def bulk_load(database_url: str, total_open: int, template_state: str) -> int:
    """Add instances, each with one open task, until `total_open` tasks are open. Returns rows added."""
    db = Database(database_url)
    try:
        with db.engine.begin() as connection:
            version_id = connection.scalar(select(PathwayVersion.id).where(PathwayVersion.key == KEY))
            have = connection.scalar(select(func.count()).select_from(Task).where(Task.state == "ready")) or 0
        rng, added, now = random.Random(7), 0, datetime.now(UTC)
        while have + added < total_open:
            count = min(BATCH, total_open - have - added)
            instances, tasks, candidates = [], [], []
            for _ in range(count):
                instance_id, task_id, lane = str(uuid.uuid4()), str(uuid.uuid4()), rng.choice(LANES)
                created = now - timedelta(minutes=rng.randint(0, 60 * 24 * 30))
                instances.append({"id": instance_id, "pathway_version_id": version_id, "pathway_key": KEY,
                                  "business_key": f"bulk-{instance_id}", "patient_id": f"pat-{rng.randint(1, 50000)}",
                                  "status": "running", "state": template_state, "data": {}, "incident": None,
                                  "call_bindings": {}, "lock_version": 1, "created_at": created,
                                  "updated_at": created, "ended_at": None, "started_by": "bench"})
                tasks.append({"id": task_id, "instance_id": instance_id, "pathway_key": KEY, "element_id": "call",
                              "name": rng.choice(["Call patient", "Book visit", "Reconcile medications"]),
                              "lane": lane, "kind": "user", "state": "ready", "assignee": None,
                              "priority": rng.choice([30, 50, 50, 50, 80]), "due_date": None, "documentation": None,
                              "created_at": created, "completed_at": None, "completed_by": None})
                candidates.append({"task_id": task_id, "kind": "group", "value": group_of(lane)})
            with db.engine.begin() as connection:
                connection.execute(insert(Instance), instances)
                connection.execute(insert(Task), tasks)
                connection.execute(insert(TaskCandidate), candidates)
            added += count
            log(f"worklist: {have + added} open tasks loaded")
        with db.engine.begin() as connection:
            if db.dialect == "postgresql":
                connection.execute(text("ANALYZE"))
            else:
                connection.execute(text("ANALYZE"))
        return added
    finally:
        db.dispose()


QUERIES: dict[str, dict[str, Any]] = {
    "lane": {"state": "ready", "lane": "Pharmacy", "limit": 50},
    "candidate_me": {"candidate": "me", "limit": 50},
    "priority_page_10": {"state": "ready", "sort": "priority", "limit": 50, "offset": 500},
    "text_search": {"q": "medication", "limit": 50},
}


def measure_worklist(base: str, token: str, requests: int) -> dict[str, Any]:
    results = {}
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        for name, params in QUERIES.items():
            client.get("/api/tasks", params=params).raise_for_status()  # warm up
            samples = []
            for _ in range(requests):
                t0 = time.perf_counter()
                client.get("/api/tasks", params=params).raise_for_status()
                samples.append(time.perf_counter() - t0)
            results[name] = percentiles(samples)
    return results


def explain_lane_query(database_url: str) -> str:
    db = Database(database_url)
    try:
        query = _task_query(TaskFilter(state="ready", lane="Pharmacy")).order_by(Task.created_at, Task.id).limit(50)
        sql = str(query.compile(db.engine, compile_kwargs={"literal_binds": True}))
        prefix = "EXPLAIN " if db.dialect == "postgresql" else "EXPLAIN QUERY PLAN "
        with db.engine.connect() as connection:
            rows = connection.execute(text(prefix + sql)).all()
        return "\n".join(" ".join(str(c) for c in row) for row in rows)
    finally:
        db.dispose()
