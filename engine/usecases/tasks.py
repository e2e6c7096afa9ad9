"""Human task actions: complete, claim, unclaim, assign. Each is one transaction with history."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from ..application import CarePath
from ..bounds import check_json
from ..calendars import DeadlineError
from ..errors import Conflict, InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from ..forms import validate_form
from ..identity import Principal, Role, may_see, require_role
from ..model import EVERYONE, OPEN_TASK_STATES, WORKABLE_TASK_STATES, TaskState, audience_key
from ..persistence.tables import Instance, PathwayVersion, Task, User
from ..persistence.unit_of_work import UnitOfWork
from ..queries import staffed_groups, task_views
from ..views import InstanceView, TaskView
from .after_steps import after_engine_steps
from .instances import get_instance_view
from .notifications import schedule_alerts
from .store import changes_of, load_workflow, lock_instance, with_conflict_retries

WORKING_ROLES = (Role.COORDINATOR, Role.CLINICAL_LEAD, Role.SUPERVISOR)


def complete_task(app: CarePath, principal: Principal, task_id: str, data: dict[str, Any] | None) -> InstanceView:
    require_role(principal, *WORKING_ROLES, action="Completing a task")
    check_json(app, data, "data")
    if data is not None and not isinstance(data, dict):
        raise ValidationFailed("task data must be a JSON object")

    def attempt() -> str:
        with UnitOfWork(app) as uow:
            task = _task(uow, task_id)
            check_may_work_on(uow, principal, task)
            instance = lock_instance(uow, task.instance_id)
            task = _task(uow, task_id, lock=True)
            if task.state not in WORKABLE_TASK_STATES:
                raise InvalidTransition(f"task {task_id} ('{task.name}') is {task.state}; it cannot be completed")
            _check_not_someone_elses(principal, task)
            workflow = load_workflow(uow, instance)
            form = workflow.task_rules.get(task.element_id, {}).get("form")
            validate_form(task.name, form, data or {})
            if task.assignee is None:
                _reassign(uow, task, principal.name, principal.name, "task_claimed", reason="claimed by completing")
            uow.record("task_completed", principal.name, instance_id=instance.id, task_id=task_id,
                       pathway_version_id=instance.pathway_version_id,
                       data={"element_id": task.element_id, "name": task.name, "data": data or {},
                             "field": "state", "old": task.state, "new": TaskState.COMPLETED.value,
                             "changes": changes_of(instance.data or {}, data or {})})
            workflow.complete_task(task_id, data or {}, app.clock)
            after_engine_steps(uow, instance, workflow, principal.name, completed_task_id=task_id)
            uow.commit()
            return instance.id

    return get_instance_view(app, with_conflict_retries(app, attempt))


def claim_task(app: CarePath, principal: Principal, task_id: str) -> TaskView:
    require_role(principal, *WORKING_ROLES, action="Claiming a task")

    def act(uow: UnitOfWork, task: Task) -> None:
        check_may_work_on(uow, principal, task)
        if task.assignee == principal.name:
            return
        _check_not_someone_elses(principal, task)
        _reassign(uow, task, principal.name, principal.name, "task_claimed")

    return _change_task(app, task_id, act)


def unclaim_task(app: CarePath, principal: Principal, task_id: str) -> TaskView:
    require_role(principal, *WORKING_ROLES, action="Releasing a task")

    def act(uow: UnitOfWork, task: Task) -> None:
        check_may_work_on(uow, principal, task)
        if task.assignee is None:
            raise InvalidTransition(f"task '{task.name}' is not claimed by anyone")
        if task.assignee != principal.name and not _supervises(uow, principal, task):
            raise PermissionDenied(f"task '{task.name}' is claimed by {task.assignee}; only they, a "
                                   "supervisor of its group or an admin can release it")
        _reassign(uow, task, None, principal.name, "task_unclaimed")

    return _change_task(app, task_id, act)


def assign_task(app: CarePath, principal: Principal, task_id: str, user: str) -> TaskView:
    require_role(principal, Role.SUPERVISOR, action="Assigning a task to someone")
    if not isinstance(user, str) or not user.strip():
        raise ValidationFailed("the user to assign to is required")

    def act(uow: UnitOfWork, task: Task) -> None:
        if not _supervises(uow, principal, task):
            raise PermissionDenied(f"user '{principal.name}' supervises none of the groups task "
                                   f"'{task.name}' is offered to")
        _active_user(uow, user)
        if task.assignee != user:
            _reassign(uow, task, user, principal.name, "task_assigned")

    return _change_task(app, task_id, act)


def hold_task(app: CarePath, principal: Principal, task_id: str, reason: str) -> TaskView:
    """Put a task on hold (FHIR on-hold), e.g. waiting for the patient to call back."""
    require_role(principal, *WORKING_ROLES, action="Putting a task on hold")
    _require_text(reason, "a reason is required to put a task on hold")

    def act(uow: UnitOfWork, task: Task) -> None:
        check_may_work_on(uow, principal, task)
        _check_not_someone_elses(principal, task)
        _set_state(uow, task, TaskState.ON_HOLD, principal.name, "task_held", reason)

    return _change_task(app, task_id, act)


def resume_task(app: CarePath, principal: Principal, task_id: str, reason: str) -> TaskView:
    require_role(principal, *WORKING_ROLES, action="Resuming a task")
    _require_text(reason, "a reason is required to resume a task")

    def act(uow: UnitOfWork, task: Task) -> None:
        check_may_work_on(uow, principal, task)
        back = TaskState.IN_PROGRESS if task.draft else TaskState.READY
        _set_state(uow, task, back, principal.name, "task_resumed", reason)

    return _change_task(app, task_id, act, from_state=TaskState.ON_HOLD)


def set_priority(app: CarePath, principal: Principal, task_id: str, priority: int) -> TaskView:
    require_role(principal, Role.SUPERVISOR, action="Changing a task's priority")
    if not isinstance(priority, int) or not 0 <= priority <= 100:
        raise ValidationFailed("priority must be a whole number from 0 to 100")

    def act(uow: UnitOfWork, task: Task) -> None:
        if not _supervises(uow, principal, task):
            raise PermissionDenied(f"user '{principal.name}' supervises none of the groups of task '{task.name}'")
        old, task.priority = task.priority, priority
        uow.record("task_priority_changed", principal.name, instance_id=task.instance_id, task_id=task.id,
                   data={"field": "priority", "old": old, "new": priority, "name": task.name})

    return _change_task(app, task_id, act, from_state=None)


def set_due_date(app: CarePath, principal: Principal, task_id: str, due: str | None, reason: str) -> TaskView:
    """A supervisor moves (or clears) a task's due date, with a reason. The value is anything a diagram
    may say: an ISO date-time (naive: in the pathway's zone), a date (its end), "P2BD", or
    "P2BD after discharge_at end of day" (counted from now or from the instance's variable)."""
    require_role(principal, Role.SUPERVISOR, action="Changing a task's due date")
    if not isinstance(reason, str) or not reason.strip():
        raise ValidationFailed("say why the due date changes: 'reason' is required")

    def act(uow: UnitOfWork, task: Task) -> None:
        if not _supervises(uow, principal, task):
            raise PermissionDenied(f"user '{principal.name}' supervises none of the groups of task '{task.name}'")
        new = None
        if due is not None:
            instance = uow.session.get(Instance, task.instance_id)
            version = uow.session.get(PathwayVersion, instance.pathway_version_id) if instance else None
            context = app.time_context(version.time_settings if version else None)
            try:
                new = context.resolve(due, now=app.now(), variables=instance.data if instance else {})
            except DeadlineError as exc:
                raise ValidationFailed(f"due_date: {exc}") from None
        old, task.due_date = task.due_date, new
        schedule_alerts(uow, task)
        uow.record("task_due_date_changed", principal.name, instance_id=task.instance_id, task_id=task.id,
                   data={"field": "due_date", "old": old.isoformat() if old else None,
                         "new": new.isoformat() if new else None, "reason": reason.strip(), "name": task.name})

    return _change_task(app, task_id, act, from_state=None)


def save_draft(app: CarePath, principal: Principal, task_id: str, data: dict[str, Any]) -> TaskView:
    """Keep unfinished form data without completing; the task is then in progress (FHIR)."""
    require_role(principal, *WORKING_ROLES, action="Saving a draft")
    check_json(app, data, "data")
    if not isinstance(data, dict):
        raise ValidationFailed("draft data must be a JSON object")

    def act(uow: UnitOfWork, task: Task) -> None:
        check_may_work_on(uow, principal, task)
        _check_not_someone_elses(principal, task)
        if task.assignee is None:
            _reassign(uow, task, principal.name, principal.name, "task_claimed", reason="claimed by saving a draft")
        old_draft, task.draft = task.draft or {}, data
        old_state, task.state = task.state, TaskState.IN_PROGRESS.value
        uow.record("task_draft_saved", principal.name, instance_id=task.instance_id, task_id=task.id,
                   data={"name": task.name, "fields": sorted(data),
                         "changes": changes_of(old_draft, data, replaced=True),
                         **({"field": "state", "old": old_state, "new": task.state} if old_state != task.state
                            else {})})

    return _change_task(app, task_id, act)


def delegate_task(app: CarePath, principal: Principal, task_id: str, user: str) -> TaskView:
    """Hand the task to someone for now; it comes back to its owner when they resolve it."""
    require_role(principal, *WORKING_ROLES, action="Delegating a task")

    def act(uow: UnitOfWork, task: Task) -> None:
        if task.assignee != principal.name and not principal.is_admin:
            raise Conflict(f"only the task's assignee can delegate it (it is {task.assignee or 'unclaimed'})")
        _active_user(uow, user)
        task.owner = task.assignee
        _reassign(uow, task, user, principal.name, "task_delegated")

    return _change_task(app, task_id, act)


def resolve_task(app: CarePath, principal: Principal, task_id: str) -> TaskView:
    """The delegate is done: the task goes back to the one who delegated it."""
    require_role(principal, *WORKING_ROLES, action="Resolving a delegated task")

    def act(uow: UnitOfWork, task: Task) -> None:
        if task.owner is None:
            raise InvalidTransition(f"task '{task.name}' was not delegated")
        if task.assignee != principal.name and not principal.is_admin:
            raise Conflict(f"task '{task.name}' is delegated to {task.assignee}; only they can resolve it")
        owner, task.owner = task.owner, None
        _reassign(uow, task, owner, principal.name, "task_resolved")

    return _change_task(app, task_id, act)


def _active_user(uow: UnitOfWork, name: str) -> User:
    if not isinstance(name, str) or not name.strip():
        raise ValidationFailed("the user is required")
    found = uow.session.scalars(select(User).where(User.name == name, User.active.is_(True))).first()
    if found is None:
        raise ValidationFailed(f"there is no active user '{name}'")
    return found


def comment_on_task(app: CarePath, principal: Principal, task_id: str, text: str) -> dict[str, Any]:
    """A note on a task ("left voicemail 10:40"), kept in the history."""
    require_role(principal, *WORKING_ROLES, action="Commenting on a task")
    check_json(app, text, "text")
    _require_text(text, "a comment needs text")
    if len(text) > 4000:
        raise ValidationFailed("a comment is at most 4000 characters")
    with UnitOfWork(app) as uow:
        task = _task(uow, task_id)
        check_may_work_on(uow, principal, task)
        uow.record("task_comment", principal.name, instance_id=task.instance_id, task_id=task.id,
                   data={"text": text})
        uow.commit()
    return {"task_id": task_id, "author": principal.name, "text": text, "at": app.now()}


def _require_text(value: Any, message: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValidationFailed(message)


def _set_state(uow: UnitOfWork, task: Task, state: TaskState, actor: str, event: str, reason: str) -> None:
    old, task.state = task.state, state.value
    uow.record(event, actor, instance_id=task.instance_id, task_id=task.id,
               data={"field": "state", "old": old, "new": state.value, "reason": reason, "name": task.name})


def _change_task(app: CarePath, task_id: str, act: Callable[[UnitOfWork, Task], None],
                 from_state: TaskState | None | tuple[str, ...] = WORKABLE_TASK_STATES) -> TaskView:
    def attempt() -> TaskView:
        with UnitOfWork(app) as uow:
            task = _task(uow, task_id, lock=True)
            if isinstance(from_state, TaskState):
                allowed: tuple[str, ...] = (from_state.value,)
            else:
                allowed = from_state or OPEN_TASK_STATES
            if task.state not in allowed:
                raise InvalidTransition(f"task '{task.name}' is {task.state}; this needs a task that is "
                                        f"{' or '.join(allowed)}")
            act(uow, task)
            uow.session.flush()
            view = task_views(uow.session, [task], app.now())[0]
            uow.commit()
            return view

    return with_conflict_retries(app, attempt)


def _reassign(uow: UnitOfWork, task: Task, new: str | None, actor: str, event: str,
              reason: str | None = None) -> None:
    old, task.assignee = task.assignee, new
    uow.record(event, actor, instance_id=task.instance_id, task_id=task.id,
               data={"field": "assignee", "old": old, "new": new, "name": task.name,
                     **({"reason": reason} if reason else {})})


def _task(uow: UnitOfWork, task_id: str, *, lock: bool = False) -> Task:
    task = uow.session.get(Task, task_id, with_for_update=lock, populate_existing=lock)
    if task is None:
        raise NotFound(f"task {task_id} does not exist")
    return task


def _groups(task: Task) -> set[str]:
    return {key.split(":", 1)[1] for key in task.audience or () if key.startswith("group:")}


def check_may_work_on(uow: UnitOfWork, principal: Principal, task: Task) -> None:
    """Admins work on any task; others on tasks assigned or offered to them, their groups or everyone
    (the same rule the worklists apply in SQL, read from the same column). A task a user may not see
    is answered as not found, so that a refusal never tells whether another patient's task exists."""
    if principal.is_admin or may_see(principal, task.assignee, task.audience or []):
        return
    if principal.role is Role.SUPERVISOR and _unrouted(uow, task):
        return  # supervisors route the tasks nobody can pick up
    raise NotFound(f"task {task.id} does not exist")


def _unrouted(uow: UnitOfWork, task: Task) -> bool:
    """Nobody can pick it up: unassigned, offered to no one by name nor to everyone, and none of its
    groups has an active member (queries._unrouted says the same in SQL)."""
    if task.assignee is not None or any(not key.startswith("group:") for key in task.audience or ()):
        return False
    return not (set(staffed_groups(uow.session)) & _groups(task))


def _check_not_someone_elses(principal: Principal, task: Task) -> None:
    if task.assignee not in (None, principal.name) and not principal.is_admin:
        raise Conflict(f"task '{task.name}' is claimed by {task.assignee}")


def _supervises(uow: UnitOfWork, principal: Principal, task: Task) -> bool:
    if principal.is_admin:
        return True
    if principal.role is not Role.SUPERVISOR:
        return False
    groups = _groups(task)
    offered_to_everyone = audience_key("all", EVERYONE) in (task.audience or ())
    return bool(groups & principal.groups) or offered_to_everyone or _unrouted(uow, task)
