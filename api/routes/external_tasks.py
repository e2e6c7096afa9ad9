"""/api/external-tasks: workers in any language fetch the service tasks of their topics and report back.

Integration accounts (and admins) only: EXTERNAL_TASK_RULES in engine/rules.py. docs/external-tasks.md.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Response

from carepath.engine.usecases import external_tasks as use
from carepath.engine.usecases.external_tasks import TopicRequest

from ..deps import EngineDep, SendingUser
from ..external_task_schemas import BpmnErrorIn, CompleteIn, ExtendLockIn, ExternalTaskOut, FailureIn, FetchAndLockIn
from ..out_models import list_of
from ..schemas import BODY_ERRORS, ERROR_RESPONSES, Out, errors

router = APIRouter(prefix="/api/external-tasks", tags=["external tasks"], responses=ERROR_RESPONSES)
DONE: dict[str, Any] = {"status_code": 204, "response_class": Response}


@router.get("", response_model=list_of(ExternalTaskOut), responses=errors(422))
def list_tasks(engine: EngineDep, user: SendingUser, topic: str | None = Query(default=None, max_length=255),
               state: str | None = Query(default=None, max_length=20),
               instance_id: str | None = Query(default=None, max_length=36),
               limit: int = Query(default=50, ge=1, le=200),
               offset: int = Query(default=0, ge=0, le=10_000_000)) -> list[Out]:
    """What waits for workers and what failed, oldest first (variables are not shown here)."""
    found = use.list_external_tasks(engine, user, topic=topic, state=state, instance_id=instance_id, limit=limit,
                                    offset=offset)
    return [ExternalTaskOut.model_validate(task) for task in found]


@router.post("/fetch-and-lock", response_model=list_of(ExternalTaskOut), responses=errors(*BODY_ERRORS))
def fetch_and_lock(body: FetchAndLockIn, engine: EngineDep, user: SendingUser) -> list[Out]:
    topics = [TopicRequest(t.name, t.lock_duration, tuple(t.variables) if t.variables is not None else None)
              for t in body.topics]
    found = use.fetch_and_lock(engine, user, body.worker_id, topics, body.max_tasks, use_priority=body.use_priority)
    return [ExternalTaskOut.model_validate(task) for task in found]


@router.post("/{task_id}/complete", **DONE, responses=errors(404, 409, *BODY_ERRORS))
def complete(task_id: str, body: CompleteIn, engine: EngineDep, user: SendingUser) -> None:
    use.complete_task(engine, user, task_id, body.worker_id, body.variables)


@router.post("/{task_id}/failure", **DONE, responses=errors(404, 409, *BODY_ERRORS))
def failure(task_id: str, body: FailureIn, engine: EngineDep, user: SendingUser) -> None:
    use.report_failure(engine, user, task_id, body.worker_id, body.error_message, error_details=body.error_details,
                       retries=body.retries, retry_timeout_ms=body.retry_timeout)


@router.post("/{task_id}/bpmn-error", **DONE, responses=errors(404, 409, *BODY_ERRORS))
def bpmn_error(task_id: str, body: BpmnErrorIn, engine: EngineDep, user: SendingUser) -> None:
    use.report_bpmn_error(engine, user, task_id, body.worker_id, body.error_code, body.error_message, body.variables)


@router.post("/{task_id}/extend-lock", **DONE, responses=errors(404, 409, *BODY_ERRORS))
def extend_lock(task_id: str, body: ExtendLockIn, engine: EngineDep, user: SendingUser) -> None:
    use.extend_lock(engine, user, task_id, body.worker_id, body.new_duration)


@router.post("/{task_id}/unlock", **DONE, responses=errors(404, 409, 422))
def unlock(task_id: str, engine: EngineDep, user: SendingUser) -> None:
    use.unlock(engine, user, task_id)
