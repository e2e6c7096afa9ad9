"""Firing due timers: claimed in the database, fired in the same transaction as the state change.

On PostgreSQL the due row is claimed with SELECT ... FOR UPDATE SKIP LOCKED, so several worker
processes never fire one timer twice; a process that dies mid-fire loses its transaction and with
it the claim, and another process fires the timer later. On SQLite every write transaction begins
IMMEDIATE, which serializes the (single) process's scheduler against its own requests.
A timer whose firing fails is retried with exponential backoff before its instance goes to incident.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from ..application import CarePath
from ..identity import SCHEDULER
from ..model import InstanceStatus
from ..persistence.tables import Instance, Timer
from ..persistence.unit_of_work import UnitOfWork
from .notifications import fire_alert
from .store import load_workflow, lock_instance, save_workflow


class _FiringFailed(Exception):
    def __init__(self, timer_id: int, message: str) -> None:
        super().__init__(message)
        self.timer_id = timer_id


def fire_due_timers(app: CarePath, limit: int = 100) -> int:
    """Fire up to `limit` due timers, earliest first; returns how many were handled."""
    handled = 0
    while handled < limit:
        try:
            if not _fire_next(app, final_attempt=False):
                break
        except _AlertFailed as failure:
            _give_up_alert(app, failure.timer_id, str(failure))
        except _FiringFailed as failure:
            _record_failure(app, failure)
        handled += 1
    return handled


def _fire_next(app: CarePath, *, final_attempt: bool, timer_id: int | None = None) -> bool:
    with UnitOfWork(app) as uow:
        timer = _claim(uow, timer_id)
        if timer is None:
            return False
        if timer.kind != "bpmn":  # a deadline alert: notifications only, the workflow does not run
            try:
                fire_alert(uow, timer)
            except Exception as exc:  # never let one alert block the timers due after it
                raise _AlertFailed(timer.id, f"{type(exc).__name__}: {exc}") from exc
            uow.commit()
            return True
        instance = lock_instance(uow, timer.instance_id)
        if instance.status not in (InstanceStatus.RUNNING, InstanceStatus.INCIDENT):
            timer.state = "cancelled"
            uow.commit()
            return True
        workflow = load_workflow(uow, instance)
        had_incident = workflow.incident is not None
        workflow.run(app.clock)
        is_last = final_attempt or timer.attempts + 1 >= app.config.timer_max_attempts
        if workflow.incident is not None and not had_incident and not is_last:
            raise _FiringFailed(timer.id, workflow.incident.message)
        save_workflow(uow, instance, workflow, SCHEDULER.name)
        if timer.state == "pending" and timer.due_at <= app.now():
            # The engine did not consume it (e.g. the instance is in incident): do not spin on it.
            timer.state, timer.attempts = "failed", timer.attempts + 1
            timer.last_error = (instance.incident or {}).get("message", "the timer could not fire")
        uow.commit()
        return True


class _AlertFailed(_FiringFailed):
    pass


def _give_up_alert(app: CarePath, timer_id: int, error: str) -> None:
    """A deadline alert that cannot be sent is marked failed (and recorded), not retried forever."""
    with UnitOfWork(app) as uow:
        timer = uow.session.get(Timer, timer_id, with_for_update=True)
        if timer is not None and timer.state == "pending":
            timer.state, timer.attempts = "failed", timer.attempts + 1
            timer.last_error = error[:2000]
            uow.record("task_alert_failed", SCHEDULER.name, instance_id=timer.instance_id, task_id=timer.task_id,
                       data={"kind": timer.kind, "error": timer.last_error})
            uow.commit()


def _claim(uow: UnitOfWork, timer_id: int | None) -> Timer | None:
    now = uow.app.now()
    query = select(Timer).where(Timer.state == "pending", Timer.due_at <= now)
    if timer_id is not None:
        query = query.where(Timer.id == timer_id)
    query = query.order_by(Timer.due_at, Timer.id).limit(1)
    if uow.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return uow.session.scalars(query).first()


def _record_failure(app: CarePath, failure: _FiringFailed) -> None:
    with UnitOfWork(app) as uow:
        timer = uow.session.get(Timer, failure.timer_id, with_for_update=True)
        if timer is None or timer.state != "pending":
            return
        timer.attempts += 1
        timer.last_error = str(failure)[:2000]
        delay = app.config.timer_retry_base * (2 ** (timer.attempts - 1))
        timer.due_at = app.now() + delay
        uow.record("timer_retry_scheduled", SCHEDULER.name, instance_id=timer.instance_id, task_id=timer.task_id,
                   data={"element_id": timer.element_id, "attempt": timer.attempts, "error": timer.last_error,
                         "next_attempt_at": timer.due_at.isoformat()})
        uow.commit()


def next_due_time(app: CarePath) -> datetime | None:
    with app.db.read() as session:
        return session.scalar(select(func.min(Timer.due_at)).where(Timer.state == "pending"))


def count_overdue_timers(app: CarePath) -> int:
    with app.db.read() as session:
        return session.scalar(select(func.count()).select_from(Timer).join(Instance).where(
            Timer.state == "pending", Timer.due_at <= app.now())) or 0
