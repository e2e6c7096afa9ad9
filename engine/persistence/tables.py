"""The database schema: typed SQLAlchemy 2 models shared by SQLite and PostgreSQL.

Instance state is SpiffWorkflow JSON without the spec; everything a list or a worklist needs is
projected into plain indexed columns (`tasks`, `message_subscriptions`, `timers`, `external_tasks`) so that no
query ever deserializes a workflow. `events` is append-only.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, validates
from sqlalchemy.types import TypeDecorator

from ..model import InboxState, InstanceStatus, MessageState, NotificationState, TaskState, TimerState
from ..patients import search_key

ACTIVE_SQL = text("status IN ('running', 'incident')")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, also on SQLite (which stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def states(enum: type[StrEnum], column: str) -> Enum:
    """A state column: the enum's value as a string, which the database checks (CHECK constraint
    ck_<table>_<column>, migration 0012), so a new state needs only a migration replacing the check."""
    return Enum(enum, name=column, native_enum=False, create_constraint=True, length=20, validate_strings=True,
                values_callable=lambda members: [member.value for member in members])


BigId = BigInteger().with_variant(Integer(), "sqlite")
AudienceType = JSON().with_variant(postgresql.ARRAY(Text()), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    })
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    role: Mapped[str] = mapped_column(String(40))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    # Argon2id hash (its parameters and salt inside) of the web sign-in password; None: no password set.
    password_hash: Mapped[str | None] = mapped_column(String(255), default=None)


class UserGroup(Base):
    __tablename__ = "user_groups"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    group_name: Mapped[str] = mapped_column(String(200), primary_key=True)


class ApiToken(Base):
    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class WebSession(Base):
    """A signed-in browser: the cookie holds a random id, the table its SHA-256 only (usecases/web_sessions.py)."""

    __tablename__ = "web_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    client_host: Mapped[str | None] = mapped_column(String(100))
    user_agent: Mapped[str | None] = mapped_column(String(300))


class WorklistSetting(Base):
    """A user's last worklist choice (quick view, sort, search), kept on the server so that it follows
    them to any browser and across sign-ins (usecases/worklist_settings.py)."""

    __tablename__ = "worklist_settings"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    view: Mapped[str] = mapped_column(String(20))
    sort: Mapped[str] = mapped_column(String(20))
    search: Mapped[str | None] = mapped_column(String(255))
    updated_at: Mapped[datetime]


class BreakGlassGrant(Base):
    """Emergency access to one patient outside the user's teams, for a limited time (usecases/break_glass.py)."""

    __tablename__ = "break_glass_grants"
    __table_args__ = (Index("ix_break_glass_grants_user_name_expires_at", "user_name", "expires_at"),
                      Index("ix_break_glass_grants_granted_at", "granted_at"))
    id: Mapped[int] = mapped_column(primary_key=True)
    user_name: Mapped[str] = mapped_column(String(200))
    patient_id: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str] = mapped_column(String(1000))
    granted_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]


class SignInAttempt(Base):
    """Failed web sign-ins of one key (an account name, a client address) in the current window, shared by
    every process (engine/sign_in_throttle.py). A row whose window and lockout have ended is pruned."""

    __tablename__ = "sign_in_attempts"
    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(index=True)
    failures: Mapped[int] = mapped_column(Integer)
    locked_until: Mapped[datetime | None]


class DeploymentFile(Base):
    __tablename__ = "deployment_files"
    id: Mapped[int] = mapped_column(primary_key=True)
    deployment_id: Mapped[str] = mapped_column(String(36), index=True)
    filename: Mapped[str] = mapped_column(String(500))
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]


class PathwayVersion(Base):
    __tablename__ = "pathway_versions"
    __table_args__ = (
        UniqueConstraint("key", "version"),
        Index("ix_pathway_versions_key_content_hash", "key", "content_hash"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(255))
    version: Mapped[int]
    name: Mapped[str | None] = mapped_column(String(500))
    family: Mapped[str] = mapped_column(String(20))
    content_hash: Mapped[str] = mapped_column(String(64))
    spec_json: Mapped[str] = mapped_column(Text, deferred=True)  # read only when the spec is not cached
    source_file_id: Mapped[int] = mapped_column(ForeignKey("deployment_files.id"))
    deployment_id: Mapped[str] = mapped_column(String(36))
    external_calls: Mapped[list[Any]]
    lanes: Mapped[list[Any]]
    warnings: Mapped[list[Any]]
    documentation: Mapped[str | None] = mapped_column(Text)
    task_rules: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default="{}")
    # The process's business calendar and time zone ({"calendar": ..., "timezone": ...}), from its properties.
    time_settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default="{}")
    # From the pathway's sidecar file: its quality measure declarations and documented example start data.
    measures: Mapped[list[Any]] = mapped_column(JSON, default=list, server_default="[]")
    example_data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The JSON Schema of the data a start needs (the start event's form, else the sidecar's start_data).
    start_data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The sidecar file the version was deployed with: uploaded with it, or kept from the version before.
    sidecar_file_id: Mapped[int | None]
    retired: Mapped[bool] = mapped_column(Boolean, default=False)
    deployed_at: Mapped[datetime]
    deployed_by: Mapped[str] = mapped_column(String(200))


class MessageStartEvent(Base):
    __tablename__ = "message_start_events"
    pathway_version_id: Mapped[int] = mapped_column(
        ForeignKey("pathway_versions.id", ondelete="CASCADE"), primary_key=True)
    message_name: Mapped[str] = mapped_column(String(255), primary_key=True, index=True)


class MessageCatchEvent(Base):
    """A message a version's instances wait for (catch event, receive task, boundary or event-subprocess
    start), anywhere in the version's processes: with the start events, the message names in use."""

    __tablename__ = "message_catch_events"
    pathway_version_id: Mapped[int] = mapped_column(
        ForeignKey("pathway_versions.id", ondelete="CASCADE"), primary_key=True)
    message_name: Mapped[str] = mapped_column(String(255), primary_key=True, index=True)


class Patient(Base):
    """Who episodes are for (engine/patients.py): demographics a coordinator needs, and nothing more. A merged
    patient links to its survivor (`merged_into`); rows are never moved or deleted by a merge."""

    __tablename__ = "patients"
    __table_args__ = (Index("ix_patients_family_key", "family_key"), Index("ix_patients_given_key", "given_key"))
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    family: Mapped[str | None] = mapped_column(String(200))
    given: Mapped[str | None] = mapped_column(String(200))
    # The names as searches compare them (patients.search_key: case and accents folded), set with the names.
    family_key: Mapped[str | None] = mapped_column(String(200))
    given_key: Mapped[str | None] = mapped_column(String(200))
    birth_date: Mapped[date | None] = mapped_column(Date)
    phone: Mapped[str | None] = mapped_column(String(40))
    address: Mapped[str | None] = mapped_column(String(500))
    merged_into: Mapped[str | None] = mapped_column(ForeignKey("patients.id"), index=True)
    lock_version: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __mapper_args__ = {"version_id_col": lock_version}

    @validates("family", "given")
    def _keep_search_key(self, name: str, value: str | None) -> str | None:
        setattr(self, f"{name}_key", search_key(value) if value else None)
        return value


class PatientIdentifier(Base):
    """One identifier of a patient: unique across patients, so a message's identifiers find one patient."""

    __tablename__ = "patient_identifiers"
    __table_args__ = (UniqueConstraint("system", "value"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    patient_ref: Mapped[str] = mapped_column(ForeignKey("patients.id"), index=True)
    system: Mapped[str] = mapped_column(String(255))
    value: Mapped[str] = mapped_column(String(255))


class Instance(Base):
    __tablename__ = "instances"
    __table_args__ = (
        Index("uq_instances_active_business_key", "pathway_key", "business_key", unique=True,
              sqlite_where=ACTIVE_SQL, postgresql_where=ACTIVE_SQL),
        Index("ix_instances_status_created_at", "status", "created_at"),
        Index("ix_instances_created_at_id", "created_at", "id"),
        Index("ix_instances_pathway_key_created_at", "pathway_key", "created_at"),  # audit: by pathway
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    pathway_version_id: Mapped[int] = mapped_column(ForeignKey("pathway_versions.id"), index=True)
    pathway_key: Mapped[str] = mapped_column(String(255))
    business_key: Mapped[str] = mapped_column(String(255), index=True)
    patient_id: Mapped[str | None] = mapped_column(String(255), index=True)
    # The patient (engine/patients.py) the episode is for; `patient_id` is its identifier in the default system.
    patient_ref: Mapped[str | None] = mapped_column(ForeignKey("patients.id"), index=True)
    status: Mapped[str] = mapped_column(states(InstanceStatus, "status"))
    state: Mapped[str] = mapped_column(Text, deferred=True)  # read only when the workflow is not cached
    data: Mapped[dict[str, Any]]
    incident: Mapped[dict[str, Any] | None]
    call_bindings: Mapped[dict[str, Any]]
    lock_version: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    started_by: Mapped[str] = mapped_column(String(200))

    __mapper_args__ = {"version_id_col": lock_version}


class Task(Base):
    """Projection of one human task, kept in step with the engine by every state change."""

    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_state_lane_created_at", "state", "lane", "created_at"),
        Index("ix_tasks_state_created_at", "state", "created_at"),
        Index("ix_tasks_instance_id_state", "instance_id", "state"),
        Index("ix_tasks_state_due_date_created_at", "state", "due_date", "created_at", "id"),
        Index("ix_tasks_audience", "audience", postgresql_using="gin"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    instance_id: Mapped[str] = mapped_column(ForeignKey("instances.id", ondelete="CASCADE"))
    pathway_key: Mapped[str] = mapped_column(String(255))
    # Copied from the instance and its version when the task is created (they never change), so a
    # worklist row says whose task it is without a join.
    pathway_name: Mapped[str | None] = mapped_column(String(500))
    patient_id: Mapped[str | None] = mapped_column(String(255))
    business_key: Mapped[str | None] = mapped_column(String(255))
    element_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(500))
    lane: Mapped[str | None] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(states(TaskState, "state"))
    assignee: Mapped[str | None] = mapped_column(String(200), index=True)
    owner: Mapped[str | None] = mapped_column(String(200))  # who delegated it, and gets it back on resolve
    draft: Mapped[dict[str, Any] | None]
    priority: Mapped[int] = mapped_column(Integer, default=50, server_default="50")
    due_date: Mapped[datetime | None]
    follow_up_date: Mapped[datetime | None]
    documentation: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]
    completed_by: Mapped[str | None] = mapped_column(String(200))
    # Who the task is offered to, as keys "group:<name>", "user:<name>" or "all:*": the task_candidates
    # rows folded into one column so that worklists test visibility on the row itself (a GIN-indexed
    # array on PostgreSQL, a JSON array on SQLite) instead of joining a subquery per request.
    audience: Mapped[list[str]] = mapped_column(AudienceType, default=list)


# Worklists sorted by priority (highest first, then oldest): one index walk in the page's order.
Index("ix_tasks_state_priority_created_at", Task.state, Task.priority.desc(), Task.created_at, Task.id)

# The web worklist lists open tasks in any of the three open states: one walk of a partial index (open
# tasks only) in each of its sorts' order, stopped after a page (migration 0016).
OPEN_TASKS = text("state IN ('ready', 'in-progress', 'on-hold')")
for _name, *_columns in (("ix_tasks_open_due_date", Task.due_date, Task.created_at, Task.id),
                         ("ix_tasks_open_priority_due_date", Task.priority.desc(), Task.due_date, Task.created_at,
                          Task.id),
                         ("ix_tasks_open_created_at", Task.created_at, Task.id)):
    Index(_name, *_columns, postgresql_where=OPEN_TASKS, sqlite_where=OPEN_TASKS)


class TaskCandidate(Base):
    """Who may claim a task: groups (from lanes and the diagram) and named users."""

    __tablename__ = "task_candidates"
    __table_args__ = (Index("ix_task_candidates_kind_value", "kind", "value"),)
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10), primary_key=True)
    value: Mapped[str] = mapped_column(String(200), primary_key=True)


class Event(Base):
    """Append-only history: one row per state change, hash-chained per instance (see `chain.py`); the
    database refuses UPDATE and DELETE on it (triggers, migration 0011)."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_instance_id_id", "instance_id", "id"),
        # Two writers can never both append seq N to a chain; also the head lookup and verify's order.
        Index("uq_events_chain_seq", "chain", "seq", unique=True),
        # The audit trail's filters (GET /api/audit/events): by user, by event type, by time.
        Index("ix_events_actor_id", "actor", "id"),
        Index("ix_events_type_id", "type", "id"),
        Index("ix_events_at_id", "at", "id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    instance_id: Mapped[str | None] = mapped_column(String(36))
    task_id: Mapped[str | None] = mapped_column(String(36))
    pathway_version_id: Mapped[int | None]
    type: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime]
    data: Mapped[dict[str, Any]]
    chain: Mapped[str] = mapped_column(String(36))  # the instance id, or "system"
    seq: Mapped[int] = mapped_column(Integer)  # 1, 2, ... within the chain
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class _MeasureRow:
    """The columns the compliance report counts, shared by its two projections (one row per instance and
    declared measure)."""

    instance_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    measure_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    pathway_version_id: Mapped[int] = mapped_column(Integer)
    pathway_key: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(20))
    clock_started: Mapped[datetime | None]
    met_at: Mapped[datetime | None]
    deadline: Mapped[datetime | None]
    detail: Mapped[str] = mapped_column(Text)
    days_to_meet: Mapped[float | None] = mapped_column(Float)


class MeasureOutcome(_MeasureRow, Base):
    """The compliance report's projection of each episode's last recorded `measure_outcomes` (one row per
    declared measure), replaced in the transaction that records them (engine/usecases/measures.py).
    `final`: the episode had ended when they were recorded, every outcome is final and they name exactly
    the declared measures, so the report counts them in SQL instead of evaluating the episode."""

    __tablename__ = "measure_outcomes"
    __table_args__ = (
        Index("ix_measure_outcomes_version_final_clock", "pathway_version_id", "final", "clock_started"),
    )
    final: Mapped[bool] = mapped_column(Boolean)
    recorded_at: Mapped[datetime]


class MeasureState(_MeasureRow, Base):
    """Where an episode without final recorded outcomes stands on each declared measure, whatever the
    time: written with the instance's state (engine/usecases/measure_states.py) from the facts of the
    instance version `lock_version` names. `open` with a deadline reads as missed once that deadline has
    passed (`detail` is then the miss's); a row whose `lock_version` is not the instance's is stale and
    the report evaluates that episode live instead."""

    __tablename__ = "measure_states"
    __table_args__ = (Index("ix_measure_states_version_clock", "pathway_version_id", "clock_started"),)
    lock_version: Mapped[int] = mapped_column(Integer)


class AuditCheckpoint(Base):
    """The heads of the chains that changed since the checkpoint before (of every chain when `full`), signed
    with a key kept outside the database (HMAC-SHA256 over this row's content and the previous checkpoint's
    MAC). Append-only, like `events` (triggers, migration 0011)."""

    __tablename__ = "audit_checkpoints"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    seq: Mapped[int] = mapped_column(Integer, unique=True)  # 1, 2, ...: two sweeps cannot both write N
    at: Mapped[datetime]
    last_event_id: Mapped[int] = mapped_column(BigInteger)
    heads: Mapped[dict[str, Any]]  # {chain: [seq, hash]}
    mac: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(64), default="default")  # which key of the ring signed it
    full: Mapped[bool] = mapped_column(Boolean, default=False)  # heads of every chain, not only the changed ones
    format: Mapped[int] = mapped_column(Integer, default=1)  # what the MAC covers (chain.checkpoint_mac)


class AuditVerification(Base):
    """A check of the history that found it intact, up to which checkpoint (usecases/verify_history.py): the
    web app's verify page checks again from the latest such checkpoint onwards, not from the first event."""

    __tablename__ = "audit_verifications"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(200))
    full: Mapped[bool] = mapped_column(Boolean)
    from_checkpoint: Mapped[int] = mapped_column(Integer)  # 0: from the first event
    to_checkpoint: Mapped[int] = mapped_column(Integer, index=True)
    events: Mapped[int] = mapped_column(BigInteger)


class Timer(Base):
    """A waiting timer event: the database, not APScheduler, is the source of truth for what is due."""

    __tablename__ = "timers"
    __table_args__ = (
        Index("ix_timers_state_due_at", "state", "due_at"),
        Index("ix_timers_instance_id_state_due_at", "instance_id", "state", "due_at"),
        Index("uq_timers_pending_task_kind", "task_id", "kind", unique=True,
              sqlite_where=text("state = 'pending'"), postgresql_where=text("state = 'pending'")),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    instance_id: Mapped[str] = mapped_column(ForeignKey("instances.id", ondelete="CASCADE"), index=True)
    task_id: Mapped[str] = mapped_column(String(36))
    element_id: Mapped[str] = mapped_column(String(255))
    # "bpmn": a timer event of the diagram; "measure": a quality measure's window closing after its episode
    # ended (task_id is then the instance id); "reminder" / "overdue": the product's deadline alerts for
    # the human task task_id (fired without running the workflow).
    kind: Mapped[str] = mapped_column(String(20), default="bpmn", server_default="bpmn")
    due_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(states(TimerState, "state"))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_by: Mapped[str | None] = mapped_column(String(100))
    locked_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    fired_at: Mapped[datetime | None]


class TaskCountDelta(Base):
    """Changes to the number of open tasks per candidate group and state, appended by database
    triggers on `tasks` (migration 0007) whenever a task opens, changes state or closes: the
    supervisors' dashboard sums them instead of aggregating every open task. Insert-only, so writers
    never wait on each other; the scheduler's sweep folds them into one row per (group, state).
    group_name '' stands for tasks offered to no group."""

    __tablename__ = "task_count_deltas"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    group_name: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(20))
    delta: Mapped[int] = mapped_column(Integer)


class MessageSubscription(Base):
    """A message catch that is waiting, with the correlation key it waits for."""

    __tablename__ = "message_subscriptions"
    __table_args__ = (Index("ix_message_subscriptions_name_key", "message_name", "correlation_key"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    instance_id: Mapped[str] = mapped_column(ForeignKey("instances.id", ondelete="CASCADE"), index=True)
    pathway_key: Mapped[str] = mapped_column(String(255))
    task_id: Mapped[str] = mapped_column(String(36))
    element_id: Mapped[str] = mapped_column(String(255))
    message_name: Mapped[str] = mapped_column(String(255))
    correlation_key: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime]


class BufferedMessage(Base):
    """A message received with no waiting receiver, kept until its time-to-live ends."""

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_name_key_state", "name", "correlation_key", "state"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    correlation_key: Mapped[str] = mapped_column(String(255))
    data: Mapped[dict[str, Any]]
    state: Mapped[str] = mapped_column(states(MessageState, "state"))
    received_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]
    instance_id: Mapped[str | None] = mapped_column(String(36))
    sender: Mapped[str] = mapped_column(String(200))
    # The instances the sender may reach, as when sent ({"user", "groups"}, identity.message_scope); null: all.
    sender_scope: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class NotificationRecord(Base):
    """A reminder or escalation for one channel; delivered (and retried) after the transaction that made it."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_state_next_attempt_at", "state", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(40))
    instance_id: Mapped[str | None] = mapped_column(String(36), index=True)
    task_id: Mapped[str | None] = mapped_column(String(36))
    subject: Mapped[str] = mapped_column(String(500))
    recipients: Mapped[list[Any]]
    payload: Mapped[dict[str, Any]]
    state: Mapped[str] = mapped_column(states(NotificationState, "state"))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]


class NotificationRead(Base):
    """A user has read a notification (the inbox's "unread"): one row per reader, written by
    usecases/notification_reads.mark_read; no row, unread."""

    __tablename__ = "notification_reads"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    notification_id: Mapped[int] = mapped_column(BigId, ForeignKey("notifications.id", ondelete="CASCADE"),
                                                 primary_key=True)
    read_at: Mapped[datetime]


class InboxMessage(Base):
    """A message received from outside (HL7 v2 ADT over MLLP): committed before it is acknowledged, processed
    once (usecases/inbox.py). The raw payload carries PHI: it is dropped after the retention period and the
    metadata kept (`purged_at`)."""

    __tablename__ = "inbox_messages"
    __table_args__ = (UniqueConstraint("sender", "control_id"),
                      Index("ix_inbox_messages_state_id", "state", "id"),
                      Index("ix_inbox_messages_patient_key_state", "patient_key", "state"),
                      Index("ix_inbox_messages_received_at", "received_at"),
                      Index("ix_inbox_messages_processed_at", "processed_at"))
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    sender: Mapped[str] = mapped_column(String(200))  # MSH-3^MSH-4
    control_id: Mapped[str] = mapped_column(String(199))  # MSH-10
    account: Mapped[str] = mapped_column(String(200))  # the integration account it acts under
    peer: Mapped[str] = mapped_column(String(100))  # the address it came from
    received_at: Mapped[datetime]
    message_type: Mapped[str] = mapped_column(String(10))
    event: Mapped[str] = mapped_column(String(10))
    version: Mapped[str] = mapped_column(String(20))
    patient_key: Mapped[str | None] = mapped_column(String(255))
    charset: Mapped[str] = mapped_column(String(40), default="")
    raw: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(states(InboxState, "state"))
    outcome: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    processed_at: Mapped[datetime | None]
    purged_at: Mapped[datetime | None]


# The directory's tables live in their own module; importing it here puts them on Base.metadata.
from . import consent_tables as consent_tables  # noqa: E402
from . import directory_tables as directory_tables  # noqa: E402
from . import external_task_tables as external_task_tables  # noqa: E402
from . import partner_tables as partner_tables  # noqa: E402
from . import referral_tables as referral_tables  # noqa: E402
