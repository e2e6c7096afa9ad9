"""What the use cases and queries return: plain dataclasses read from the projection tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from .errors import Problem
from .model import Incident, PassedStep


@dataclass(frozen=True)
class PatientSummary:
    """Who a list row is for, as the row shows it: the patient that stands for the episode's patient now (its
    survivor when merged): `id` is that patient's id (GET /api/patients/{id}), `mrn` its first medical record
    number (an identifier of v2 type MR)."""

    id: str
    family: str | None
    given: str | None
    birth_date: date | None
    mrn: str | None

    @property
    def name(self) -> str | None:
        """"Family, Given", as lists of patients write it; None when neither is known."""
        return ", ".join(n for n in (self.family, self.given) if n) or None


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
    pathway_name: str | None = None
    patient_id: str | None = None
    business_key: str | None = None
    actions: tuple[str, ...] = ()  # what the reader may do to it now (engine/rules.py)
    patient: PatientSummary | None = None  # read with a page of tasks (queries.task_views)


@dataclass(frozen=True)
class EventView:
    id: int
    type: str
    actor: str
    at: datetime
    task_id: str | None
    data: dict[str, Any]
    pathway_version: int | None = None  # the number of the pathway version the event was recorded under


@dataclass(frozen=True)
class TaskTimelineView:
    """One human task of an episode, as an auditor reads it: when it appeared, was claimed and done,
    by whom, how long it waited and how late it was (None when on time or not due)."""

    task_id: str
    element_id: str
    name: str
    state: str
    offered_to: list[str]
    created_at: datetime
    claimed_at: datetime | None
    claimed_by: str | None
    completed_at: datetime | None
    completed_by: str | None
    due_date: datetime | None
    waited_seconds: float
    late_by_seconds: float | None
    cancelled_at: datetime | None = None  # ended by the pathway (a timer, another branch), not done


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
    topic: str | None = None  # an external task's (a built-in connector's: carepath.connector.*)


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
    actions: tuple[str, ...] = ()  # what the reader may do to it now (engine/rules.py)
    patient_ref: str | None = None  # the patient it is for (engine/patients.py; GET /api/patients/{id})
    patient: PatientSummary | None = None  # who stands for that patient now (lists read it with the page)


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
    measures: list[dict[str, Any]] = field(default_factory=list)
    example_data: dict[str, Any] | None = None
    start_data: dict[str, Any] | None = None


@dataclass(frozen=True)
class DeployedProcess:
    key: str
    version: int
    created: bool
    name: str | None
    sidecar_kept_from: int | None = None  # the upload had no sidecar: this version's sidecar applies


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


# -- carepath simulate: what a walk through a pathway looked like ----------------------------------

@dataclass(frozen=True)
class SimulatedTask:
    element_id: str
    name: str
    lane: str | None
    assignee: str | None
    groups: tuple[str, ...]  # the lane's group first, as the worklists offer it
    users: tuple[str, ...]
    priority: int
    due_date: datetime | None
    follow_up_date: datetime | None
    notes: tuple[str, ...] = ()  # assignment rules that could not be worked out


@dataclass(frozen=True)
class SimulatedTimer:
    element_id: str
    name: str | None
    due_at: datetime


@dataclass(frozen=True)
class SimulatedAlert:
    kind: str  # "reminder" | "overdue" (the product's deadline alerts, docs/deadlines.md)
    task_name: str
    due_at: datetime
    recipients: tuple[str, ...]  # "group care-coordinator", "user alice", "supervisors of group ..."


@dataclass
class SimulatedMoment:
    """One thing that happened at one time, and what the engine did in response."""

    at: datetime
    cause: str  # "start" | "complete" | "message" | "advance" | "timer" | "alert"
    subject: str | None = None  # the task, message, duration or timers
    data: dict[str, Any] | None = None
    until: datetime | None = None  # where an advance takes the clock
    passed: list[PassedStep] = field(default_factory=list)
    tasks_ready: list[SimulatedTask] = field(default_factory=list)
    tasks_cancelled: list[SimulatedTask] = field(default_factory=list)
    timers_set: list[SimulatedTimer] = field(default_factory=list)
    timers_fired: list[SimulatedTimer] = field(default_factory=list)
    timers_cancelled: list[SimulatedTimer] = field(default_factory=list)
    alerts_set: list[SimulatedAlert] = field(default_factory=list)
    alerts_sent: list[SimulatedAlert] = field(default_factory=list)
    messages_awaited: list[str] = field(default_factory=list)  # message names the pathway now waits for
    incident: Incident | None = None


@dataclass
class SimulationResult:
    pathway: str
    name: str | None
    time_zone: str
    calendar: str
    started_at: datetime
    start_data: dict[str, Any]
    moments: list[SimulatedMoment] = field(default_factory=list)
    status: str = "running"  # running (waiting) | completed | incident
    ended_at: datetime | None = None
    open_tasks: list[SimulatedTask] = field(default_factory=list)
    timers: list[SimulatedTimer] = field(default_factory=list)
    alerts: list[SimulatedAlert] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    # Service tasks waiting for an external worker, as "topic (element id)".
    external_tasks: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    # Why the walk stopped before every step was taken (a step that did not fit), with located details.
    stopped: str | None = None
    problems: list[Problem] = field(default_factory=list)
