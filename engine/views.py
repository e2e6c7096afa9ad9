"""What the use cases and queries return: plain dataclasses read from the projection tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .errors import Problem


@dataclass(frozen=True)
class TaskView:
    id: str
    instance_id: str
    pathway_key: str
    element_id: str
    name: str
    lane: str | None
    kind: str
    state: str
    assignee: str | None
    due_date: datetime | None
    documentation: str | None
    created_at: datetime
    completed_at: datetime | None
    completed_by: str | None
    priority: int = 50
    candidate_groups: tuple[str, ...] = ()
    candidate_users: tuple[str, ...] = ()
    owner: str | None = None
    draft: dict[str, Any] | None = None
    follow_up_date: datetime | None = None
    # Seconds until the due date (negative: how late) while the task is open, at the time of reading.
    due_in_seconds: int | None = None


@dataclass(frozen=True)
class EventView:
    id: int
    type: str
    actor: str
    at: datetime
    task_id: str | None
    data: dict[str, Any]


@dataclass(frozen=True)
class NotificationView:
    id: int
    kind: str
    channel: str
    instance_id: str | None
    task_id: str | None
    subject: str
    recipients: list[str]
    payload: dict[str, Any]
    state: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True)
class WaitView:
    type: str
    element_id: str
    due_at: datetime | None = None
    message_name: str | None = None
    correlation_key: str | None = None


@dataclass(frozen=True)
class InstanceView:
    id: str
    pathway_key: str
    version: int
    business_key: str
    patient_id: str | None
    status: str
    data: dict[str, Any]
    incident: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    ended_at: datetime | None
    started_by: str
    open_tasks: list[TaskView] = field(default_factory=list)
    waiting: list[WaitView] = field(default_factory=list)


@dataclass(frozen=True)
class PathwayVersionView:
    key: str
    version: int
    name: str | None
    family: str
    retired: bool
    deployed_at: datetime
    deployed_by: str
    source_file: str
    content_hash: str
    warnings: list[dict[str, Any]]
    message_starts: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DeployedProcess:
    key: str
    version: int
    created: bool
    name: str | None


@dataclass(frozen=True)
class DeployResult:
    processes: list[DeployedProcess]
    warnings: list[Problem]


@dataclass(frozen=True)
class MessageResult:
    outcome: str  # delivered | started | buffered | duplicate
    instance_ids: list[str]
    message_id: str | None
    expires_at: datetime | None = None
