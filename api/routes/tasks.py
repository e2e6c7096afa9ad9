"""/api/tasks: worklists from the task projection, and the human task actions."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from sqlalchemy.orm import Session

from carepath.engine.application import CarePath
from carepath.engine.errors import NotFound
from carepath.engine.identity import Principal, Scope, task_scope
from carepath.engine.model import TaskState
from carepath.engine.queries import TaskFilter, list_tasks, task_comments, task_counts, visible_task
from carepath.engine.rules import sees_unrouted
from carepath.engine.usecases.access import record_access
from carepath.engine.usecases.task_forms import task_form_values
from carepath.engine.usecases.tasks import (
    assign_task,
    claim_task,
    comment_on_task,
    complete_task,
    delegate_task,
    hold_task,
    resolve_task,
    resume_task,
    save_draft,
    set_due_date,
    set_priority,
    unclaim_task,
)
from carepath.engine.views import TaskView

from ..deps import ClientDep, CurrentUser, EngineDep
from ..params import INSTANT, Instant, OffsetParam
from ..schemas import (
    BODY_ERRORS,
    ERROR_RESPONSES,
    EXACT_TOTAL,
    AssignIn,
    CommentIn,
    CommentOut,
    CompleteIn,
    DueDateIn,
    FormOut,
    InstanceOut,
    PriorityIn,
    ReasonIn,
    TaskCountOut,
    TaskOut,
    TaskPage,
    errors,
)

router = APIRouter(prefix="/api/tasks", tags=["tasks"], responses=ERROR_RESPONSES)
SortParam = Literal["age", "-age", "priority", "due"]
# A task's actions: no such task (or not visible), not in a state the action starts from, and the body.
ACTION_ERRORS = errors(404, 409, 422)
CHANGE_ERRORS = errors(404, 409, *BODY_ERRORS)


@router.get("", response_model=TaskPage, responses=errors(422))
def list_(engine: EngineDep, user: CurrentUser, state: TaskState | None = TaskState.READY, lane: str | None = None,
          instance_id: str | None = None, pathway: str | None = None,
          assignee: Annotated[str | None, Query(description="a user name, or 'me'")] = None,
          candidate: Annotated[Literal["me"] | None, Query(description="tasks I may claim or work")] = None,
          unassigned: bool = False,
          unrouted: Annotated[bool, Query(description="tasks no active user can pick up")] = False,
          due_before: Annotated[Instant, Query(description=INSTANT)] = None,
          overdue: bool = False,
          group: str | None = None, patient_id: str | None = None,
          business_key: str | None = None, priority: Annotated[int | None, Query(ge=0, le=100)] = None,
          q: Annotated[str | None, Query(max_length=200, description="text in the task name")] = None,
          sort: SortParam = "age",
          limit: Annotated[int, Query(ge=1, le=500)] = 50, offset: OffsetParam = 0,
          exact_total: Annotated[bool, Query(description=EXACT_TOTAL)] = False) -> TaskPage:
    filters = TaskFilter(
        state=state, lane=lane, instance_id=instance_id, pathway=pathway,
        assignee=user.name if assignee == "me" else assignee, unassigned=unassigned,
        candidate_user=user.name if candidate == "me" else None,
        candidate_groups=user.groups if candidate == "me" else None, group=group, patient_id=patient_id,
        business_key=business_key, priority=priority, text=q, visible_to=_view_of(user),
        sees_unrouted=sees_unrouted(user), unrouted=unrouted,
        due_before=due_before, overdue_at=engine.now() if overdue else None)
    with engine.db.read() as session:
        page = list_tasks(session, filters, sort=sort, limit=limit, offset=offset, exact_total=exact_total,
                          now=engine.now(), reader=user)
    return TaskPage.model_validate(page)


@router.get("/counts", response_model=list[TaskCountOut])
def counts(engine: EngineDep, user: CurrentUser) -> list[TaskCountOut]:
    with engine.db.read() as session:
        return [TaskCountOut.model_validate(row) for row in task_counts(session)]


def _view_of(user: Principal) -> Scope | None:
    return task_scope(user)


def _visible_or_404(engine: CarePath, session: Session, user: Principal, task_id: str) -> TaskView:
    """The task if this user may see it (supervisors also the unrouted ones); else not found, like a
    task that does not exist."""
    view = visible_task(session, task_id, _view_of(user), sees_unrouted(user), engine.now(), user)
    if view is None:
        raise NotFound(f"task {task_id} does not exist")
    return view


@router.get("/{task_id}", response_model=TaskOut, responses=errors(404, 422))
def get(task_id: str, engine: EngineDep, user: CurrentUser, client: ClientDep) -> TaskOut:
    with engine.db.read() as session:
        task = _visible_or_404(engine, session, user, task_id)
    record_access(engine, user, "task", task.instance_id, task_id, client)
    return TaskOut.model_validate(task)


@router.get("/{task_id}/form", response_model=FormOut, response_model_by_alias=True, responses=errors(404, 422))
def form(task_id: str, engine: EngineDep, user: CurrentUser, client: ClientDep) -> FormOut:
    """The form's JSON Schema and its current values: the instance's data under any saved draft."""
    with engine.db.read() as session:
        task = _visible_or_404(engine, session, user, task_id)
        found = task_form_values(engine, session, task_id)
    if found is None:
        raise NotFound(f"task {task_id} does not exist")
    record_access(engine, user, "form", task.instance_id, task_id, client)
    schema, data = found
    fields = set((schema or {}).get("properties", {}))
    current = {k: v for k, v in data.items() if k in fields} if schema else {}
    return FormOut(task_id=task_id, form_schema=schema, data={**current, **(task.draft or {})})


@router.post("/{task_id}/complete", response_model=InstanceOut, responses=CHANGE_ERRORS)
def complete(task_id: str, body: CompleteIn, engine: EngineDep, user: CurrentUser) -> InstanceOut:
    return InstanceOut.model_validate(complete_task(engine, user, task_id, body.data))


@router.post("/{task_id}/claim", response_model=TaskOut, responses=ACTION_ERRORS)
def claim(task_id: str, engine: EngineDep, user: CurrentUser) -> TaskOut:
    return TaskOut.model_validate(claim_task(engine, user, task_id))


@router.post("/{task_id}/unclaim", response_model=TaskOut, responses=ACTION_ERRORS)
def unclaim(task_id: str, engine: EngineDep, user: CurrentUser) -> TaskOut:
    return TaskOut.model_validate(unclaim_task(engine, user, task_id))


@router.post("/{task_id}/assign", response_model=TaskOut, responses=CHANGE_ERRORS)
def assign(task_id: str, body: AssignIn, engine: EngineDep, user: CurrentUser) -> TaskOut:
    return TaskOut.model_validate(assign_task(engine, user, task_id, body.user))


@router.post("/{task_id}/hold", response_model=TaskOut, responses=CHANGE_ERRORS)
def hold(task_id: str, body: ReasonIn, engine: EngineDep, user: CurrentUser) -> TaskOut:
    return TaskOut.model_validate(hold_task(engine, user, task_id, body.reason))


@router.post("/{task_id}/resume", response_model=TaskOut, responses=CHANGE_ERRORS)
def resume(task_id: str, body: ReasonIn, engine: EngineDep, user: CurrentUser) -> TaskOut:
    return TaskOut.model_validate(resume_task(engine, user, task_id, body.reason))


@router.post("/{task_id}/due-date", response_model=TaskOut, responses=CHANGE_ERRORS)
def due_date(task_id: str, body: DueDateIn, engine: EngineDep, user: CurrentUser) -> TaskOut:
    """Supervisors move or clear a task's due date; the old value and the reason go in the history."""
    return TaskOut.model_validate(set_due_date(engine, user, task_id, body.due_date, body.reason))


@router.post("/{task_id}/priority", response_model=TaskOut, responses=CHANGE_ERRORS)
def priority(task_id: str, body: PriorityIn, engine: EngineDep, user: CurrentUser) -> TaskOut:
    return TaskOut.model_validate(set_priority(engine, user, task_id, body.priority))


@router.post("/{task_id}/comments", response_model=CommentOut, status_code=201, responses=CHANGE_ERRORS)
def comment(task_id: str, body: CommentIn, engine: EngineDep, user: CurrentUser) -> CommentOut:
    return CommentOut.model_validate(comment_on_task(engine, user, task_id, body.text))


@router.get("/{task_id}/comments", response_model=list[CommentOut], responses=errors(404, 422))
def comments(task_id: str, engine: EngineDep, user: CurrentUser, client: ClientDep) -> list[CommentOut]:
    with engine.db.read() as session:
        task = _visible_or_404(engine, session, user, task_id)
        found = [CommentOut.model_validate(c) for c in task_comments(session, task_id)]
    record_access(engine, user, "comments", task.instance_id, task_id, client)
    return found


@router.put("/{task_id}/draft", response_model=TaskOut, responses=CHANGE_ERRORS)
def draft(task_id: str, body: CompleteIn, engine: EngineDep, user: CurrentUser) -> TaskOut:
    return TaskOut.model_validate(save_draft(engine, user, task_id, body.data))


@router.post("/{task_id}/delegate", response_model=TaskOut, responses=CHANGE_ERRORS)
def delegate(task_id: str, body: AssignIn, engine: EngineDep, user: CurrentUser) -> TaskOut:
    return TaskOut.model_validate(delegate_task(engine, user, task_id, body.user))


@router.post("/{task_id}/resolve", response_model=TaskOut, responses=ACTION_ERRORS)
def resolve(task_id: str, engine: EngineDep, user: CurrentUser) -> TaskOut:
    return TaskOut.model_validate(resolve_task(engine, user, task_id))
