"""/api/tasks: worklists from the task projection, and completion."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from carepath.engine.errors import NotFound
from carepath.engine.queries import get_task, list_tasks
from carepath.engine.usecases.tasks import complete_task

from ..deps import CurrentUser, EngineDep
from ..schemas import CompleteIn, InstanceOut, TaskOut, TaskPage

router = APIRouter(prefix="/api/tasks", tags=["tasks"])
TaskStateParam = Literal["ready", "completed", "cancelled"]


@router.get("", response_model=TaskPage)
def list_(engine: EngineDep, user: CurrentUser, state: TaskStateParam | None = "ready", lane: str | None = None,
          instance_id: str | None = None, pathway: str | None = None,
          limit: Annotated[int, Query(ge=1, le=500)] = 50, offset: Annotated[int, Query(ge=0)] = 0) -> TaskPage:
    with engine.db.read() as session:
        page = list_tasks(session, state=state, lane=lane, instance_id=instance_id, pathway=pathway,
                          limit=limit, offset=offset)
    return TaskPage.model_validate(page)


@router.get("/{task_id}", response_model=TaskOut)
def get(task_id: str, engine: EngineDep, user: CurrentUser) -> TaskOut:
    with engine.db.read() as session:
        view = get_task(session, task_id)
    if view is None:
        raise NotFound(f"task {task_id} does not exist")
    return TaskOut.model_validate(view)


@router.post("/{task_id}/complete", response_model=InstanceOut)
def complete(task_id: str, body: CompleteIn, engine: EngineDep, user: CurrentUser) -> InstanceOut:
    return InstanceOut.model_validate(complete_task(engine, user, task_id, body.data))
