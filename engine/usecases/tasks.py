"""Human task actions: complete, claim, unclaim, assign, ... Each is one transaction with history; who
may take which from which state is the rule table's (engine/rules.py), applied by `transitions.py`."""

from __future__ import annotations

from functools import partial
from typing import Any

from sqlalchemy import select

from ..application import CarePath
from ..bounds import MAX_COMMENT_CHARS, check_json
from ..calendars import DeadlineError
from ..errors import Problem, ValidationFailed
from ..forms import validate_form
from ..identity import Principal, Role
from ..model import TaskState
from ..persistence.tables import Instance, PathwayVersion, Task, User
from ..persistence.unit_of_work import UnitOfWork
from ..resource_queries import is_active_service
from ..rules import TASK_RULES, Rule, check, check_role, may_take
from ..sdoh.instruments import with_instruments
from ..views import InstanceView, TaskView
from .after_steps import after_engine_steps
from .change_answers import answer_of_change
from .notifications import schedule_alerts
from .store import changes_of, load_workflow, lock_instance_and_task, with_conflict_retries
from .transitions import (
    change_task,
    check_visible,
    claim_for,
    load_task,
    record_task_event,
    set_task_field,
    task_facts,
)


def complete_task(app: CarePath, principal: Principal, task_id: str, data: dict[str, Any] | None) -> InstanceView:
    rule = TASK_RULES["complete"]
    check_role(rule, principal)
    check_json(app, data, "data")
    if data is not None and not isinstance(data, dict):
        raise ValidationFailed("task data must be a JSON object")

    def attempt() -> InstanceView:
        with UnitOfWork(app) as uow:
            task = load_task(uow, task_id)
            check_visible(uow, principal, task)  # before locking anything
            instance, task = lock_instance_and_task(uow, task.instance_id, task_id)
            check(rule, task_facts(uow.session, task), principal)
            workflow = load_workflow(uow, instance)
            form = workflow.task_rules.get(task.element_id, {}).get("form")
            validate_form(task.name, form, data or {}, partial(is_active_service, uow.session))
            claim_for(uow, task, principal, "claimed by completing")
            record_task_event(uow, rule, task, principal.name, pathway_version_id=instance.pathway_version_id,
                              data={"element_id": task.element_id, "name": task.name, "data": data or {},
                                    "field": "state", "old": task.state, "new": rule.to[0].value,
                                    "changes": changes_of(instance.data or {}, data or {})})
            workflow.complete_task(task_id, with_instruments(form, data or {}), app.clock)
            after_engine_steps(uow, instance, workflow, principal.name, completed_task_id=task_id)
            answer = answer_of_change(uow, instance, principal)
            uow.commit()
            return answer

    return with_conflict_retries(app, attempt)


def claim_task(app: CarePath, principal: Principal, task_id: str) -> TaskView:
    def act(uow: UnitOfWork, task: Task, rule: Rule) -> None:
        set_task_field(uow, rule, task, principal.name, principal.name)

    return change_task(app, principal, task_id, "claim", act)


def unclaim_task(app: CarePath, principal: Principal, task_id: str) -> TaskView:
    def act(uow: UnitOfWork, task: Task, rule: Rule) -> None:
        set_task_field(uow, rule, task, None, principal.name)

    return change_task(app, principal, task_id, "unclaim", act)


def assign_task(app: CarePath, principal: Principal, task_id: str, user: str) -> TaskView:
    check_role(TASK_RULES["assign"], principal)
    if not isinstance(user, str) or not user.strip():
        raise ValidationFailed("the user to assign to is required")

    def act(uow: UnitOfWork, task: Task, rule: Rule) -> None:
        _active_user(uow, user)
        if task.assignee != user:
            set_task_field(uow, rule, task, user, principal.name)

    return change_task(app, principal, task_id, "assign", act)


def hold_task(app: CarePath, principal: Principal, task_id: str, reason: str) -> TaskView:
    """Put a task on hold (FHIR on-hold), e.g. waiting for the patient to call back."""
    check_role(TASK_RULES["hold"], principal)
    _require_text(reason, "a reason is required to put a task on hold")

    def act(uow: UnitOfWork, task: Task, rule: Rule) -> None:
        set_task_field(uow, rule, task, TaskState.ON_HOLD.value, principal.name, reason=reason)

    return change_task(app, principal, task_id, "hold", act)


def resume_task(app: CarePath, principal: Principal, task_id: str, reason: str) -> TaskView:
    check_role(TASK_RULES["resume"], principal)
    _require_text(reason, "a reason is required to resume a task")

    def act(uow: UnitOfWork, task: Task, rule: Rule) -> None:
        back = TaskState.IN_PROGRESS if task.draft else TaskState.READY
        set_task_field(uow, rule, task, back.value, principal.name, reason=reason)

    return change_task(app, principal, task_id, "resume", act)


def set_priority(app: CarePath, principal: Principal, task_id: str, priority: int) -> TaskView:
    check_role(TASK_RULES["set_priority"], principal)
    if not isinstance(priority, int) or not 0 <= priority <= 100:
        raise ValidationFailed("priority must be a whole number from 0 to 100")

    def act(uow: UnitOfWork, task: Task, rule: Rule) -> None:
        set_task_field(uow, rule, task, priority, principal.name)

    return change_task(app, principal, task_id, "set_priority", act)


def set_due_date(app: CarePath, principal: Principal, task_id: str, due: str | None, reason: str) -> TaskView:
    """A supervisor moves (or clears) a task's due date, with a reason. The value is anything a diagram
    may say: an ISO date-time (naive: in the pathway's zone), a date (its end), "P2BD", or
    "P2BD after discharge_at end of day" (counted from now or from the instance's variable)."""
    check_role(TASK_RULES["set_due_date"], principal)
    if not isinstance(reason, str) or not reason.strip():
        raise ValidationFailed("say why the due date changes: 'reason' is required",
                               [Problem("a reason for moving the due date is required", field="reason")])

    def act(uow: UnitOfWork, task: Task, rule: Rule) -> None:
        new = None
        if due is not None:
            instance = uow.session.get(Instance, task.instance_id)
            version = uow.session.get(PathwayVersion, instance.pathway_version_id) if instance else None
            context = app.time_context(version.time_settings if version else None)
            try:
                new = context.resolve(due, now=app.now(), variables=instance.data if instance else {})
            except DeadlineError as exc:
                raise ValidationFailed(f"due_date: {exc}") from None
        set_task_field(uow, rule, task, new, principal.name, shown=lambda d: d.isoformat() if d else None,
                       reason=reason.strip())
        schedule_alerts(uow, task)

    return change_task(app, principal, task_id, "set_due_date", act)


def save_draft(app: CarePath, principal: Principal, task_id: str, data: dict[str, Any]) -> TaskView:
    """Keep unfinished form data without completing; the task is then in progress (FHIR)."""
    check_role(TASK_RULES["save_draft"], principal)
    check_json(app, data, "data")
    if not isinstance(data, dict):
        raise ValidationFailed("draft data must be a JSON object")

    def act(uow: UnitOfWork, task: Task, rule: Rule) -> None:
        claim_for(uow, task, principal, "claimed by saving a draft")
        old_draft, task.draft = task.draft or {}, data
        old_state, task.state = task.state, rule.to[0].value  # in progress
        record_task_event(uow, rule, task, principal.name, data={
            "name": task.name, "fields": sorted(data), "changes": changes_of(old_draft, data, replaced=True),
            **({"field": "state", "old": old_state, "new": task.state} if old_state != task.state else {})})

    return change_task(app, principal, task_id, "save_draft", act)


def delegate_task(app: CarePath, principal: Principal, task_id: str, user: str) -> TaskView:
    """Hand the task to someone for now; it comes back to its owner when they resolve it."""
    def act(uow: UnitOfWork, task: Task, rule: Rule) -> None:
        _active_user(uow, user)
        task.owner = task.assignee
        set_task_field(uow, rule, task, user, principal.name)

    return change_task(app, principal, task_id, "delegate", act)


def resolve_task(app: CarePath, principal: Principal, task_id: str) -> TaskView:
    """The delegate is done: the task goes back to the one who delegated it."""
    def act(uow: UnitOfWork, task: Task, rule: Rule) -> None:
        owner, task.owner = task.owner, None
        set_task_field(uow, rule, task, owner, principal.name)

    return change_task(app, principal, task_id, "resolve", act)


def _active_user(uow: UnitOfWork, name: str) -> User:
    """The user a task is handed to (assign, delegate): active, and of a role that may complete it."""
    if not isinstance(name, str) or not name.strip():
        raise ValidationFailed("the user is required")
    found = uow.session.scalars(select(User).where(User.name == name, User.active.is_(True))).first()
    if found is None:
        raise ValidationFailed(f"there is no active user '{name}'")
    if not may_take(TASK_RULES["complete"], Principal(found.name, Role(found.role))):
        raise ValidationFailed(f"user '{name}' is {found.role} and cannot work tasks; hand it to a "
                               f"{', '.join(r.value for r in TASK_RULES['complete'].roles)} or an admin")
    return found


def comment_on_task(app: CarePath, principal: Principal, task_id: str, text: str) -> dict[str, Any]:
    """A note on a task ("left voicemail 10:40"), kept in the history."""
    rule = TASK_RULES["comment"]
    check_role(rule, principal)
    check_json(app, text, "text")
    _require_text(text, "a comment needs text")
    if len(text) > MAX_COMMENT_CHARS:
        message = (f"a comment is at most {MAX_COMMENT_CHARS:,} characters; this one has {len(text):,}: "
                   f"shorten it by {len(text) - MAX_COMMENT_CHARS:,}")
        raise ValidationFailed(message, [Problem(message, field="text")])
    with UnitOfWork(app) as uow:
        task = load_task(uow, task_id)
        check(rule, task_facts(uow.session, task), principal)
        record_task_event(uow, rule, task, principal.name, data={"text": text})
        uow.commit()
    return {"task_id": task_id, "author": principal.name, "text": text, "at": app.now()}


def _require_text(value: Any, message: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValidationFailed(message)
