"""Deadline alerts for human tasks, and delivering notifications through the configured channels.

A task with a due date gets two product timers in the `timers` table (kind "reminder" at the
configured share of its time, kind "overdue" at the due date), claimed and fired exactly once like
the diagram's timers but without running the workflow. Firing writes notification rows, one per
channel; `deliver_notifications` sends them afterwards, retrying with backoff, and records every
attempt in the instance's history.
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import func, select, update

from ..application import CarePath
from ..calendars import DeadlineError
from ..identity import SCHEDULER, Role
from ..model import OPEN_TASK_STATES, NotificationState, TimerState
from ..notifications import Notification, alert_subject
from ..persistence.tables import Instance, NotificationRecord, PathwayVersion, Task, Timer, User, UserGroup
from ..persistence.unit_of_work import UnitOfWork
from ..rules import NOTIFICATION_RULES, TIMER_RULES, advance

ALERT_KINDS = ("reminder", "overdue")


def schedule_alerts(uow: UnitOfWork, task: Task, *, new_task: bool = False) -> None:
    """(Re)schedule the deadline alerts of a task from its due date; none when it has none. Alerts exist
    only while a task has a due date, so a task just created has none to cancel."""
    if not new_task:
        cancel_alerts(uow, task.id)
    if task.due_date is None:
        return
    now = uow.app.now()
    due_times = uow.app.config.alerts_for(task.pathway_key).alert_times(task.created_at, task.due_date, now)
    for kind, due in due_times:
        uow.session.add(Timer(instance_id=task.instance_id, task_id=task.id, element_id=task.element_id, kind=kind,
                              due_at=due, state=TimerState.PENDING.value, attempts=0, created_at=now))
    if due_times:
        created = [due for _, due in due_times]
        uow.after_commit(lambda: uow.app.timers_scheduled(created))


def cancel_alerts(uow: UnitOfWork, task_id: str) -> None:
    uow.session.execute(update(Timer).where(Timer.task_id == task_id, Timer.kind.in_(ALERT_KINDS),
                                            Timer.state == TimerState.PENDING).values(state=TimerState.CANCELLED.value))


def fire_alert(uow: UnitOfWork, timer: Timer) -> None:
    """A reminder or overdue alert came due: notify, if the task is still open."""
    now = uow.app.now()
    advance(timer, TIMER_RULES, "fire", f"timer {timer.id}")
    timer.fired_at = now
    task = uow.session.get(Task, timer.task_id)
    if task is None or task.state not in OPEN_TASK_STATES:
        return
    late = round((now - timer.due_at).total_seconds(), 3)
    due = task.due_date.isoformat() if task.due_date else None
    if timer.kind == "reminder":
        recipients = [f"user:{task.assignee}"] if task.assignee else list(task.audience or [])
    else:
        recipients = _supervisors(uow, task)
    subject = alert_subject(timer.kind, task.name, task.due_date, task.assignee, _zone_of(uow, task))
    payload = {"task_name": task.name, "pathway": task.pathway_key, "due_date": due, "assignee": task.assignee,
               "state": task.state, "alert_due_at": timer.due_at.isoformat(), "late_by_seconds": late}
    notify(uow, timer.kind, subject, recipients, payload, instance_id=task.instance_id, task_id=task.id)
    uow.record(f"task_{timer.kind}_alert", SCHEDULER.name, instance_id=task.instance_id, task_id=task.id,
               data={"recipients": recipients, "due_date": due, "late_by_seconds": late})


def _zone_of(uow: UnitOfWork, task: Task) -> tzinfo:
    """The care setting's zone as the task's pathway counts time (the configured one when it names none)."""
    instance = uow.session.get(Instance, task.instance_id)
    version = uow.session.get(PathwayVersion, instance.pathway_version_id) if instance else None
    try:
        return uow.app.time_context(version.time_settings if version else None).tz
    except DeadlineError:
        return uow.app.time_context().tz


def _supervisors(uow: UnitOfWork, task: Task) -> list[str]:
    """Active supervisors of the task's groups; the admins when its groups have none."""
    groups = [key.split(":", 1)[1] for key in task.audience or () if key.startswith("group:")]
    names = uow.session.scalars(select(User.name).join(UserGroup, UserGroup.user_id == User.id).where(
        UserGroup.group_name.in_(groups), User.role == Role.SUPERVISOR.value, User.active.is_(True))
        .distinct().order_by(User.name)).all() if groups else []
    if names:
        return [f"user:{n}" for n in names]
    return ["role:admin"]


def notify(uow: UnitOfWork, kind: str, subject: str, recipients: list[str], payload: dict[str, Any], *,
           instance_id: str | None, task_id: str | None) -> None:
    now = uow.app.now()
    for channel in uow.app.channels:
        uow.session.add(NotificationRecord(kind=kind, channel=channel.name, instance_id=instance_id, task_id=task_id,
                                           subject=subject[:500], recipients=recipients, payload=payload,
                                           state=NotificationState.PENDING.value, attempts=0, next_attempt_at=now,
                                           created_at=now))


def deliver_notifications(app: CarePath, limit: int = 100) -> int:
    """Send up to `limit` pending notifications; returns how many were attempted."""
    attempted = 0
    while attempted < limit and _deliver_next(app):
        attempted += 1
    return attempted


# How long a claimed notification is left to its deliverer before another process may try it again
# (a process that dies mid-delivery): delivery is at least once.
DELIVERY_LEASE = timedelta(minutes=5)


def _deliver_next(app: CarePath) -> bool:
    """Claim one due notification (a short transaction), deliver it outside any transaction (a channel
    may wait on the network; no lock is held meanwhile), then record the outcome."""
    with UnitOfWork(app) as uow:
        now = app.now()
        query = (select(NotificationRecord).where(NotificationRecord.state == NotificationState.PENDING,
                                                  NotificationRecord.next_attempt_at <= now)
                 .order_by(NotificationRecord.next_attempt_at, NotificationRecord.id).limit(1))
        if uow.session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        row = uow.session.scalars(query).first()
        if row is None:
            return False
        row.attempts += 1
        row.next_attempt_at = now + DELIVERY_LEASE
        claimed, attempt, channel_name = _notification(row), row.attempts, row.channel
        uow.commit()
    channel = {c.name: c for c in app.channels}.get(channel_name)
    error = None
    try:
        if channel is None:
            raise RuntimeError(f"channel '{channel_name}' is not configured any more")
        channel.deliver(claimed)
    except Exception as exc:  # any failure of a channel is a failed attempt, retried
        error = f"{type(exc).__name__}: {exc}"[:2000]
    _record_delivery(app, claimed.id, attempt, error)
    return True


def _record_delivery(app: CarePath, notification_id: int, attempt: int, error: str | None) -> None:
    with UnitOfWork(app) as uow:
        now = app.now()
        row = uow.session.get(NotificationRecord, notification_id, with_for_update=True)
        if row is None or row.state != NotificationState.PENDING or row.attempts != attempt:
            return  # the lease ran out and another process took it over
        if error is None:
            advance(row, NOTIFICATION_RULES, "deliver", f"notification {row.id}")
            row.delivered_at, row.last_error = now, None
            uow.record("notification_delivered", SCHEDULER.name, instance_id=row.instance_id, task_id=row.task_id,
                       data={"notification_id": row.id, "channel": row.channel, "kind": row.kind,
                             "attempt": row.attempts, "recipients": row.recipients})
        else:
            row.last_error = error
            if row.attempts >= app.config.notification_max_attempts:
                advance(row, NOTIFICATION_RULES, "give_up", f"notification {row.id}")
            else:
                row.next_attempt_at = now + app.config.notification_retry_base * (2 ** (row.attempts - 1))
            gave_up = row.state == NotificationState.FAILED
            retry = {} if gave_up else {"next_attempt_at": row.next_attempt_at.isoformat()}
            uow.record("notification_failed", SCHEDULER.name, instance_id=row.instance_id, task_id=row.task_id,
                       data={"notification_id": row.id, "channel": row.channel, "attempt": row.attempts,
                             "error": row.last_error, "gave_up": gave_up, **retry})
        uow.commit()


def _notification(row: NotificationRecord) -> Notification:
    return Notification(id=row.id, kind=row.kind, subject=row.subject, recipients=tuple(row.recipients),
                        instance_id=row.instance_id, task_id=row.task_id, created_at=row.created_at,
                        payload=dict(row.payload))


def next_notification_time(app: CarePath) -> datetime | None:
    with app.db.read() as session:
        return session.scalar(select(func.min(NotificationRecord.next_attempt_at))
                              .where(NotificationRecord.state == NotificationState.PENDING))

