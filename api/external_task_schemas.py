"""Request and answer bodies of /api/external-tasks (docs/external-tasks.md)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from carepath.engine.usecases.external_tasks import (
    MAX_ERROR_TEXT,
    MAX_LOCK_MS,
    MAX_NAME,
    MAX_TASKS,
    MAX_TOPICS,
    ExternalTaskView,
)

from .out_models import out_model


class TopicIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=MAX_NAME)
    lock_duration: int = Field(ge=1, le=MAX_LOCK_MS, description="milliseconds the tasks stay locked")
    variables: list[str] | None = Field(default=None, max_length=1000,
                                        description="the variables wanted; absent: all the task hands")


class FetchAndLockIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    worker_id: str = Field(min_length=1, max_length=MAX_NAME)
    topics: list[TopicIn] = Field(min_length=1, max_length=MAX_TOPICS)
    max_tasks: int = Field(default=1, ge=0, le=MAX_TASKS)
    use_priority: bool = True


# What a worker gets: the engine's ExternalTaskView; the error's details are Camunda's own read (see
# api/routes/camunda_external_tasks.py), not in the product's answer.
ExternalTaskOut = out_model(ExternalTaskView, name="ExternalTaskOut", exclude={"error_details"})


class CompleteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    worker_id: str = Field(min_length=1, max_length=MAX_NAME)
    variables: dict[str, Any] = Field(default_factory=dict)


class FailureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    worker_id: str = Field(min_length=1, max_length=MAX_NAME)
    error_message: str | None = Field(default=None, max_length=MAX_ERROR_TEXT)
    error_details: str | None = Field(default=None, max_length=MAX_ERROR_TEXT)
    retries: int = Field(default=0, ge=0, le=1_000_000, description="retries left; 0: the episode goes into incident")
    retry_timeout: int = Field(default=0, ge=0, le=MAX_LOCK_MS, description="milliseconds before it is fetchable again")


class BpmnErrorIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    worker_id: str = Field(min_length=1, max_length=MAX_NAME)
    error_code: str = Field(min_length=1, max_length=MAX_NAME)
    error_message: str | None = Field(default=None, max_length=MAX_ERROR_TEXT)
    variables: dict[str, Any] = Field(default_factory=dict)


class ExtendLockIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    worker_id: str = Field(min_length=1, max_length=MAX_NAME)
    new_duration: int = Field(ge=1, le=MAX_LOCK_MS, description="milliseconds from now")
