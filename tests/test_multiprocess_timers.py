"""On PostgreSQL, several worker processes firing the same due timers fire each exactly once."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from carepath.engine.application import CarePath
from carepath.engine.identity import Principal, Role
from carepath.engine.persistence.database import Database
from carepath.engine.persistence.tables import Event, Timer
from carepath.engine.usecases.instances import start_instance
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


MANY = 1000


def _start_many(api: ApiClient, pid: str, count: int) -> list[str]:
    """`count` instances each waiting on one timer, started in-process (the HTTP path is tested elsewhere)."""
    lead = api.user("clinical_lead")
    api.deploy(lead, ("m.bpmn", d.boundary_timers(pid, reminder="PT1H", escalation="P3650D")))
    principal = Principal(lead, Role.CLINICAL_LEAD)
    return [start_instance(api.engine, principal, pid, business_key=f"{pid}-{n}").id for n in range(count)]


def _fired_and_left(api: ApiClient, now: datetime) -> tuple[Counter[str], int]:
    with api.engine.db.read() as session:
        fired = Counter(session.scalars(select(Event.instance_id).where(Event.type == "timer_fired")))
        left = len(session.scalars(select(Timer.id).where(Timer.state == "pending", Timer.due_at <= now)).all())
    return fired, left


@pytest.mark.postgres_only
@pytest.mark.parametrize("workers", [2, 4])
def test_a_thousand_due_timers_fire_exactly_once_with_several_workers(api: ApiClient, database_url: str,
                                                                     workers: int) -> None:
    ids = _start_many(api, f"many{workers}", MANY)
    now = api.engine.clock.advance(hours=2)  # type: ignore[attr-defined]
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        handled = pool.starmap(_fire_in_process, [(database_url, now.isoformat())] * workers)
    fired, left = _fired_and_left(api, now)
    assert sum(handled) == MANY
    assert fired == Counter(dict.fromkeys(ids, 1)) and left == 0
    assert all(n > 0 for n in handled), handled  # the work was shared, not done by one process


@pytest.mark.postgres_only
def test_a_worker_killed_mid_batch_loses_and_doubles_nothing(api: ApiClient, database_url: str, tmp_path) -> None:
    """`carepath worker` (the real process, on the wall clock) is killed with SIGKILL while it fires a
    batch; a second worker started afterwards fires the rest. Every timer fires exactly once."""
    ids = _start_many(api, "killed", MANY)  # started on the test clock, in the past: all due by the wall clock
    env = {**os.environ, "CAREPATH_DATABASE_URL": database_url, "CAREPATH_SWEEP_SECONDS": "1"}
    command = [sys.executable, "-m", "carepath.api.cli", "worker"]
    first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            fired, _ = _fired_and_left(api, datetime.now(UTC))
            if sum(fired.values()) >= MANY // 10:
                break
            time.sleep(0.05)
        os.kill(first.pid, signal.SIGKILL)
    finally:
        first.wait(timeout=30)
    fired_before, left_before = _fired_and_left(api, datetime.now(UTC))
    assert 0 < sum(fired_before.values()) < MANY and left_before > 0, "the kill did not land mid-batch"
    second = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and _fired_and_left(api, datetime.now(UTC))[1]:
            time.sleep(0.2)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)
    fired, left = _fired_and_left(api, datetime.now(UTC) + timedelta(seconds=1))
    assert left == 0
    assert fired == Counter(dict.fromkeys(ids, 1))
