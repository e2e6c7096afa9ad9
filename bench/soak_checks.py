"""The soak test's invariants, read from the database after the load (bench/soak.py):

- every completion a client was answered 200 for is in the history exactly once;
- no task was completed twice;
- projections equal the engine's state: each episode's open task rows and pending timer rows are exactly
  what its stored workflow has open and waiting;
- every timer fired once: no timer has two `timer_fired` entries, and none is left pending past due;
- `carepath audit verify` finds every history chain intact.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from carepath.engine.model import OPEN_TASK_STATES, InstanceStatus, TimerState
from carepath.engine.persistence.database import Database
from carepath.engine.persistence.tables import Event, Instance, Task, Timer

SETTLE = timedelta(seconds=5)  # a timer due this long before the check should have fired


def check_invariants(database_url: str, answered_200: list[str]) -> dict[str, dict[str, Any]]:
    db = Database(database_url)
    try:
        with db.read() as session:
            completed = Counter(session.scalars(select(Event.task_id).where(Event.type == "task_completed")))
            fired = Counter(session.scalars(select(Event.task_id).where(Event.type == "timer_fired")))
            overdue = session.scalar(select(Timer.id).where(Timer.state == TimerState.PENDING,
                                                            Timer.due_at < datetime.now(UTC) - SETTLE).limit(1))
            projections = _projection_mismatches(db, session)
    finally:
        db.dispose()
    missing = [t for t in answered_200 if completed[t] != 1]
    twice = [t for t, n in completed.items() if n > 1]
    fired_twice = [t for t, n in fired.items() if n > 1]
    return {
        "each_200_in_history_once": {"ok": not missing, "checked": len(answered_200), "bad": missing[:10]},
        "no_task_completed_twice": {"ok": not twice, "checked": len(completed), "bad": twice[:10]},
        "projections_equal_engine_state": {"ok": not projections["bad"], **projections},
        "every_timer_fired_once": {"ok": not fired_twice and overdue is None, "checked": len(fired),
                                   "bad": fired_twice[:10], "pending_past_due": overdue},
        "audit_verify_intact": _audit_verify(database_url),
    }


def _projection_mismatches(db: Database, session: Any) -> dict[str, Any]:
    from carepath.engine.application import CarePath
    from carepath.engine.persistence.unit_of_work import UnitOfWork
    from carepath.engine.usecases.store import load_workflow

    app = CarePath(db, lambda: datetime.now(UTC))
    running = list(session.scalars(select(Instance.id).where(Instance.status == InstanceStatus.RUNNING)))
    bad: list[str] = []
    for instance_id in running:
        open_rows = set(session.scalars(select(Task.id).where(Task.instance_id == instance_id,
                                                             Task.state.in_(OPEN_TASK_STATES))))
        pending_rows = set(session.scalars(select(Timer.task_id).where(
            Timer.instance_id == instance_id, Timer.state == TimerState.PENDING, Timer.kind == "bpmn")))
        with UnitOfWork(app) as uow:
            instance = uow.session.get(Instance, instance_id)
            snapshot = load_workflow(uow, instance).snapshot()
        if {t.id for t in snapshot.open_tasks} != open_rows or {t.task_id for t in snapshot.timers} != pending_rows:
            bad.append(instance_id)
    return {"checked": len(running), "bad": bad[:10]}


def _audit_verify(database_url: str) -> dict[str, Any]:
    result = subprocess.run([sys.executable, "-m", "carepath.api.cli", "audit", "verify"], capture_output=True,
                            text=True, env={**os.environ, "CAREPATH_DATABASE_URL": database_url})
    last = (result.stdout.strip().splitlines() or [""])[-1]
    return {"ok": result.returncode == 0, "exit": result.returncode, "said": last[:300]}
