"""Keeping the task, timer and message-subscription projections in step with the engine.

The projections are what lists, worklists, the scheduler and message correlation query, so they
are rewritten from the engine's snapshot after every change, in the same transaction. Tasks that
SpiffWorkflow dropped (cancelled branches, interrupted activities) are marked cancelled here.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import BindParameter, bindparam, delete, func, inspect, select, text

from ..application import CarePath
from ..identity import SCHEDULER, offered_groups
from ..model import (
    EVERYONE,
    OPEN_TASK_STATES,
    InstanceStatus,
    MessageWait,
    OpenTask,
    Snapshot,
    TaskState,
    TimerState,
    TimerWait,
    audience_keys,
)
from ..persistence.tables import Instance, MessageSubscription, Task, TaskCandidate, TaskCountDelta, Timer
from ..persistence.unit_of_work import UnitOfWork
from ..rules import TASK_RULES, TIMER_RULES, advance, engine_step
from .external_task_projection import sync_external_tasks
from .notifications import cancel_alerts, schedule_alerts
from .specs import pathway_name

WaitKey = tuple[str, str, str]  # a message wait: (waiting task id, message name, correlation key)


@dataclass(frozen=True)
class TimerChange:
    """A pending timer that changed in a step: `fired` when the workflow ran it (a timer event it
    completed, or a cycle that moved on), else cancelled when it ended or rescheduled; `next_due`
    while it still waits (a cycle's next time)."""

    task_id: str
    fired: bool
    next_due: datetime | None


@dataclass(frozen=True)
class ProjectionDiff:
    """What one step changed, from what was open before and the engine's new snapshot."""

    tasks_closed: list[str] = field(default_factory=list)  # completed or cancelled
    tasks_opened: list[OpenTask] = field(default_factory=list)
    timers_changed: list[TimerChange] = field(default_factory=list)  # in due order
    timers_scheduled: list[TimerWait] = field(default_factory=list)
    waits_ended: list[WaitKey] = field(default_factory=list)
    waits_started: list[tuple[WaitKey, MessageWait]] = field(default_factory=list)

    @property
    def timers_fired(self) -> set[str]:
        return {change.task_id for change in self.timers_changed if change.fired}


def diff_projections(snapshot: Snapshot, *, open_tasks: Iterable[str], pending: Mapping[str, tuple[datetime, str]],
                     waits: Iterable[WaitKey], business_key: str, now: datetime,
                     completed: Callable[[Iterable[str]], set[str]]) -> ProjectionDiff:
    """The pure diff the server's projections and `carepath simulate` both apply. `pending`: waiting timers
    by task id, (due at, element id); `completed`: which of the given timer task ids the workflow ran.
    A timer fired when the workflow completed its event or a cycle moved on to its next time; one that
    came due but whose activity ended first (a user completed the task, the episode was cancelled) did
    not fire: it is cancelled."""
    current = {t.id: t for t in snapshot.open_tasks}
    before = list(open_tasks)  # in the caller's order, which the history follows
    was_open = set(before)
    waiting = {t.task_id: t for t in snapshot.timers}
    ended = [task_id for task_id, (due, _) in pending.items() if task_id not in waiting and due <= now]
    moved_on = {task_id for task_id, (due, _) in pending.items()
                if task_id in waiting and waiting[task_id].due_at != due and due <= now}
    fired = moved_on | (completed(ended) if ended else set())
    changed = []
    for task_id, (due, _) in sorted(pending.items(), key=lambda item: item[1]):
        wait = waiting.get(task_id)
        if wait is None or wait.due_at != due:
            changed.append(TimerChange(task_id, task_id in fired, wait.due_at if wait else None))
    wanted = {(w.task_id, w.message_name, w.correlation_value or business_key): w for w in snapshot.messages}
    existing = list(waits)
    had = set(existing)
    return ProjectionDiff(
        tasks_closed=[task_id for task_id in before if task_id not in current],
        tasks_opened=[task for task_id, task in current.items() if task_id not in was_open],
        timers_changed=changed,
        timers_scheduled=[wait for task_id, wait in waiting.items() if task_id not in pending],
        waits_ended=[key for key in existing if key not in wanted],
        waits_started=[(key, wait) for key, wait in wanted.items() if key not in had])


@dataclass(frozen=True)
class ProjectionRows:
    """An instance's projection rows a save diffs the engine's snapshot against."""

    open_tasks: dict[str, Task]
    pending: dict[str, Timer]  # the engine's pending timers, by task id
    subscriptions: dict[WaitKey, MessageSubscription]


# Built once: constructing them cost about what running them did, in every save.
_IDS: BindParameter[list[str]] = bindparam("ids", expanding=True)
_OPEN_TASK_ROWS = select(Task).where(Task.instance_id.in_(_IDS), Task.state.in_(OPEN_TASK_STATES))
_PENDING_TIMER_ROWS = select(Timer).where(Timer.instance_id.in_(_IDS), Timer.state == TimerState.PENDING,
                                          Timer.kind == "bpmn")
_SUBSCRIPTION_ROWS = select(MessageSubscription).where(MessageSubscription.instance_id.in_(_IDS))


def read_projection_rows(uow: UnitOfWork, instance_ids: Collection[str], *,
                         subscriptions: bool = True) -> dict[str, ProjectionRows]:
    """The projection rows of the given instances, in three reads whatever their number (two without their
    message subscriptions, for pathways that have no message event)."""
    session = uow.session
    rows = {instance_id: ProjectionRows({}, {}, {}) for instance_id in instance_ids}
    ids = {"ids": list(rows)}
    with session.no_autoflush:
        for task in session.scalars(_OPEN_TASK_ROWS, ids):
            rows[task.instance_id].open_tasks[task.id] = task
        for timer in session.scalars(_PENDING_TIMER_ROWS, ids):
            rows[timer.instance_id].pending[timer.task_id] = timer
        waits = session.scalars(_SUBSCRIPTION_ROWS, ids) if subscriptions else ()
        for wait in waits:
            rows[wait.instance_id].subscriptions[(wait.task_id, wait.message_name, wait.correlation_key)] = wait
    return rows


def sync_projections(uow: UnitOfWork, instance: Instance, snapshot: Snapshot, actor: str,
                     completed_task_id: str | None, completed: Callable[[Iterable[str]], set[str]]) -> None:
    """Rows first (up to three reads, or none when a batch read them), then every change, flushed together
    by the caller: an autoflush between the reads would split the writes into a round trip each. An instance
    not yet inserted (its start) has no rows to read; one whose pathway has no message event, no
    subscription (unless it was just moved to that version, away from one that may have had)."""
    session = uow.session
    fresh = inspect(instance).pending
    rows = uow.projection_rows.pop(instance.id, None)  # read for the batch: only for the first save
    if rows is None and fresh:
        rows = ProjectionRows({}, {}, {})
    elif rows is None:
        if session.new or (uow.batched and session.dirty):  # this transaction's changes must be visible
            session.flush()
        waits = snapshot.has_message_events or instance.id in uow.migrated_instances
        rows = read_projection_rows(uow, [instance.id], subscriptions=waits)[instance.id]
    open_rows, pending, subscriptions = rows.open_tasks, rows.pending, rows.subscriptions
    with session.no_autoflush:
        diff = diff_projections(snapshot, open_tasks=open_rows, waits=subscriptions,
                                pending={task_id: (t.due_at, t.element_id) for task_id, t in pending.items()},
                                business_key=instance.business_key, now=uow.app.now(), completed=completed)
        cause = _cause(instance, completed_task_id, open_rows, pending, diff.timers_fired)
        _sync_tasks(uow, instance, diff, actor, completed_task_id, open_rows, cause)
        _sync_timers(uow, instance, diff, actor, pending, cause)
        _sync_subscriptions(uow, instance, diff, actor, subscriptions, cause)
    sync_external_tasks(uow, instance, snapshot, actor, cause)


def _cause(instance: Instance, completed_task_id: str | None, open_rows: dict[str, Task],
           pending: dict[str, Timer], fired: set[str]) -> str:
    """Why work that was waiting ends in this save, for the history of what it cancels."""
    if instance.status == InstanceStatus.CANCELLED:
        return "the episode was cancelled"
    names = sorted({pending[task_id].element_id for task_id in fired})
    if names:
        return f"timer{'s' if len(names) > 1 else ''} {', '.join(names)} fired"
    completed = open_rows.get(completed_task_id) if completed_task_id else None
    if completed is not None:
        return f"task {completed.element_id} was completed"
    return "the pathway moved on past it"


def _sync_tasks(uow: UnitOfWork, instance: Instance, diff: ProjectionDiff, actor: str,
                completed_task_id: str | None, open_rows: dict[str, Task], cause: str) -> None:
    now = uow.app.now()
    for task_id in diff.tasks_closed:
        row = open_rows[task_id]
        if row.due_date is not None:  # only dated tasks have alerts: no statement for the others
            cancel_alerts(uow, task_id)  # derived from the recorded due date: they end with the task, unrecorded
        action = "engine_complete" if task_id == completed_task_id else "engine_cancel"
        rule = engine_step(TASK_RULES, action, row.state, f"task '{row.name}'")
        old, row.state, row.completed_at = row.state, rule.to[0].value, now
        if task_id == completed_task_id:  # recorded by the completion (task_completed)
            row.completed_by = actor
        else:
            uow.record(rule.event or action, actor, instance_id=instance.id, task_id=task_id,
                       pathway_version_id=instance.pathway_version_id,
                       data={"element_id": row.element_id, "name": row.name, "field": "state", "old": old,
                             "new": row.state, "reason": cause})
    for task in diff.tasks_opened:
        _add_task(uow, instance, task, actor)


def _add_task(uow: UnitOfWork, instance: Instance, task: OpenTask, actor: str) -> None:
    groups = offered_groups(task.lane, task.candidate_groups, uow.app.config.lane_groups)
    candidates = [TaskCandidate(task_id=task.id, kind="group", value=g) for g in groups]
    candidates += [TaskCandidate(task_id=task.id, kind="user", value=u) for u in task.candidate_users]
    if not candidates and task.assignee is None:  # offered to no one in particular: every worker sees it
        candidates.append(TaskCandidate(task_id=task.id, kind="all", value=EVERYONE))
    row = Task(id=task.id, instance_id=instance.id, pathway_key=instance.pathway_key,
               pathway_name=pathway_name(uow.app, uow.session, instance.pathway_version_id),
               patient_id=instance.patient_id, business_key=instance.business_key,
               element_id=task.element_id, name=task.name, lane=task.lane, kind=task.kind,
               state=TaskState.READY.value, assignee=task.assignee, priority=task.priority,
               documentation=task.documentation, created_at=uow.app.now(), due_date=task.due_date,
               follow_up_date=task.follow_up_date, audience=audience_keys((c.kind, c.value) for c in candidates))
    uow.session.add(row)
    uow.session.add_all(candidates)  # inserted after the task: the flush orders tables by foreign key
    if task.due_date is not None:
        schedule_alerts(uow, row, new_task=True)
    uow.record("task_ready", actor, instance_id=instance.id, task_id=task.id,
               pathway_version_id=instance.pathway_version_id,
               data={"element_id": task.element_id, "name": task.name, "lane": task.lane,
                     "assignee": task.assignee, "candidate_groups": groups,
                     "candidate_users": list(task.candidate_users), "priority": task.priority,
                     **({"due_date": task.due_date.isoformat()} if task.due_date else {}),
                     **({"follow_up_date": task.follow_up_date.isoformat()} if task.follow_up_date else {}),
                     **({"assignment_errors": list(task.assignment_errors)} if task.assignment_errors else {})})


def _sync_timers(uow: UnitOfWork, instance: Instance, diff: ProjectionDiff, actor: str,
                 pending: dict[str, Timer], cause: str) -> None:
    now = uow.app.now()
    created: list[datetime] = []
    for change in diff.timers_changed:
        row = pending[change.task_id]
        if change.fired:
            _record_fired(uow, instance, row, actor)
        elif change.next_due is None:
            uow.record("timer_cancelled", actor, instance_id=instance.id, task_id=change.task_id,
                       pathway_version_id=instance.pathway_version_id,
                       data={"element_id": row.element_id, "due_at": row.due_at.isoformat(), "field": "state",
                             "old": TimerState.PENDING.value, "new": TimerState.CANCELLED.value,
                             "reason": cause})
        if change.next_due is None:
            advance(row, TIMER_RULES, "fire" if change.fired else "cancel", f"timer {row.id}")
            row.fired_at = now if change.fired else None
        else:  # a cycle timer moved on to its next due time
            row.due_at, row.attempts, row.last_error = change.next_due, 0, None
            created.append(change.next_due)
    for wait in diff.timers_scheduled:
        uow.session.add(Timer(instance_id=instance.id, task_id=wait.task_id, element_id=wait.element_id,
                              due_at=wait.due_at, state=TimerState.PENDING.value, attempts=0, created_at=now))
        uow.record("timer_scheduled", actor, instance_id=instance.id, task_id=wait.task_id,
                   pathway_version_id=instance.pathway_version_id,
                   data={"element_id": wait.element_id, "due_at": wait.due_at.isoformat()})
        created.append(wait.due_at)
    if created:
        uow.after_commit(lambda: uow.app.timers_scheduled(created))


def _record_fired(uow: UnitOfWork, instance: Instance, row: Timer, actor: str) -> None:
    """A timer is the scheduler's act, even when it came due during a user's change and fired with it."""
    late = (uow.app.now() - row.due_at).total_seconds()
    uow.record("timer_fired", SCHEDULER.name, instance_id=instance.id, task_id=row.task_id,
               pathway_version_id=instance.pathway_version_id,
               data={"element_id": row.element_id, "due_at": row.due_at.isoformat(),
                     "late_by_seconds": round(late, 3),
                     **({"during_change_by": actor} if actor != SCHEDULER.name else {})})


def _sync_subscriptions(uow: UnitOfWork, instance: Instance, diff: ProjectionDiff, actor: str,
                        existing: dict[WaitKey, MessageSubscription], cause: str) -> None:
    """Waits for messages: started and ended in the history (a received message is recorded where it is
    delivered, so an ending wait here is one the pathway gave up: another branch or a timer won)."""
    delivered = uow.delivered_catches
    for key in diff.waits_ended:
        row = existing[key]
        uow.session.delete(row)
        if row.task_id not in delivered:
            uow.record("message_wait_cancelled", actor, instance_id=instance.id, task_id=row.task_id,
                       pathway_version_id=instance.pathway_version_id,
                       data={"element_id": row.element_id, "message": row.message_name, "reason": cause})
    now = uow.app.now()
    for (task_id, name, correlation_key), wait in diff.waits_started:
        uow.session.add(MessageSubscription(
            instance_id=instance.id, pathway_key=instance.pathway_key, task_id=task_id,
            element_id=wait.element_id, message_name=name, correlation_key=correlation_key, created_at=now))
        uow.record("message_awaited", actor, instance_id=instance.id, task_id=task_id,
                   pathway_version_id=instance.pathway_version_id,
                   data={"element_id": wait.element_id, "message": name})


def fold_task_counts(app: CarePath) -> int:
    """Fold the open-task count deltas the `tasks` triggers appended into one row per (group, state);
    returns how many rows were folded. On PostgreSQL one statement deletes and re-inserts exactly the
    rows it saw, so a delta committed meanwhile is neither lost nor counted twice; SQLite has one writer."""
    with UnitOfWork(app) as uow:
        session = uow.session
        if session.get_bind().dialect.name == "postgresql":
            folded = session.execute(text(
                "WITH gone AS (DELETE FROM task_count_deltas RETURNING group_name, state, delta), "
                "kept AS (INSERT INTO task_count_deltas (group_name, state, delta) "
                "SELECT group_name, state, sum(delta) FROM gone GROUP BY group_name, state HAVING sum(delta) <> 0) "
                "SELECT count(*) FROM gone")).scalar_one()
        else:
            total = func.sum(TaskCountDelta.delta)
            sums = session.execute(select(TaskCountDelta.group_name, TaskCountDelta.state, total)
                                   .group_by(TaskCountDelta.group_name, TaskCountDelta.state)
                                   .having(total != 0)).all()
            folded = session.scalar(select(func.count()).select_from(TaskCountDelta))
            session.execute(delete(TaskCountDelta))
            session.add_all(TaskCountDelta(group_name=g, state=s, delta=n) for g, s, n in sums)
        uow.commit()
        return int(folded or 0)
