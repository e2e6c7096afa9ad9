"""The product's own view of a running pathway: small dataclasses, no SpiffWorkflow objects."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class InstanceStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    INCIDENT = "incident"


ACTIVE_STATUSES = (InstanceStatus.RUNNING, InstanceStatus.INCIDENT)


class TaskState(StrEnum):
    """FHIR Task status codes for human tasks."""

    READY = "ready"
    IN_PROGRESS = "in-progress"
    ON_HOLD = "on-hold"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class TimerState(StrEnum):
    PENDING = "pending"
    FIRED = "fired"
    CANCELLED = "cancelled"
    FAILED = "failed"


class ReferralStatus(StrEnum):
    """A referral to a community organization (table `referrals`): the HL7 Gravity SDOH Clinical Care IG's
    referral Task statuses. The requester sets draft, requested, entered-in-error; the organization sets
    accepted, rejected, in-progress, on-hold, failed, completed; either sets cancelled."""

    DRAFT = "draft"
    REQUESTED = "requested"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    IN_PROGRESS = "in-progress"
    ON_HOLD = "on-hold"
    FAILED = "failed"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    ENTERED_IN_ERROR = "entered-in-error"


class ServiceStatus(StrEnum):
    """A community service in the resource directory (table `resource_services`, column `status`): HSDS 3.0's
    status codes, set by the dataset an import reads; inactive and defunct services are never found."""

    ACTIVE = "active"
    INACTIVE = "inactive"
    DEFUNCT = "defunct"
    TEMPORARILY_CLOSED = "temporarily closed"


class VersionState(StrEnum):
    """A pathway version (table `pathway_versions`): the current one of its key starts new episodes, an
    older one keeps its running episodes, a retired one starts nothing (column `retired`; current/older is
    which version is the newest not retired)."""

    CURRENT = "current"
    OLDER = "older"
    RETIRED = "retired"


class PatientState(StrEnum):
    """A patient (table `patients`): active, or merged into another (its `merged_into` set); not stored
    apart from that link."""

    ACTIVE = "active"
    MERGED = "merged"


class UserState(StrEnum):
    """A user account (table `users`, column `active`): active users sign in and use tokens; a deactivated
    one does neither, and keeps their history."""

    ACTIVE = "active"
    DEACTIVATED = "deactivated"


class GrantState(StrEnum):
    """A break-glass grant (table `break_glass_grants`): active until its end time, then expired, or ended
    early by its holder or an auditor; not stored (the times say it: `expires_at`, `ended_at`)."""

    ACTIVE = "active"
    EXPIRED = "expired"
    ENDED = "ended"


class MessageState(StrEnum):
    """A message received through POST /api/messages (table `messages`)."""

    BUFFERED = "buffered"  # no catch waits for it yet: kept until its time to live ends
    DELIVERED = "delivered"
    STARTED = "started"  # it started an instance (a message start event)
    EXPIRED = "expired"


class InboxState(StrEnum):
    """A message received over MLLP (table `inbox_messages`): stored before it is acknowledged, then
    processed once, in one transaction, to one of the outcomes."""

    RECEIVED = "received"  # stored and acknowledged; not processed yet
    STARTED = "started"  # it started an episode
    DELIVERED = "delivered"  # it reached a running episode
    NOTHING_TO_DO = "nothing_to_do"  # no routing rule matched (acknowledged AA all the same)
    FAILED = "failed"  # processing failed: the outcome says why; an admin may reprocess it


class ExternalTaskState(StrEnum):
    """A service task done by an external worker (table `external_tasks`, usecases/external_tasks.py)."""

    AVAILABLE = "available"  # waiting for a worker to fetch it (not before `lock_expires_at`, after a failure)
    LOCKED = "locked"  # a worker holds it until `lock_expires_at`; once that passes, others may fetch it
    COMPLETED = "completed"  # its worker completed it, or threw a BPMN error the diagram caught
    FAILED = "failed"  # no retries left, or an uncaught BPMN error: the instance is in incident
    CANCELLED = "cancelled"  # the pathway moved on without it (a boundary event, the episode was cancelled)


class NotificationState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class PartnerState(StrEnum):
    """A partner organization in the admin-managed registry (table `partner_organizations`, column
    `active`): an active one is sent deliveries and its integration account acts for it."""

    ACTIVE = "active"
    INACTIVE = "inactive"


class DeliveryState(StrEnum):
    """An outbound delivery to a partner's endpoint (table `outbound_deliveries`, usecases/outbox.py)."""

    PENDING = "pending"  # enqueued (or retried by an admin), not attempted yet
    FAILED = "failed"  # the last attempt failed; tried again at next_attempt_at
    DELIVERED = "delivered"  # the endpoint answered 2xx
    DEAD = "dead"  # given up: refused (4xx), too many attempts, or the partner cannot be sent to


# task_candidates row (kind "all") of a task the diagram offers to nobody in particular.
EVERYONE = "*"


def audience_key(kind: str, value: str) -> str:
    """One entry of tasks.audience: "group:<name>", "user:<name>" or "all:*"."""
    return f"{kind}:{value}"


def audience_keys(candidates: Iterable[tuple[str, str]]) -> list[str]:
    return sorted({audience_key(kind, value) for kind, value in candidates})


def viewer_keys(user: str, groups: Iterable[str], *, everyone: bool = True) -> list[str]:
    """The audience keys that put a task in this user's view (or, without `everyone`, on their
    claimable list: offered to them or their groups by name)."""
    keys = [audience_key("user", user), *(audience_key("group", g) for g in sorted(groups))]
    return keys + [audience_key("all", EVERYONE)] if everyone else keys

# Tasks someone can act on, and all tasks not yet finished.
WORKABLE_TASK_STATES = (TaskState.READY.value, TaskState.IN_PROGRESS.value)
OPEN_TASK_STATES = (*WORKABLE_TASK_STATES, TaskState.ON_HOLD.value)

# Reading a patient's record is recorded in the history table as this event type (usecases/access.py);
# it is part of the audit trail, not of an instance's history of changes.
RECORD_VIEWED = "record_viewed"

# Every event type CarePath records (docs/audit.md); the audit trail's `type` filter refuses a name that
# is neither here nor in the table, so a typo is an error, not "nobody did that". A test keeps it whole.
EVENT_TYPES = frozenset({
    RECORD_VIEWED, "audit_log_used", "instance_started", "completed", "cancelled", "incident", "incident_resolved",
    "retried", "call_bound", "measure_outcomes", "task_ready", "task_claimed", "task_unclaimed", "task_assigned",
    "task_delegated", "task_resolved", "task_held", "task_resumed", "task_draft_saved", "task_completed",
    "task_cancelled", "task_comment", "task_due_date_changed", "task_priority_changed", "task_released",
    "task_reminder_alert", "task_overdue_alert", "task_alert_failed", "timer_scheduled", "timer_fired",
    "timer_cancelled", "timer_failed", "timer_retry_scheduled", "message_awaited", "message_received",
    "message_wait_cancelled", "message_buffered", "message_refused", "notification_delivered", "notification_failed",
    "pathway_deployed", "pathway_retired", "user_added", "user_groups_changed", "user_role_changed",
    "user_deactivated", "token_issued", "token_revoked", "password_set", "signed_in", "signed_out", "session_ended",
    "sign_in_locked", "break_glass_granted", "break_glass_ended", "patient_updated", "patient_merged",
    "patient_unmerged", "inbox_message_reprocessed", "resources_imported", "partner_added", "partner_updated",
    "partner_secret_rotated", "partner_deactivated", "partner_activated", "outbound_delivery_retried",
    "instance_migrated",
    "external_task_created", "external_task_locked", "external_task_lock_extended", "external_task_unlocked",
    "external_task_completed", "external_task_failed", "external_task_bpmn_error", "external_task_cancelled",
    "referral_sent", "referral_status_changed", "referral_outcome_recorded",
    "referral_consent_withdrawn"})


@dataclass(frozen=True)
class OpenTask:
    id: str
    element_id: str
    name: str
    lane: str | None
    kind: str
    process_id: str
    documentation: str | None = None
    form: dict[str, Any] | None = None
    assignee: str | None = None
    candidate_users: tuple[str, ...] = ()
    candidate_groups: tuple[str, ...] = ()
    priority: int = 50
    assignment_errors: tuple[str, ...] = ()
    due_date: datetime | None = None
    follow_up_date: datetime | None = None


@dataclass(frozen=True)
class PassedStep:
    """A diagram element the engine just completed (or entered, for a call activity), in order."""

    element_id: str
    name: str | None
    kind: str  # "user task", "exclusive gateway", "timer boundary event", ...
    process_id: str


@dataclass(frozen=True)
class TimerWait:
    task_id: str
    element_id: str
    name: str | None
    due_at: datetime


@dataclass(frozen=True)
class MessageWait:
    task_id: str
    element_id: str
    message_name: str
    correlation_value: str | None


@dataclass(frozen=True)
class ExternalWait:
    """A service task waiting for an external worker of its topic (runtime/external_tasks.py)."""

    task_id: str
    element_id: str
    name: str | None
    topic: str
    variables: tuple[str, ...] | None  # the variables it hands its worker; None: all
    priority: int = 0
    inputs: dict[str, Any] | None = None  # its input parameters' values (camunda:inputOutput): always handed


@dataclass(frozen=True)
class Incident:
    message: str
    element_id: str | None = None
    task_id: str | None = None
    detail: str | None = None


@dataclass
class Snapshot:
    """What the engine says about an instance after an action."""

    status: InstanceStatus
    data: dict[str, Any]
    open_tasks: list[OpenTask] = field(default_factory=list)
    timers: list[TimerWait] = field(default_factory=list)
    messages: list[MessageWait] = field(default_factory=list)
    incident: Incident | None = None
    external_tasks: list[ExternalWait] = field(default_factory=list)
    has_external_tasks: bool = False  # the pathway has service tasks for workers (else no projection to keep)
    has_message_events: bool = True  # the pathway has message events (else it has no message subscriptions)
    call_bindings: dict[str, str] = field(default_factory=dict)
