"""Applying a row of the rule table (`engine/rules.py`) to a task or an instance: lock, check, change, record.

Every task action goes through `change_task` (a completion, which also runs the workflow under the
instance's lock, through `load_task` and `check`); instance cancel and retry through `locked_instance`;
a deactivated user's releases through `check` and `set_task_field`; the projection's completions and
cancellations, and the engine's own status changes of an instance (store._record_status_change), through
`rules.engine_step`. No use case writes a rule of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from sqlalchemy.orm import Session

from ..application import CarePath
from ..errors import InvalidTransition, NotFound
from ..identity import Principal, instance_scope
from ..model import InstanceStatus
from ..persistence.tables import Instance, Task
from ..persistence.unit_of_work import UnitOfWork
from ..queries import instance_facts, instance_is_visible, staffed_groups, task_views
from ..rules import TASK_RULES, InstanceFacts, Rule, TaskFacts, check, check_role, is_noop
from ..views import TaskView
from .store import lock_instance, with_conflict_retries


def task_facts(session: Session, task: Task) -> TaskFacts:
    """What the rules read of the row; the staffed groups are read only if a rule needs them, and once
    per transaction."""
    staffed = session.info.setdefault("carepath_staffed_groups", cache(lambda: staffed_groups(session)))
    return TaskFacts.of(task, staffed)


def load_task(uow: UnitOfWork, task_id: str, *, lock: bool = False) -> Task:
    task = uow.session.get(Task, task_id, with_for_update=lock, populate_existing=lock)
    if task is None:
        raise NotFound(f"task {task_id} does not exist")
    return task


def check_visible(uow: UnitOfWork, principal: Principal, task: Task) -> None:
    """A task the user may not see is answered as not found, whatever they asked to do with it."""
    facts = task_facts(uow.session, task)
    if not facts.visible_to(principal):
        raise facts.hidden(principal)


def change_task(app: CarePath, principal: Principal, task_id: str, action: str,
                act: Callable[[UnitOfWork, Task, Rule], None]) -> TaskView:
    """One transaction: lock the task, check the action's rule, let `act` change it (through
    `set_task_field`, which records), and answer the task as the user now sees it."""
    rule = TASK_RULES[action]
    check_role(rule, principal)

    def attempt() -> TaskView:
        with UnitOfWork(app) as uow:
            task = load_task(uow, task_id, lock=True)
            facts = task_facts(uow.session, task)
            check(rule, facts, principal)
            if not is_noop(rule, facts, principal):
                act(uow, task, rule)
            uow.session.flush()
            view = task_views(uow.session, [task], app.now(), principal)[0]
            uow.commit()
            return view

    return with_conflict_retries(app, attempt)


def locked_instance(uow: UnitOfWork, principal: Principal, rule: Rule, instance_id: str) -> Instance:
    """The instance, locked, once the user may read it (else not found, before any lock) and the rule
    lets them take the action from its status."""
    readable = instance_is_visible(uow.session, instance_id, instance_scope(principal))
    if not readable:
        raise InstanceFacts(instance_id, InstanceStatus.RUNNING, readable=False).not_found()
    instance = lock_instance(uow, instance_id)
    check(rule, instance_facts(uow.session, instance, principal), principal)
    return instance


def set_task_field(uow: UnitOfWork, rule: Rule, task: Task, new: Any, actor: str, *, field: str | None = None,
                   shown: Callable[[Any], Any] = lambda value: value, **data: Any) -> None:
    """Change the rule's field (or `field`) and record the rule's event with the old and new values."""
    field = field or rule.field
    assert field is not None
    if field == "state" and rule.to and new not in {state.value for state in rule.to}:
        raise InvalidTransition(f"{rule.title.lower()} leads to {' or '.join(s.value for s in rule.to)}, not {new}")
    old = getattr(task, field)
    setattr(task, field, new)
    record_task_event(uow, rule, task, actor,
                      data={"field": field, "old": shown(old), "new": shown(new), "name": task.name, **data})


def record_task_event(uow: UnitOfWork, rule: Rule, task: Task, actor: str, *, data: dict[str, Any],
                      pathway_version_id: int | None = None) -> None:
    uow.record(rule.event or rule.action, actor, instance_id=task.instance_id, task_id=task.id,
               pathway_version_id=pathway_version_id, data=data)


def claim_for(uow: UnitOfWork, task: Task, principal: Principal, reason: str) -> None:
    """Saving a draft or completing an unclaimed task claims it first, recorded as a claim."""
    if task.assignee is None:
        set_task_field(uow, TASK_RULES["claim"], task, principal.name, principal.name, reason=reason)
