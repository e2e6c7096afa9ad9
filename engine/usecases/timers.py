"""Firing due timers: claimed in the database, fired in the same transaction as the state change.

Due timers are claimed a batch at a time, earliest first: on PostgreSQL with SELECT ... FOR UPDATE
SKIP LOCKED, so several worker processes never fire one timer twice and share a burst between them;
on SQLite every write transaction begins IMMEDIATE, which serializes the (single) process's scheduler
against its own requests. A batch commits once (a commit and a claim per timer were a third of the
cost of a burst). It fires without savepoints first; only when one of its timers fails is it fired
again with a savepoint per timer, so the failing one is rolled back alone. A process that dies
mid-batch loses its transaction and with it every claim of the batch; another process fires those
timers later, once.
A timer whose firing fails is retried with exponential backoff before its instance goes to incident.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import undefer

from ..application import CarePath
from ..identity import SCHEDULER
from ..model import InstanceStatus, TimerState
from ..persistence.tables import Instance, Timer
from ..persistence.unit_of_work import UnitOfWork
from ..rules import TIMER_RULES, advance
from .after_steps import after_engine_steps
from .instance_rows import write_instances
from .measures import MEASURE_TIMER, measure_window_closed
from .notifications import fire_alert
from .projections import read_projection_rows
from .store import is_serialization_failure, load_workflow, lock_instance

log = logging.getLogger("carepath.timers")
BATCH_SIZE = 50  # timers per transaction: holds at most this many instances locked for ~2 ms each


class _FiringFailed(Exception):
    """The workflow raised an incident while firing, with attempts left: retry later."""


class _AlertFailed(Exception):
    """A deadline alert could not be written: give up on it, never block the timers after it."""


def fire_due_timers(app: CarePath, limit: int = 100) -> int:
    """Fire up to `limit` due timers, earliest first; returns how many were handled."""
    handled = 0
    while handled < limit:
        size = min(BATCH_SIZE, limit - handled)
        try:
            claimed = _fire_batch(app, size, careful=False)
        except Exception:  # one timer of the batch failed: fire them again, each in its own savepoint
            log.debug("a timer of the batch failed; firing the batch one savepoint at a time", exc_info=True)
            claimed = _fire_batch(app, size, careful=True)
        if not claimed:
            break
        handled += claimed
    return handled


def _fire_batch(app: CarePath, size: int, *, careful: bool) -> int:
    """Claim up to `size` due timers and fire them in one transaction. Not careful: any failure
    rolls the whole batch back (the caller then fires it carefully); careful: each timer in a
    savepoint, so a failing one is retried later or given up on alone. Savepoints cost two round
    trips a timer, and firing rarely fails."""
    with UnitOfWork(app) as uow:
        claimed = _claim(uow, size)
        # The instances were read (and on PostgreSQL locked) with their timers; holding them here keeps
        # them in the session, so firing reads no instance row again.
        instances = {instance.id: instance for _, instance in claimed}
        if not careful:  # one flush and three reads of projection rows for the batch, not a few per timer
            uow.batched = True
            uow.projection_rows = read_projection_rows(uow, {
                timer.instance_id for timer, instance in claimed
                if timer.kind == "bpmn" and instance.status in (InstanceStatus.RUNNING, InstanceStatus.INCIDENT)})
        for timer, _ in claimed:
            if timer.state != TimerState.PENDING:  # an earlier timer of the batch cancelled it (same instance)
                continue
            if not careful:
                _fire(uow, timer, instances)
                continue
            try:
                with uow.savepoint():
                    _fire(uow, timer, instances)
            except _AlertFailed as failure:
                _give_up_alert(uow, timer, str(failure))
            except _FiringFailed as failure:
                _retry_later(uow, timer, str(failure))
            except OperationalError as exc:
                if not is_serialization_failure(exc):
                    raise
                log.info("timer %s met a concurrent change; it stays due and fires on the next round", timer.id)
            except Exception as exc:  # a defect must not stop the batch nor spin on one timer
                log.exception("firing timer %s failed", timer.id)
                _retry_later(uow, timer, f"{type(exc).__name__}: {exc}")
        if not careful:
            write_instances(uow, instances.values())
        uow.commit()
        return len(claimed)


def _fire(uow: UnitOfWork, timer: Timer, instances: dict[str, Instance]) -> None:
    app = uow.app
    if timer.kind == MEASURE_TIMER:  # a measure's window closed after its episode ended
        measure_window_closed(uow, timer)
        return
    if timer.kind != "bpmn":  # a deadline alert: notifications only, the workflow does not run
        try:
            fire_alert(uow, timer)
        except Exception as exc:
            raise _AlertFailed(f"{type(exc).__name__}: {exc}") from exc
        return
    instance = instances.get(timer.instance_id) or lock_instance(uow, timer.instance_id)
    if instance.status not in (InstanceStatus.RUNNING, InstanceStatus.INCIDENT):
        advance(timer, TIMER_RULES, "cancel", f"timer {timer.id}")
        return
    workflow = load_workflow(uow, instance)
    had_incident = workflow.incident is not None
    workflow.run(app.clock)
    is_last = timer.attempts + 1 >= app.config.timer_max_attempts
    if workflow.incident is not None and not had_incident and not is_last:
        raise _FiringFailed(workflow.incident.message)
    after_engine_steps(uow, instance, workflow, SCHEDULER.name)
    if timer.state == TimerState.PENDING and timer.due_at <= app.now():
        # The engine did not consume it (e.g. the instance is in incident): do not spin on it.
        advance(timer, TIMER_RULES, "give_up", f"timer {timer.id}")
        timer.attempts += 1
        timer.last_error = (instance.incident or {}).get("message", "the timer could not fire")


def _give_up_alert(uow: UnitOfWork, timer: Timer, error: str) -> None:
    """A deadline alert that cannot be sent is marked failed (and recorded), not retried forever."""
    advance(timer, TIMER_RULES, "give_up", f"timer {timer.id}")
    timer.attempts += 1
    timer.last_error = error[:2000]
    uow.record("task_alert_failed", SCHEDULER.name, instance_id=timer.instance_id, task_id=timer.task_id,
               data={"kind": timer.kind, "error": timer.last_error})


def _retry_later(uow: UnitOfWork, timer: Timer, error: str) -> None:
    app = uow.app
    timer.attempts += 1
    timer.last_error = error[:2000]
    if timer.attempts >= app.config.timer_max_attempts:  # only a defect gets here: an incident stops earlier
        advance(timer, TIMER_RULES, "give_up", f"timer {timer.id}")
        uow.record("timer_failed", SCHEDULER.name, instance_id=timer.instance_id, task_id=timer.task_id,
                   data={"element_id": timer.element_id, "attempts": timer.attempts, "error": timer.last_error})
        return
    timer.due_at = app.now() + app.config.timer_retry_base * (2 ** (timer.attempts - 1))
    uow.record("timer_retry_scheduled", SCHEDULER.name, instance_id=timer.instance_id, task_id=timer.task_id,
               data={"element_id": timer.element_id, "attempt": timer.attempts, "error": timer.last_error,
                     "next_attempt_at": timer.due_at.isoformat()})


def _claim(uow: UnitOfWork, size: int) -> list[tuple[Timer, Instance]]:
    """Due timers, earliest first. On PostgreSQL each is claimed together with its instance's row
    (FOR UPDATE OF both, SKIP LOCKED): a batch never holds a timer whose instance a request or another
    worker is changing, and nobody can lock an instance of the batch until it commits, so a batch and a
    request, or two batches, never wait on each other in a cycle."""
    query = (select(Timer, Instance).join(Instance, Instance.id == Timer.instance_id)
             .options(undefer(Instance.state))
             .where(Timer.state == TimerState.PENDING, Timer.due_at <= uow.app.now())
             .order_by(Timer.due_at, Timer.id).limit(size))
    if uow.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(of=[Timer, Instance], skip_locked=True)
    return [(timer, instance) for timer, instance in uow.session.execute(query)]


def next_due_time(app: CarePath) -> datetime | None:
    with app.db.read() as session:
        return session.scalar(select(func.min(Timer.due_at)).where(Timer.state == TimerState.PENDING))


def count_overdue_timers(app: CarePath) -> int:
    with app.db.read() as session:
        return session.scalar(select(func.count()).select_from(Timer).join(Instance).where(
            Timer.state == TimerState.PENDING, Timer.due_at <= app.now())) or 0
