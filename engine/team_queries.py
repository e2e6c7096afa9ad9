"""The supervisors' read side: counts per group for the team dashboard, who a task may be given to, and
what a reader has not read of the notifications. SQL on the projection tables, as engine/queries.py."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from .model import OPEN_TASK_STATES, TaskState
from .persistence.tables import NotificationRead, NotificationRecord, Task, TaskCandidate, User, UserGroup
from .queries import not_read_by, notifications_visible_to
from .rules import assignable_roles
from .views import TaskView


@dataclass(frozen=True)
class GroupCounts:
    """One group's open tasks: per state (the count projection), overdue and unassigned (at `now`)."""

    group: str
    states: dict[str, int] = field(default_factory=dict)
    overdue: int = 0
    unassigned: int = 0

    @property
    def open(self) -> int:
        return sum(self.states.values())


def team_counts(session: Session, groups: frozenset[str] | None, now: datetime) -> list[GroupCounts]:
    """The dashboard of these groups (None: every group with open tasks), by name: one grouped query on
    the tasks' candidate groups (GROUP BY group, state) counting the open tasks, the overdue (at `now`)
    and the unassigned ones."""
    group = TaskCandidate.value
    query = (select(group, Task.state, func.count(), func.count(case((Task.due_date < now, 1))),
                    func.count(case((Task.assignee.is_(None), 1))))
             .join(Task, Task.id == TaskCandidate.task_id)
             .where(TaskCandidate.kind == "group", Task.state.in_(OPEN_TASK_STATES))
             .group_by(group, Task.state))
    if groups is not None:
        query = query.where(group.in_(sorted(groups)))
    found: dict[str, GroupCounts] = {}
    for name, state, count, overdue, unassigned in session.execute(query):
        counts = found.setdefault(name, GroupCounts(name))
        counts.states[TaskState(state).value] = int(count)
        found[name] = replace(counts, overdue=counts.overdue + int(overdue),
                              unassigned=counts.unassigned + int(unassigned))
    names = sorted(groups if groups is not None else found)
    return [found.get(name) or GroupCounts(name) for name in names]


# More names than this in one select help nobody; the page says the list was cut.
MAX_ASSIGNEES = 300


def eligible_assignees(session: Session, tasks: Iterable[TaskView]) -> dict[str, list[str]]:
    """For each task, the active users who may work it (rules.assignable_roles), by name: the members of
    its groups and the users it is offered to by name; when there are none (an unrouted task, or one
    offered to everyone), every active worker, since whoever is given it may then work it."""
    tasks = list(tasks)
    roles = [role.value for role in assignable_roles()]
    groups = sorted({g for t in tasks for g in t.candidate_groups})
    named = sorted({u for t in tasks for u in t.candidate_users})
    members: dict[str, set[str]] = {}
    names: set[str] = set()
    if groups or named:
        rows = session.execute(
            select(User.name, UserGroup.group_name).outerjoin(UserGroup, UserGroup.user_id == User.id)
            .where(User.active.is_(True), User.role.in_(roles),
                   UserGroup.group_name.in_(groups) | User.name.in_(named)))
        for name, group in rows:
            names.add(name)
            members.setdefault(group, set()).add(name)
    everyone: list[str] | None = None
    out = {}
    for task in tasks:
        found = {n for g in task.candidate_groups for n in members.get(g, ())} | (set(task.candidate_users) & names)
        if not found:
            if everyone is None:
                everyone = list(session.scalars(select(User.name).where(User.active.is_(True), User.role.in_(roles))
                                                .order_by(User.name).limit(MAX_ASSIGNEES)))
            out[task.id] = everyone
        else:
            out[task.id] = sorted(found)[:MAX_ASSIGNEES]
    return out


def user_id(session: Session, name: str) -> int | None:
    return session.scalar(select(User.id).where(User.name == name))


def unread_count(session: Session, reader_id: int, visible_to: tuple[str, frozenset[str]] | None,
                 channel: str | None = None) -> int:
    """How many of the notifications this reader may see (of one channel's rows, if given) they have not
    marked read."""
    query = select(func.count()).select_from(NotificationRecord).where(
        notifications_visible_to(session, visible_to), not_read_by(reader_id))
    if channel is not None:
        query = query.where(NotificationRecord.channel == channel)
    return session.scalar(query) or 0


def read_marks(session: Session, reader_id: int, notification_ids: Iterable[int]) -> set[int]:
    """Which of these notifications the reader has marked read."""
    ids = list(notification_ids)
    if not ids:
        return set()
    return set(session.scalars(select(NotificationRead.notification_id).where(
        NotificationRead.user_id == reader_id, NotificationRead.notification_id.in_(ids))))
