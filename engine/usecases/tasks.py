"""Completing human tasks."""

from __future__ import annotations

from typing import Any

from ..application import CarePath
from ..errors import InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from ..identity import Principal, Role, group_for_lane, require_role
from ..model import TaskState
from ..persistence.tables import Task
from ..persistence.unit_of_work import UnitOfWork
from ..views import InstanceView
from .instances import get_instance_view
from .store import load_workflow, lock_instance, save_workflow, with_conflict_retries


def complete_task(app: CarePath, principal: Principal, task_id: str, data: dict[str, Any] | None) -> InstanceView:
    require_role(principal, Role.COORDINATOR, Role.CLINICAL_LEAD, action="Completing a task")
    if data is not None and not isinstance(data, dict):
        raise ValidationFailed("task data must be a JSON object")

    def attempt() -> str:
        with UnitOfWork(app) as uow:
            task = uow.session.get(Task, task_id)
            if task is None:
                raise NotFound(f"task {task_id} does not exist")
            check_may_work_on(app, principal, task)
            instance = lock_instance(uow, task.instance_id)
            uow.session.refresh(task)
            if task.state != TaskState.READY:
                raise InvalidTransition(f"task {task_id} ('{task.name}') is {task.state}, not ready; "
                                        "it cannot be completed")
            workflow = load_workflow(uow, instance)
            uow.record("task_completed", principal.name, instance_id=instance.id, task_id=task_id,
                       pathway_version_id=instance.pathway_version_id,
                       data={"element_id": task.element_id, "name": task.name, "data": data or {}})
            workflow.complete_task(task_id, data or {}, app.clock)
            save_workflow(uow, instance, workflow, principal.name, completed_task_id=task_id)
            uow.commit()
            return instance.id

    return get_instance_view(app, with_conflict_retries(app, attempt))


def check_may_work_on(app: CarePath, principal: Principal, task: Task) -> None:
    """Admins work on any task; others on tasks of their groups' lanes and tasks with no lane."""
    if principal.is_admin or task.lane is None:
        return
    group = group_for_lane(task.lane, app.config.lane_groups)
    if group in principal.groups:
        return
    raise PermissionDenied(f"task '{task.name}' belongs to lane '{task.lane}' (group '{group}'); "
                           f"user '{principal.name}' is not in that group")
