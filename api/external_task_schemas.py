"""Request and answer bodies of /api/external-tasks (docs/external-tasks.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .schemas import Out

MAX_LOCK_MS = 7 * 24 * 3600 * 1000


class TopicIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=255)
    lock_duration: int = Field(ge=1, le=MAX_LOCK_MS, description="milliseconds the tasks stay locked")
    variables: list[str] | None = Field(default=None, max_length=1000,
                                        description="the variables wanted; absent: all the task hands")


class FetchAndLockIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    worker_id: str = Field(min_length=1, max_length=255)
    topics: list[TopicIn] = Field(min_length=1, max_length=50)
    max_tasks: int = Field(default=1, ge=0, le=100)
    use_priority: bool = True


class ExternalTaskOut(Out):
    id: str
    topic: str
    state: str
    instance_id: str
    business_key: str
    pathway_key: str
    element_id: str
    name: str | None
    worker_id: str | None
    lock_expires_at: datetime | None
    retries: int | None
    error_message: str | None
    priority: int
    created_at: datetime
    variables: dict[str, Any]


class CompleteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    worker_id: str = Field(min_length=1, max_length=255)
    variables: dict[str, Any] = Field(default_factory=dict)


class FailureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    worker_id: str = Field(min_length=1, max_length=255)
    error_message: str | None = Field(default=None, max_length=4000)
    error_details: str | None = Field(default=None, max_length=4000)
    retries: int = Field(default=0, ge=0, le=1_000_000, description="retries left; 0: the episode goes into incident")
    retry_timeout: int = Field(default=0, ge=0, le=MAX_LOCK_MS, description="milliseconds before it is fetchable again")


class BpmnErrorIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    worker_id: str = Field(min_length=1, max_length=255)
    error_code: str = Field(min_length=1, max_length=255)
    error_message: str | None = Field(default=None, max_length=4000)
    variables: dict[str, Any] = Field(default_factory=dict)


class ExtendLockIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    worker_id: str = Field(min_length=1, max_length=255)
    new_duration: int = Field(ge=1, le=MAX_LOCK_MS, description="milliseconds from now")
