"""Who a task may be handed to: the colleagues a holder delegates to, a supervisor assigns to.

The same two rules the use cases apply (usecases/tasks.py `_active_user`: an active user of a role that may
complete tasks) plus the worklists' visibility (identity.may_see: the task is offered to them, one of their
groups or everyone), so a list offers nobody the hand-over would refuse or who could not open the task.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.orm import Session

from .identity import Principal, Role, may_see
from .persistence.tables import Task, User, UserGroup
from .rules import TASK_RULES, may_take


def task_colleagues(session: Session, task_id: str) -> list[str]:
    """Names of the active users who may work the task, sorted; empty when there is no such task."""
    task = session.get(Task, task_id)
    if task is None:
        return []
    groups: dict[int, set[str]] = defaultdict(set)
    users = list(session.execute(select(User.id, User.name, User.role).where(User.active.is_(True))))
    for user_id, group in session.execute(select(UserGroup.user_id, UserGroup.group_name)):
        groups[user_id].add(group)
    found = []
    for user_id, name, role in users:
        try:
            principal = Principal(name, Role(role), frozenset(groups[user_id]))
        except ValueError:  # a role this version does not know works no tasks
            continue
        if may_take(TASK_RULES["complete"], principal) and may_see(principal, task.assignee, task.audience or ()):
            found.append(name)
    return sorted(found)
