"""Camunda 7's external-task REST contract under /engine-rest, so Camunda's own workers run unchanged.

The same use cases as /api/external-tasks (engine/usecases/external_tasks.py); camelCase bodies, Camunda's
typed variables, `204` answers, errors as `{"type", "message"}` (api/camunda_rest.py). fetchAndLock long-polls
for up to `asyncResponseTimeout` ms (cut to CAREPATH_EXTERNAL_TASK_MAX_WAIT_SECONDS), asleep between looks, so
a waiting worker holds no thread and no database connection. docs/external-tasks.md.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from carepath.engine.application import CarePath
from carepath.engine.identity import Principal
from carepath.engine.usecases import external_tasks as use
from carepath.engine.usecases.external_tasks import ExternalTaskView, TopicRequest

from ..camunda_rest import CamundaUser, variables_in, variables_out
from ..deps import EngineDep
from ..engine_rest.wire import PREFIX

# Camunda's contract, documented by Camunda and docs/external-tasks.md; not part of the product's OpenAPI
# document, whose error shape it does not share.
router = APIRouter(prefix=f"{PREFIX}/external-task", include_in_schema=False)
DONE: dict[str, Any] = {"status_code": 204, "response_class": Response}
POLL_SECONDS = 0.5  # how often a long poll looks again
MAX_LOCK_MS = 7 * 24 * 3600 * 1000


class _Camel(BaseModel):
    model_config = ConfigDict(extra="ignore")  # Camunda's clients send fields CarePath does not use


class TopicDto(_Camel):
    topicName: str = Field(min_length=1, max_length=255)
    lockDuration: int = Field(ge=1, le=MAX_LOCK_MS)
    variables: list[str] | None = Field(default=None, max_length=1000)


class FetchDto(_Camel):
    workerId: str = Field(min_length=1, max_length=255)
    maxTasks: int = Field(ge=0, le=use.MAX_TASKS)
    usePriority: bool | None = None
    asyncResponseTimeout: int | None = Field(default=None, ge=0, le=1_800_000)
    topics: list[TopicDto] = Field(min_length=1, max_length=use.MAX_TOPICS)


class CompleteDto(_Camel):
    workerId: str = Field(min_length=1, max_length=255)
    variables: dict[str, Any] | None = None
    localVariables: dict[str, Any] | None = None


class FailureDto(_Camel):
    workerId: str = Field(min_length=1, max_length=255)
    errorMessage: str | None = Field(default=None, max_length=4000)
    errorDetails: str | None = Field(default=None, max_length=4000)
    retries: int | None = Field(default=None, ge=0, le=1_000_000)
    retryTimeout: int | None = Field(default=None, ge=0, le=MAX_LOCK_MS)


class BpmnErrorDto(_Camel):
    workerId: str = Field(min_length=1, max_length=255)
    errorCode: str = Field(min_length=1, max_length=255)
    errorMessage: str | None = Field(default=None, max_length=4000)
    variables: dict[str, Any] | None = None


class ExtendLockDto(_Camel):
    workerId: str = Field(min_length=1, max_length=255)
    newDuration: int = Field(ge=1, le=MAX_LOCK_MS)


@router.post("/fetchAndLock")
async def fetch_and_lock(body: FetchDto, engine: EngineDep, user: CamundaUser) -> list[dict[str, Any]]:
    topics = [TopicRequest(t.topicName, t.lockDuration, tuple(t.variables) if t.variables is not None else None)
              for t in body.topics]
    wait = min((body.asyncResponseTimeout or 0) / 1000, engine.config.external_task_max_wait_s)
    deadline = time.monotonic() + wait
    while True:
        found = await run_in_threadpool(_fetch, engine, user, body, topics)
        remaining = deadline - time.monotonic()
        if found or remaining <= 0 or body.maxTasks == 0:
            return [_locked(task) for task in found]
        await asyncio.sleep(min(POLL_SECONDS, remaining))


def _fetch(engine: CarePath, user: Principal, body: FetchDto, topics: list[TopicRequest]) -> list[ExternalTaskView]:
    if body.maxTasks and not use.any_fetchable(engine, user, [topic.name for topic in topics]):
        return []  # a read, not a write transaction, for the empty looks of a long poll
    return use.fetch_and_lock(engine, user, body.workerId, topics, body.maxTasks,
                              use_priority=bool(body.usePriority))


def _locked(task: ExternalTaskView) -> dict[str, Any]:
    """Camunda's LockedExternalTaskDto."""
    return {
        "id": task.id, "topicName": task.topic, "workerId": task.worker_id,
        "lockExpirationTime": _camunda_time(task.lock_expires_at), "createTime": _camunda_time(task.created_at),
        "processInstanceId": task.instance_id, "executionId": task.instance_id, "activityId": task.element_id,
        "activityInstanceId": f"{task.element_id}:{task.id}", "processDefinitionKey": task.pathway_key,
        "processDefinitionId": task.pathway_key, "processDefinitionVersionTag": None, "businessKey": task.business_key,
        "retries": task.retries, "errorMessage": task.error_message, "errorDetails": task.error_details,
        "priority": task.priority, "tenantId": None, "variables": variables_out(task.variables),
        "extensionProperties": {},
    }


def _camunda_time(value: Any) -> str | None:
    """Camunda's date format: 2026-12-06T10:15:30.000+0000."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000" if value else None


@router.post("/{task_id}/complete", **DONE)
def complete(task_id: str, body: CompleteDto, engine: EngineDep, user: CamundaUser) -> None:
    variables = {**variables_in(body.variables), **variables_in(body.localVariables, "localVariables")}
    use.complete_task(engine, user, task_id, body.workerId, variables)


@router.post("/{task_id}/failure", **DONE)
def failure(task_id: str, body: FailureDto, engine: EngineDep, user: CamundaUser) -> None:
    use.report_failure(engine, user, task_id, body.workerId, body.errorMessage, error_details=body.errorDetails,
                       retries=body.retries or 0, retry_timeout_ms=body.retryTimeout or 0)


@router.post("/{task_id}/bpmnError", **DONE)
def bpmn_error(task_id: str, body: BpmnErrorDto, engine: EngineDep, user: CamundaUser) -> None:
    use.report_bpmn_error(engine, user, task_id, body.workerId, body.errorCode, body.errorMessage,
                          variables_in(body.variables))


@router.post("/{task_id}/extendLock", **DONE)
def extend_lock(task_id: str, body: ExtendLockDto, engine: EngineDep, user: CamundaUser) -> None:
    use.extend_lock(engine, user, task_id, body.workerId, body.newDuration)


@router.post("/{task_id}/unlock", **DONE)
def unlock(task_id: str, engine: EngineDep, user: CamundaUser) -> None:
    use.unlock(engine, user, task_id)
