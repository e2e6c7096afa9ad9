"""The scheduler wakes the process at the next due time; the database says what is due."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from carepath.engine.application import CarePath
from carepath.engine.scheduler import TimerScheduler
from tests.support import diagrams as d
from tests.support.api import ApiClient


def test_scheduler_fires_a_timer_when_it_comes_due(api: ApiClient) -> None:
    lead = api.user("clinical_lead")
    api.deploy(lead, ("t.bpmn", d.boundary_timers("t", reminder="PT1S", escalation="P30D")))
    real = CarePath(api.engine.db, lambda: datetime.now(UTC), api.engine.config)
    scheduler = TimerScheduler(real, sweep_seconds=3600)
    scheduler.start()
    try:
        from carepath.engine.identity import Principal, Role
        from carepath.engine.usecases.instances import start_instance

        started = start_instance(real, Principal("lead", Role.CLINICAL_LEAD), "t", business_key="wake-1")
        deadline = time.monotonic() + 30
        names: list[str] = []
        while time.monotonic() < deadline:
            names = sorted(t["name"] for t in api.get(f"/api/instances/{started.id}", lead).json()["open_tasks"])
            if "Reminder" in names:
                break
            time.sleep(0.2)
        assert names == ["Call patient", "Reminder"]
    finally:
        scheduler.shutdown()


def test_timers_due_while_down_fire_at_start_up_in_due_order(api: ApiClient) -> None:
    lead = api.user("clinical_lead")
    api.deploy(lead, ("t.bpmn", d.boundary_timers("t", reminder="PT1H", escalation="P30D")))
    first = api.start(lead, "t").json()
    api.engine.clock.advance(minutes=10)  # type: ignore[attr-defined]
    second = api.start(lead, "t").json()
    api.engine.clock.advance(hours=3)  # type: ignore[attr-defined]
    scheduler = TimerScheduler(api.engine, sweep_seconds=3600)
    scheduler.start()  # the first sweep runs at once
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            pending = [i for i in (first, second)
                       if "Reminder" not in [t["name"] for t in api.get(f"/api/instances/{i['id']}", lead)
                                             .json()["open_tasks"]]]
            if not pending:
                break
            time.sleep(0.2)
        assert pending == []
    finally:
        scheduler.shutdown()
    from sqlalchemy import select

    from carepath.engine.persistence.tables import Event

    with api.engine.db.read() as session:
        fired = session.scalars(select(Event).where(Event.type == "timer_fired").order_by(Event.id)).all()
    assert [e.instance_id for e in fired] == [first["id"], second["id"]]
    assert [round(e.data["late_by_seconds"]) for e in fired] == [2 * 3600 + 600, 2 * 3600]
