"""On PostgreSQL, several worker processes firing the same due timers fire each exactly once."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from datetime import datetime

import pytest
from sqlalchemy import select

from carepath.engine.application import CarePath
from carepath.engine.persistence.database import Database
from carepath.engine.persistence.tables import Event, Timer
from carepath.engine.usecases.timers import fire_due_timers
from tests.support import diagrams as d
from tests.support.api import ApiClient

WORKERS = 3
INSTANCES = 30


def _fire_in_process(url: str, now_iso: str) -> int:
    now = datetime.fromisoformat(now_iso)
    app = CarePath(Database(url), lambda: now)
    try:
        return fire_due_timers(app, limit=10_000)
    finally:
        app.db.dispose()


@pytest.mark.postgres_only
def test_due_timers_fire_exactly_once_across_processes(api: ApiClient, database_url: str) -> None:
    lead = api.user("clinical_lead")
    api.deploy(lead, ("t.bpmn", d.boundary_timers("t", reminder="PT1H", escalation="P30D")))
    ids = [api.start(lead, "t").json()["id"] for _ in range(INSTANCES)]
    now = api.engine.clock.advance(hours=2)  # type: ignore[attr-defined]
    with multiprocessing.get_context("spawn").Pool(WORKERS) as pool:
        handled = pool.starmap(_fire_in_process, [(database_url, now.isoformat())] * WORKERS)
    assert sum(handled) == INSTANCES
    with api.engine.db.read() as session:
        fired = Counter(session.scalars(select(Event.instance_id).where(Event.type == "timer_fired")))
        pending_due = session.scalars(select(Timer).where(Timer.state == "pending", Timer.due_at <= now)).all()
    assert fired == Counter(dict.fromkeys(ids, 1))
    assert pending_due == []
    for instance_id in ids:
        names = sorted(t["name"] for t in api.get(f"/api/instances/{instance_id}", lead).json()["open_tasks"])
        assert names == ["Call patient", "Reminder"]
