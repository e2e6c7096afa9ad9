"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema, model_validator

from carepath.engine.audit import utc_instant
from carepath.engine.bounds import MAX_COMMENT_CHARS
from carepath.engine.patients import (
    MAX_ADDRESS,
    MAX_IDENTIFIERS,
    MAX_NAME,
    MAX_PHONE,
    MAX_SYSTEM,
    MAX_VALUE,
    Demographics,
    Identifier,
    Patient,
    PatientDetails,
)
from carepath.engine.rules import BREAK_GLASS_MAX_MINUTES, BREAK_GLASS_MINUTES

from .params import MAX_INT_ID


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# The history and the audit trail write every time as the exports do: UTC, microseconds, Z
# ("2026-11-30T17:00:00.000000Z"), so the same event reads the same in the API and in a file.
UtcInstant = Annotated[datetime, PlainSerializer(utc_instant, return_type=str, when_used="json"),
                       WithJsonSchema({"type": "string", "format": "date-time"})]


class ErrorOut(Out):
    error: str
    message: str
    errors: list[dict[str, Any]] | None = None
    warnings: list[dict[str, Any]] | None = Field(
        default=None, description="a refused deploy: the warnings found before it was refused (as `errors`)")
    error_id: str | None = Field(default=None, description="an unexpected error (500): the id of its logged line")


EXACT_TOTAL = ("count every matching row (slower on large lists); by default the total stops at 100 "
               "(or at the end of the page asked for)")

ERROR_MEANINGS: dict[int, str] = {
    400: "the request body could not be read",
    401: "missing or invalid token",
    403: "the user's role or groups do not allow this",
    404: "not found, or not visible to this user",
    409: "conflicts with the current state",
    413: "the request body is too large",
    422: "invalid input; `errors` lists each problem",
}
ERROR_SCHEMA_REF = {"$ref": "#/components/schemas/ErrorOut"}


def errors(*statuses: int, json: bool = True) -> dict[int | str, dict[str, Any]]:
    """The error answers an operation declares, all in the one shape api/errors.py writes (ErrorOut).
    `json=False` for an operation whose success is not JSON (HTML, SVG, XML, a file): FastAPI would
    document its errors under that media type, and they are JSON all the same."""
    if json:
        return {status: {"model": ErrorOut, "description": ERROR_MEANINGS[status]} for status in statuses}
    return {status: {"description": ERROR_MEANINGS[status],
                     "content": {"application/json": {"schema": ERROR_SCHEMA_REF}}} for status in statuses}


# What every authenticated operation may answer (each router declares it); each operation adds its own:
# 404 (a thing named in the path or the query), 409 (a state change), 422 (parameters or a body), and
# 400 and 413 (a body).
ERROR_RESPONSES = errors(401, 403)
BODY_ERRORS = (400, 413, 422)


class ReadyOut(Out):
    status: str = Field(description="ready or unavailable")
    database: str = Field(description="ok, or the error that reaching it raised")
    migrations: str | None = Field(None, description="current; behind (run `carepath db upgrade`); or ahead "
                                      "(a newer release migrated the database during a rolling upgrade)")


class ProblemOut(Out):
    message: str
    file: str | None = None
    line: int | None = None
    element_id: str | None = None
    field: str | None = None


class FormOut(Out):
    task_id: str
    form_schema: dict[str, Any] | None = Field(serialization_alias="schema")
    data: dict[str, Any]


class DeployedOut(Out):
    key: str
    version: int
    created: bool
    name: str | None
    sidecar_kept_from: int | None = Field(None, description="the upload had no <name>.pathway.json for this "
                                          "pathway: the sidecar (measures, start data, example data) of this "
                                          "earlier version applies; upload one to change or drop them")


class DeployOut(Out):
    processes: list[DeployedOut]
    warnings: list[ProblemOut]


class PathwayVersionOut(Out):
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
    message_starts: list[str]
    measures: list[dict[str, Any]] = Field(default_factory=list, description="quality measures the pathway "
                                           "declares (its <name>.pathway.json file): clock, window, what meets it")
    example_data: dict[str, Any] | None = Field(None, description="the pathway's documented example start data")
    start_data: dict[str, Any] | None = Field(None, description="JSON Schema of the data a start needs (the start "
                                              "event's form, or start_data in its pathway file); a start that "
                                              "does not fit it answers 422. `x-intake` ({task, fields}): fields a "
                                              "start may leave out, collected later by that user task")


class MeasureResultOut(Out):
    measure_id: str
    name: str
    source: str
    status: str = Field(description="met, not_met, open (window not closed yet), not_applicable, excluded "
                        "(episode cancelled before the window closed) or unknown (no date to start from)")
    detail: str
    clock_started: datetime | None
    window_opens: datetime | None
    deadline: datetime | None
    met_at: datetime | None


class PathwayOut(Out):
    key: str
    versions: list[PathwayVersionOut]


class PatientSummaryOut(Out):
    """Who a list item is for: the patient that stands for the episode's patient now (its survivor when merged)."""

    id: str = Field(description="the patient (GET /api/patients/{id}); the survivor when the episode's was merged")
    family: str | None
    given: str | None
    birth_date: date | None
    mrn: str | None = Field(description="the first medical record number (an identifier of HL7 v2 type MR)")


class TaskSummaryOut(Out):
    """A task as lists show it: no form data (a draft is part of the patient's record, and lists are not
    recorded as reads of it; GET /api/tasks/{id} answers it and is recorded)."""

    id: str
    instance_id: str
    pathway_key: str
    pathway_name: str | None = Field(default=None, description="the pathway's name (its process name)")
    patient_id: str | None = Field(default=None, description="the episode's patient")
    business_key: str | None = Field(default=None, description="the episode's business key (e.g. the encounter)")
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
    priority: int
    candidate_groups: list[str]
    candidate_users: list[str]
    owner: str | None = Field(default=None, description="who delegated the task (it returns to them)")
    follow_up_date: datetime | None = Field(default=None, description="when to look at the task again")
    due_in_seconds: int | None = Field(default=None, description="time left until the due date while the task "
                                       "is open; negative: how late it is")
    overdue: bool = Field(default=False, description="open and past its due date")
    actions: list[str] = Field(default_factory=list, description="what the caller may do to the task now "
                               "(docs/state-machine.md), e.g. claim, complete, hold, delegate, assign")
    patient: PatientSummaryOut | None = Field(default=None, description="who the episode is for (null: no patient "
                                              "record)")

    @model_validator(mode="after")
    def _overdue(self) -> TaskSummaryOut:
        self.overdue = self.due_in_seconds is not None and self.due_in_seconds < 0
        return self


class TaskOut(TaskSummaryOut):
    draft: dict[str, Any] | None = Field(default=None, description="form data saved without completing")


class WaitOut(Out):
    type: str
    element_id: str
    due_at: datetime | None = None
    message_name: str | None = None
    correlation_key: str | None = None
    topic: str | None = Field(default=None, description="an external task's topic (type external_task)")


class InstanceSummaryOut(Out):
    """An instance in a list; GET /api/instances/{id} adds data, open tasks and what it waits for."""

    id: str
    pathway_key: str
    version: int
    business_key: str
    patient_id: str | None
    status: str
    incident: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    ended_at: datetime | None
    started_by: str
    patient_ref: str | None = Field(default=None, description="the patient (GET /api/patients/{id})")
    patient: PatientSummaryOut | None = Field(default=None, description="who stands for that patient now (the "
                                              "survivor when merged; null: no patient record)")


class InstanceOut(Out):
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
    open_tasks: list[TaskOut]
    waiting: list[WaitOut]
    actions: list[str] = Field(default_factory=list, description="what the caller may do to the instance now "
                               "(docs/state-machine.md): cancel, retry")
    patient_ref: str | None = Field(default=None, description="the patient (GET /api/patients/{id})")


class Paged(Out):
    total: int = Field(description="matching rows, counted up to 100 (or to the end of the page asked for) "
                       "unless exact_total=true; see total_exact")
    total_exact: bool = Field(description="false when more rows match than `total` says")
    limit: int
    offset: int


class EventOut(Out):
    id: int
    type: str
    actor: str
    at: UtcInstant
    task_id: str | None
    data: dict[str, Any]
    pathway_version: int | None = Field(None, description="the number of the pathway version the event was "
                                        "recorded under")


class TaskTimelineOut(Out):
    task_id: str
    element_id: str
    name: str
    state: str
    offered_to: list[str]
    created_at: UtcInstant
    claimed_at: UtcInstant | None
    claimed_by: str | None
    completed_at: UtcInstant | None
    completed_by: str | None
    due_date: UtcInstant | None
    waited_seconds: float = Field(description="from creation to completion or cancellation, or to now while open")
    late_by_seconds: float | None = Field(description="past the due date when completed or cancelled (or now, "
                                          "while open)")
    cancelled_at: UtcInstant | None = Field(default=None, description="when the pathway ended it undone (a timer, "
                                            "another branch, the episode cancelled); completed_at is then empty")


class EventPage(Paged):
    items: list[EventOut]
    tasks: list[TaskTimelineOut] = Field(default_factory=list, description="each human task's timeline")


class AuditEventOut(EventOut):
    instance_id: str | None
    patient_id: str | None = Field(description="the patient of the event's instance")
    pathway: str | None = Field(description="the pathway key of the event's instance or pathway version")


class AuditEventPage(Paged):
    items: list[AuditEventOut]


class NotificationOut(Out):
    id: int
    kind: str = Field(description="reminder or overdue")
    channel: str
    instance_id: str | None
    task_id: str | None
    subject: str
    recipients: list[str] = Field(description="user:<name>, group:<name>, all:* (everyone who works tasks) "
                                  "or role:admin")
    payload: dict[str, Any]
    state: str = Field(description="pending, delivered or failed")
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class NotificationPage(Paged):
    items: list[NotificationOut]


class InstancePage(Paged):
    items: list[InstanceSummaryOut]


class TaskPage(Paged):
    items: list[TaskSummaryOut]


class IdentifierIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    system: str = Field(min_length=1, max_length=MAX_SYSTEM, description="a URI, e.g. urn:carepath:id:GENHOSP:MR")
    value: str = Field(min_length=1, max_length=MAX_VALUE)


class NameIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    family: str | None = Field(default=None, min_length=1, max_length=MAX_NAME)
    given: str | None = Field(default=None, min_length=1, max_length=MAX_NAME)


class PatientIn(BaseModel):
    """Who the episode is for (engine/patients.py): any identifier known finds the patient; the rest are
    added to it, and the demographics it has no value for are filled in. Nothing else is kept (no SSN)."""

    model_config = ConfigDict(extra="forbid")
    identifiers: list[IdentifierIn] = Field(default_factory=list, max_length=MAX_IDENTIFIERS)
    name: NameIn | None = None
    birth_date: date | None = None
    phone: str | None = Field(default=None, min_length=3, max_length=MAX_PHONE)
    address: str | None = Field(default=None, min_length=1, max_length=MAX_ADDRESS, description="one line")

    def details(self) -> PatientDetails:
        name = self.name or NameIn()
        return PatientDetails(tuple(Identifier(i.system, i.value) for i in self.identifiers),
                              Demographics(name.family, name.given, self.birth_date, self.phone, self.address))


class StartIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    business_key: str = Field(min_length=1, max_length=255)
    patient_id: str | None = Field(default=None, min_length=1, max_length=255,
                                   description="the patient's identifier in the default system "
                                   "(CAREPATH_PATIENT_ID_SYSTEM)")
    patient: PatientIn | None = Field(default=None, description="the patient, found or created with the episode")
    data: dict[str, Any] = Field(default_factory=dict)
    version: int | None = Field(default=None, ge=1, le=MAX_INT_ID)


class CompleteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    data: dict[str, Any] = Field(default_factory=dict)


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user: str = Field(min_length=1, max_length=200)


class RetryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    data: dict[str, Any] = Field(default_factory=dict, description="corrections merged into the failed step's data")


class ReasonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=2000)


class DueDateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    due_date: str | None = Field(description="ISO 8601 date-time (naive: the pathway's time zone), a date (due "
                                 "at its end), a duration from now such as P2BD, or 'P2BD after discharge_at "
                                 "end of day'; null clears it", examples=["2026-12-01T17:00:00-05:00", "P2BD"])
    reason: str = Field(min_length=1, max_length=2000)


class PriorityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    priority: int = Field(ge=0, le=100)


class CommentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=MAX_COMMENT_CHARS)


class CommentOut(Out):
    task_id: str
    author: str
    text: str
    at: datetime


class TaskCountOut(Out):
    group: str | None
    state: str
    count: int


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=2000)


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=255)
    correlation_key: str = Field(min_length=1, max_length=255)
    data: dict[str, Any] = Field(default_factory=dict)
    message_id: str | None = Field(default=None, min_length=1, max_length=255)


class MessageOut(Out):
    outcome: str
    instance_ids: list[str]
    message_id: str | None
    expires_at: datetime | None


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    role: str
    groups: list[str] = Field(default_factory=list)
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)


class UserOut(Out):
    name: str
    role: str
    active: bool
    groups: list[str]
    created_at: datetime


class GroupsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    groups: list[str]


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)


class TokenOut(Out):
    id: int
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class NewTokenOut(Out):
    user: UserOut
    token: str = Field(description="shown once; only its hash is stored")


class BreakGlassIn(BaseModel):
    """Emergency access to a patient outside the caller's teams (bounds: engine/usecases/break_glass.py)."""

    model_config = ConfigDict(extra="forbid")
    patient_id: str = Field(min_length=1, max_length=255)
    reason: str = Field(min_length=1, max_length=1000, description="why, for the auditors' review (10+ characters)")
    minutes: int = Field(default=BREAK_GLASS_MINUTES, ge=1, le=BREAK_GLASS_MAX_MINUTES,
                         description="how long the access lasts")


class MergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    merged: str = Field(min_length=1, max_length=MAX_SYSTEM + MAX_VALUE + 1,
                        description="the patient merged into this one: its id, or an identifier system|value")
    reason: str = Field(min_length=1, max_length=1000, description="why, kept in the history")


class UnmergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=1000, description="why, kept in the history")


class IdentifierOut(Out):
    system: str
    value: str


class PatientOut(BaseModel):
    id: str
    identifiers: list[IdentifierOut]
    name: dict[str, str | None] = Field(description="family and given")
    birth_date: date | None
    phone: str | None
    address: str | None
    merged_into: str | None = Field(description="the patient this one was merged into (null: not merged)")
    survivor: str | None = Field(description="the patient that stands for this one now (itself when not merged)")
    merged: list[str] = Field(description="the patients merged into this one")
    episodes: list[str] = Field(description="ids of the episodes the caller may read, of this patient and of "
                                "the patients merged with it, newest first")

    @classmethod
    def of(cls, patient: Patient) -> PatientOut:
        d = patient.demographics
        return cls(id=patient.id, identifiers=[IdentifierOut(system=i.system, value=i.value)
                                               for i in patient.identifiers],
                   name={"family": d.family, "given": d.given}, birth_date=d.birth_date, phone=d.phone,
                   address=d.address, merged_into=patient.merged_into, survivor=patient.survivor,
                   merged=list(patient.merged), episodes=list(patient.episodes))


class MergeOut(Out):
    patient: str = Field(description="the patient merged (or unmerged)")
    merged_into: str | None = Field(description="the survivor it now links to (null after an unmerge)")
    previous: str | None = Field(description="the survivor it linked to before an unmerge")


class GrantOut(Out):
    id: int
    user: str
    patient_id: str
    reason: str
    granted_at: UtcInstant
    expires_at: UtcInstant
    ended_at: UtcInstant | None
    active: bool
    actions: list[str] = Field(default_factory=list, description="what the caller may do to the grant now "
                               "(docs/state-machine.md): end")


class ReadUnderGrantOut(Out):
    at: UtcInstant
    what: str
    instance_id: str | None
    task_id: str | None


class GrantReviewOut(Out):
    grant: GrantOut
    reads: list[ReadUnderGrantOut] = Field(description="the reads of the record made under the grant, oldest first")
    reads_total: int
