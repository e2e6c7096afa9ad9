"""Read side: lists and views answered from the projection tables, never from workflow state."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Select, Text, bindparam, func, select, true
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from .bounds import shown
from .identity import Principal, VisibleTo, acting_scope
from .model import (
    ACTIVE_STATUSES,
    OPEN_TASK_STATES,
    RECORD_VIEWED,
    ExternalTaskState,
    InstanceStatus,
    TaskState,
    TimerState,
    audience_key,
    viewer_keys,
)
from .patient_links import (
    linked_patient_ids,
    patients_with_identifier_value,
    summaries_of_instances,
    summaries_of_patients,
)
from .persistence.external_task_tables import ExternalTask
from .persistence.tables import (
    DeploymentFile,
    Event,
    Instance,
    MessageStartEvent,
    MessageSubscription,
    NotificationRead,
    NotificationRecord,
    PathwayVersion,
    Task,
    TaskCandidate,
    TaskCountDelta,
    Timer,
    User,
    UserGroup,
)
from .persistence.tables import Patient as PatientRow
from .rules import InstanceFacts, TaskFacts, allowed_actions
from .views import (
    EventView,
    InstanceView,
    NotificationView,
    PathwayVersionView,
    PatientSummary,
    TaskTimelineView,
    TaskView,
    WaitView,
)


@dataclass(frozen=True)
class Page:
    items: list[Any]
    total: int
    limit: int
    offset: int
    total_exact: bool = True


def task_view(row: Task, candidates: list[tuple[str, str]] | None = None, now: datetime | None = None,
              actions: tuple[str, ...] = (), patient: PatientSummary | None = None) -> TaskView:
    candidates = candidates or []
    due_in = None
    if now is not None and row.due_date is not None and row.state in OPEN_TASK_STATES:
        due_in = int((row.due_date - now).total_seconds())
    return TaskView(id=row.id, instance_id=row.instance_id, pathway_key=row.pathway_key,
                    element_id=row.element_id, name=row.name, lane=row.lane, kind=row.kind, state=row.state,
                    assignee=row.assignee, due_date=row.due_date, documentation=row.documentation,
                    created_at=row.created_at, completed_at=row.completed_at, completed_by=row.completed_by,
                    priority=row.priority, owner=row.owner, draft=shown(row.draft), follow_up_date=row.follow_up_date,
                    due_in_seconds=due_in, pathway_name=row.pathway_name, patient_id=row.patient_id,
                    business_key=row.business_key, actions=actions,
                    candidate_groups=tuple(v for k, v in candidates if k == "group"),
                    candidate_users=tuple(v for k, v in candidates if k == "user"), patient=patient)


def task_views(session: Session, rows: list[Task], now: datetime | None = None,
               reader: Principal | None = None, staffed: frozenset[str] | None = None) -> list[TaskView]:
    """Views of a page of tasks; their candidates come from the audience column, their patients (survivors
    when merged) from one more query for the page. With a reader, each says what they may do to it now,
    computed from the row: the staffed groups (for the tasks nobody can pick up), unless given, are read
    once for the page if a row needs them."""
    known = staffed
    staffed_now = cache(lambda: staffed_groups(session) if known is None else known)
    patients = summaries_of_instances(session, (row.instance_id for row in rows))
    return [task_view(row, _candidates_of(row), now,
                      tuple(allowed_actions(TaskFacts.of(row, staffed_now), reader)) if reader else (),
                      patients.get(row.instance_id))
            for row in rows]


def _candidates_of(row: Task) -> list[tuple[str, str]]:
    pairs = [tuple(key.split(":", 1)) for key in row.audience or () if ":" in key]
    return sorted((kind, value) for kind, value in pairs)


def instance_view(session: Session, instance_id: str, now: datetime | None = None,
                  reader: Principal | None = None) -> InstanceView | None:
    row = session.get(Instance, instance_id)
    if row is None:
        return None
    version = session.get(PathwayVersion, row.pathway_version_id)
    timers = session.scalars(select(Timer).where(Timer.instance_id == row.id, Timer.state == TimerState.PENDING,
                                                 Timer.kind == "bpmn").order_by(*TIMER_ORDER))
    waiting = [WaitView("timer", t.element_id, due_at=t.due_at) for t in timers]
    waiting += message_waits(session, row.id) + worker_waits(session, row.id)
    return assembled_instance_view(session, row, version.version if version else 0, waiting, now, reader)


# Timers due at the same instant (parallel branches) in a stable order: the answer of a change sorts the
# engine's snapshot the same way (usecases/change_answers.py).
TIMER_ORDER = (Timer.due_at, Timer.element_id, Timer.task_id)


def message_waits(session: Session, instance_id: str) -> list[WaitView]:
    subs = session.scalars(select(MessageSubscription).where(MessageSubscription.instance_id == instance_id)
                           .order_by(MessageSubscription.id))
    return [WaitView("message", s.element_id, message_name=s.message_name, correlation_key=s.correlation_key)
            for s in subs]


_WAITS_FOR_WORKER = (ExternalTaskState.AVAILABLE, ExternalTaskState.LOCKED)  # a failed one is the incident


def worker_waits(session: Session, instance_id: str) -> list[WaitView]:
    """Service tasks waiting for an external worker or a connector call, in the order they were created."""
    external = session.scalars(select(ExternalTask).where(
        ExternalTask.instance_id == instance_id, ExternalTask.state.in_(_WAITS_FOR_WORKER)).order_by(
        ExternalTask.created_at, ExternalTask.id))
    return [WaitView("external_task", t.element_id, topic=t.topic) for t in external]


# Built once: building it cost more than running it, in every answer of a change.
_OPEN_TASKS_OF = (select(Task).where(Task.instance_id == bindparam("instance_id"), Task.state.in_(OPEN_TASK_STATES))
                  .order_by(Task.created_at, Task.id))


def assembled_instance_view(session: Session, row: Instance, version: int, waiting: list[WaitView],
                            now: datetime | None, reader: Principal | None) -> InstanceView:
    """The view of an instance row with its pathway version's number and its waits: its open tasks
    are read (one query, and one for their patient)."""
    tasks = session.scalars(_OPEN_TASKS_OF, {"instance_id": row.id})
    return InstanceView(
        id=row.id, pathway_key=row.pathway_key, version=version,
        business_key=row.business_key, patient_id=row.patient_id, status=row.status, data=shown(row.data),
        incident=row.incident, created_at=row.created_at, updated_at=row.updated_at, ended_at=row.ended_at,
        started_by=row.started_by, open_tasks=task_views(session, list(tasks), now, reader), waiting=waiting,
        actions=tuple(allowed_actions(instance_facts(session, row, reader), reader)) if reader else (),
        patient_ref=row.patient_ref)


def instance_facts(session: Session, row: Instance, reader: Principal) -> InstanceFacts:
    """What the rules read of an instance the reader may read: readable under a break-glass grant only
    (read, not act) when their own scope does not reach it."""
    glass_only = (reader.grant_for(row.patient_id) is not None
                  and not instance_is_visible(session, row.id, acting_scope(reader)))
    return InstanceFacts(row.id, InstanceStatus(row.status), glass_only=glass_only)


# Lists count matching rows up to this many (or to the end of the page asked for, if further):
# counting every one of 100,000 open tasks costs more than the page itself, and a sparse filter
# (2 % of the rows) reads ~50 rows for each one it counts: "100+" says as much as "200+" to a
# coordinator, at half the cost (the dashboard's exact numbers are GET /api/tasks/counts).
COUNT_CAP = 100


def _page(session: Session, query: Select[Any], order: list[Any], limit: int, offset: int,
          exact_total: bool = False) -> tuple[list[Any], int, bool]:
    """A page of rows and the total: exact when `exact_total` or when fewer than the cap match;
    otherwise the cap, with False for exactness (the page still says whether more follow).

    Without `exact_total`, one ordered walk fetches the keys of the first cap + 1 matches: they are
    both the count and the page (whose rows are then read by key). A narrow walk lets the planner use
    a bitmap of the audience index for a sparse filter, and there is no second scan to count."""
    if exact_total:
        rows = list(session.scalars(query.order_by(*order).limit(limit).offset(offset)))
        if len(rows) < limit and (rows or offset == 0):  # the last page: the total needs no count
            return rows, offset + len(rows), True
        total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
        return rows, total, True
    entity = query.column_descriptions[0]["entity"]
    cap = max(COUNT_CAP, offset + limit)
    keys = list(session.scalars(query.with_only_columns(entity.id).order_by(*order).limit(cap + 1)))
    wanted = keys[offset:offset + limit]
    by_key = {row.id: row for row in session.scalars(select(entity).where(entity.id.in_(wanted)))} if wanted else {}
    rows = [by_key[key] for key in wanted if key in by_key]
    if len(keys) > cap:
        return rows, cap, False
    return rows, len(keys), True


def instances_visible_to(session: Session, user: str, groups: frozenset[str],
                         patients: frozenset[str] = frozenset()) -> Any:
    """Instances a task worker may read: ones they started, or with a task they may see or did, and
    every instance of a patient under their active break-glass grant."""
    involved = select(Task.instance_id).where(_visible(_dialect(session), user, groups) | (Task.completed_by == user))
    readable = (Instance.started_by == user) | Instance.id.in_(involved)
    return readable | Instance.patient_id.in_(sorted(patients)) if patients else readable


def readable_patients(session: Session, visible_to: VisibleTo) -> Any:
    """Patients this scope may read: those one of whose merge-linked patients (the survivor and every patient
    merged into it) has an episode the scope may read. Recursive SQL: up the merge links from the readable
    episodes' patients, then down from there."""
    up = select(Instance.patient_ref.label("id")).where(
        Instance.patient_ref.is_not(None), instances_visible_to(session, *visible_to)).cte("up_links", recursive=True)
    up = up.union(select(PatientRow.merged_into).where(PatientRow.id == up.c.id, PatientRow.merged_into.is_not(None)))
    down = select(up.c.id.label("id")).cte("down_links", recursive=True)
    down = down.union(select(PatientRow.id).where(PatientRow.merged_into == down.c.id))
    return PatientRow.id.in_(select(down.c.id))


def readable_instance(session: Session, instance_id: str,
                      visible_to: VisibleTo | None) -> Instance | None:
    """The instance, or None when it does not exist or the user may not read it."""
    query = select(Instance).where(Instance.id == instance_id)
    if visible_to is not None:
        query = query.where(instances_visible_to(session, *visible_to))
    return session.scalars(query).first()


def instance_is_visible(session: Session, instance_id: str, visible_to: VisibleTo | None) -> bool:
    query = select(Instance.id).where(Instance.id == instance_id)
    if visible_to is not None:
        query = query.where(instances_visible_to(session, *visible_to))
    return session.scalar(query) is not None


def list_instances(session: Session, *, status: str | None = None, pathway: str | None = None,
                   patient_id: str | None = None, business_key: str | None = None,
                   visible_to: VisibleTo | None = None,
                   started_from: datetime | None = None, started_before: datetime | None = None,
                   limit: int = 50, offset: int = 0, exact_total: bool = False) -> Page:
    """Instances newest first; `started_from` inclusive, `started_before` exclusive (UTC)."""
    query = select(Instance)
    if visible_to is not None:
        query = query.where(instances_visible_to(session, *visible_to))
    if status:
        query = query.where(Instance.status == status)
    if pathway:
        query = query.where(Instance.pathway_key == pathway)
    if patient_id:  # a merged identity's episodes too (engine/patient_links.py)
        query = query.where(Instance.patient_id.in_(linked_patient_ids(session, patient_id)))
    if business_key:
        query = query.where(Instance.business_key == business_key)
    if started_from is not None:
        query = query.where(Instance.created_at >= started_from)
    if started_before is not None:
        query = query.where(Instance.created_at < started_before)
    rows, total, exact = _page(session, query, [Instance.created_at.desc(), Instance.id], limit, offset,
                               exact_total)
    versions = _version_numbers(session, {r.pathway_version_id for r in rows})
    patients = summaries_of_patients(session, (r.patient_ref for r in rows))
    items = [InstanceView(
        id=r.id, pathway_key=r.pathway_key, version=versions.get(r.pathway_version_id, 0),
        business_key=r.business_key, patient_id=r.patient_id, status=r.status, data={}, incident=r.incident,
        created_at=r.created_at, updated_at=r.updated_at, ended_at=r.ended_at, started_by=r.started_by,
        patient_ref=r.patient_ref, patient=patients.get(r.patient_ref or "")) for r in rows]
    return Page(items, total, limit, offset, exact)


def _version_numbers(session: Session, ids: set[int]) -> dict[int, int]:
    if not ids:
        return {}
    rows = session.execute(select(PathwayVersion.id, PathwayVersion.version).where(PathwayVersion.id.in_(ids)))
    return {row.id: row.version for row in rows}


@dataclass(frozen=True)
class TaskFilter:
    state: str | None = "ready"
    open_only: bool = False  # any state not yet finished (ready, in progress, on hold)
    lane: str | None = None
    instance_id: str | None = None
    pathway: str | None = None
    assignee: str | None = None
    unassigned: bool = False
    candidate_user: str | None = None
    candidate_groups: frozenset[str] | None = None
    group: str | None = None
    groups: frozenset[str] | None = None  # offered to any of these groups (a team's work, whoever holds it)
    patient_id: str | None = None
    business_key: str | None = None
    patient_or_episode: str | None = None  # the patient id or the episode's business key, exactly
    # The patient ids `patient_id` or `patient_or_episode` stands for, merged identities included (list_tasks
    # fills it: engine/patient_links.py); None: that patient id alone.
    linked_patient_ids: tuple[str, ...] | None = None
    # The patients `patient_or_episode` names as an identifier value (an MRN), merged identities included
    # (list_tasks fills it); None: not looked up.
    linked_patient_refs: tuple[str, ...] | None = None
    priority: int | None = None
    text: str | None = None
    # Limit to what this user may see (None: everything, for admins and auditors).
    visible_to: VisibleTo | None = None
    # Supervisors also see the tasks nobody can pick up (with unrouted=True), to route them.
    sees_unrouted: bool = False
    # Tasks nobody can pick up: unassigned, no candidate user, and no member in any candidate group.
    unrouted: bool = False
    due_before: datetime | None = None
    due_from: datetime | None = None  # due at or after
    overdue_at: datetime | None = None  # "now", for overdue=true


TASK_SORTS: dict[str, list[Any]] = {
    "age": [Task.created_at, Task.id],
    "-age": [Task.created_at.desc(), Task.id],
    "priority": [Task.priority.desc(), Task.created_at, Task.id],
    "due": [Task.due_date.asc().nulls_last(), Task.created_at, Task.id],
    # Highest priority first, then soonest due, undated last (the web worklist's "priority").
    "priority-due": [Task.priority.desc(), Task.due_date.asc().nulls_last(), Task.created_at, Task.id],
}


def list_tasks(session: Session, filters: TaskFilter | None = None, *, sort: str = "age",
               limit: int = 50, offset: int = 0, exact_total: bool = False, now: datetime | None = None,
               reader: Principal | None = None) -> Page:
    filters = filters or TaskFilter()
    patient = filters.patient_id or filters.patient_or_episode
    if patient is not None and filters.linked_patient_ids is None:
        filters = replace(filters, linked_patient_ids=tuple(linked_patient_ids(session, patient)))
    if filters.patient_or_episode is not None and filters.linked_patient_refs is None:
        refs = patients_with_identifier_value(session, filters.patient_or_episode)
        filters = replace(filters, linked_patient_refs=tuple(refs))
    staffed = staffed_groups(session) if filters.unrouted else None
    query = _task_query(filters, _dialect(session), staffed or frozenset())
    rows, total, exact = _page(session, query, TASK_SORTS[sort], limit, offset, exact_total)
    return Page(task_views(session, rows, now, reader, staffed), total, limit, offset, exact)


def task_page_query(filters: TaskFilter, dialect: str, sort: str, limit: int, offset: int) -> Select[Any]:
    """The SQL of one worklist page (for the benchmark's plans)."""
    return _task_query(filters, dialect, frozenset()).order_by(*TASK_SORTS[sort]).limit(limit).offset(offset)


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _task_query(f: TaskFilter, dialect: str, staffed: frozenset[str]) -> Select[Any]:
    query = select(Task)
    simple = {Task.state: f.state, Task.lane: f.lane, Task.instance_id: f.instance_id, Task.pathway_key: f.pathway,
              Task.assignee: f.assignee, Task.priority: f.priority}
    for column, value in simple.items():
        if value is not None:
            query = query.where(column == value)
    if f.open_only:
        query = query.where(Task.state.in_(OPEN_TASK_STATES))
    if f.unassigned:
        query = query.where(Task.assignee.is_(None))
    if f.group is not None:
        query = query.where(audience_has(dialect, [audience_key("group", f.group)]))
    if f.groups is not None:
        query = query.where(audience_has(dialect, [audience_key("group", g) for g in sorted(f.groups)]))
    if f.candidate_user is not None:
        keys = viewer_keys(f.candidate_user, f.candidate_groups or (), everyone=False)
        query = query.where(audience_has(dialect, keys),
                            Task.assignee.is_(None) | (Task.assignee == f.candidate_user))
    if f.patient_id is not None or f.business_key is not None:
        query = query.join(Instance, Instance.id == Task.instance_id)
        if f.patient_id is not None:
            query = query.where(Instance.patient_id.in_(f.linked_patient_ids or (f.patient_id,)))
        if f.business_key is not None:
            query = query.where(Instance.business_key == f.business_key)
    if f.patient_or_episode is not None:
        value = f.patient_or_episode
        named = Instance.patient_id.in_(f.linked_patient_ids if f.linked_patient_ids and f.patient_id in (None, value)
                                        else (value,)) | (Instance.business_key == value)
        if f.linked_patient_refs:  # an identifier value (an MRN) of the patient or of one merged with it
            named |= Instance.patient_ref.in_(f.linked_patient_refs)
        query = query.where(Task.instance_id.in_(select(Instance.id).where(named)))
    if f.text:
        query = query.where(func.lower(Task.name).contains(f.text.lower(), autoescape=True))
    # Offered to me or my groups (candidate=me) already implies visible, and supervisors see the whole
    # unrouted queue; saying it twice would only mislead the planner's row estimates.
    implied = f.candidate_user == f.visible_to[0] if f.visible_to else False
    if f.visible_to is not None and not implied and not (f.unrouted and f.sees_unrouted):
        query = query.where(_visible(dialect, *f.visible_to))
    if f.due_before is not None:
        query = query.where(Task.due_date < f.due_before)
    if f.due_from is not None:
        query = query.where(Task.due_date >= f.due_from)
    if f.overdue_at is not None:
        query = query.where(Task.due_date < f.overdue_at, Task.state.in_(OPEN_TASK_STATES))
    if f.unrouted:
        query = query.where(_unrouted(dialect, staffed))
    return query


def staffed_groups(session: Session) -> frozenset[str]:
    """Groups with at least one active member."""
    return frozenset(session.scalars(select(UserGroup.group_name).join(User, User.id == UserGroup.user_id)
                                     .where(User.active.is_(True)).distinct()))


def _unrouted(dialect: str, staffed: frozenset[str]) -> Any:
    """Nobody can pick the task up: unassigned, offered to no one by name nor to everyone, and none
    of its groups has an active member."""
    unreachable = Task.assignee.is_(None) & ~_offered(TaskCandidate.kind.in_(["user", "all"]))
    if staffed:
        unreachable &= ~audience_has(dialect, [audience_key("group", g) for g in sorted(staffed)])
    return unreachable


def _visible(dialect: str, user: str, groups: frozenset[str], patients: frozenset[str] = frozenset()) -> Any:
    """Assigned to the user, or offered to them, their groups or everyone: a test on the task row itself,
    so a worklist page is an ordered index scan that stops after `limit` rows. A task of a patient under
    the user's active break-glass grant too (no such test at all for the users without one)."""
    offered = (Task.assignee == user) | audience_has(dialect, viewer_keys(user, groups))
    return offered | Task.patient_id.in_(sorted(patients)) if patients else offered


def audience_has(dialect: str, keys: list[str]) -> Any:
    """tasks.audience shares a key with `keys`: array overlap (GIN-indexed) on PostgreSQL, a scan of
    the row's JSON array on SQLite."""
    if dialect == "postgresql":
        return Task.audience.op("&&", is_comparison=True)(bindparam(None, keys, type_=postgresql.ARRAY(Text())))
    entries = func.json_each(Task.audience).table_valued("value")
    return select(1).select_from(entries).where(entries.c.value.in_(keys)).exists()


def visible_task(session: Session, task_id: str, visible_to: VisibleTo | None,
                 sees_unrouted: bool = False, now: datetime | None = None,
                 reader: Principal | None = None) -> TaskView | None:
    """One task, or None when it does not exist or the user may not see it."""
    query = select(Task).where(Task.id == task_id)
    if visible_to is not None:
        visible = _visible(_dialect(session), *visible_to)
        if sees_unrouted:
            visible |= _unrouted(_dialect(session), staffed_groups(session))
        query = query.where(visible)
    row = session.scalars(query).first()
    return task_views(session, [row], now, reader)[0] if row is not None else None


def _offered(*conditions: Any) -> Any:
    return select(TaskCandidate.task_id).where(TaskCandidate.task_id == Task.id, *conditions).exists()


def version_view(session: Session, row: PathwayVersion) -> PathwayVersionView:
    source = session.get(DeploymentFile, row.source_file_id)
    starts = session.scalars(select(MessageStartEvent.message_name)
                             .where(MessageStartEvent.pathway_version_id == row.id))
    return PathwayVersionView(key=row.key, version=row.version, name=row.name, family=row.family,
                              retired=row.retired, deployed_at=row.deployed_at, deployed_by=row.deployed_by,
                              source_file=source.filename if source else "", content_hash=row.content_hash,
                              warnings=row.warnings, message_starts=list(starts), measures=row.measures or [],
                              example_data=row.example_data, start_data=row.start_data)


def list_pathways(session: Session) -> list[PathwayVersionView]:
    """The latest version of every deployed pathway."""
    latest = select(PathwayVersion.key, func.max(PathwayVersion.version).label("v")).group_by(
        PathwayVersion.key).subquery()
    rows = session.scalars(select(PathwayVersion).join(
        latest, (PathwayVersion.key == latest.c.key) & (PathwayVersion.version == latest.c.v))
        .order_by(PathwayVersion.key))
    return [version_view(session, r) for r in rows]


def pathway_versions(session: Session, key: str) -> list[PathwayVersionView]:
    rows = session.scalars(select(PathwayVersion).where(PathwayVersion.key == key)
                           .order_by(PathwayVersion.version))
    return [version_view(session, r) for r in rows]


def running_per_version(session: Session, key: str | None = None) -> dict[tuple[str, int], int]:
    """{(pathway key, version): instances running or in incident}, one grouped count (of one pathway's
    versions when `key` is given); versions without running instances are absent."""
    query = (select(PathwayVersion.key, PathwayVersion.version, func.count(Instance.id))
             .join(Instance, Instance.pathway_version_id == PathwayVersion.id)
             .where(Instance.status.in_([s.value for s in ACTIVE_STATUSES]))
             .group_by(PathwayVersion.key, PathwayVersion.version))
    if key is not None:
        query = query.where(PathwayVersion.key == key)
    return {(k, v): n for k, v, n in session.execute(query)}


def all_pathway_versions(session: Session) -> list[PathwayVersionView]:
    """Every version of every pathway, by key then version."""
    rows = session.scalars(select(PathwayVersion).order_by(PathwayVersion.key, PathwayVersion.version))
    return [version_view(session, r) for r in rows]


def pathway_source(session: Session, key: str, version: int) -> tuple[str, bytes] | None:
    row = session.scalars(select(PathwayVersion).where(
        PathwayVersion.key == key, PathwayVersion.version == version)).first()
    if row is None:
        return None
    source = session.get(DeploymentFile, row.source_file_id)
    return (source.filename, source.content) if source else None


def task_form(session: Session, task_id: str) -> tuple[dict[str, Any] | None, dict[str, Any]] | None:
    """The task's form schema (from its pathway version, a plain column read) and the instance's data."""
    row = session.get(Task, task_id)
    if row is None:
        return None
    instance = session.get(Instance, row.instance_id)
    assert instance is not None
    version_ids = [instance.pathway_version_id, *(int(v) for v in instance.call_bindings.values())]
    for rules in session.scalars(select(PathwayVersion.task_rules).where(PathwayVersion.id.in_(version_ids))):
        form = (rules or {}).get(row.element_id, {}).get("form")
        if form is not None:
            return form, shown(instance.data)
    return None, shown(instance.data)


def task_counts(session: Session) -> list[dict[str, Any]]:
    """Open and on-hold task counts per candidate group; tasks offered to no group count as unrouted
    (group None). Summed from the deltas the `tasks` triggers append (migration 0007), so the cost
    follows the number of groups, not of open tasks."""
    total = func.sum(TaskCountDelta.delta)
    rows = session.execute(select(TaskCountDelta.group_name, TaskCountDelta.state, total)
                           .group_by(TaskCountDelta.group_name, TaskCountDelta.state).having(total != 0)).all()
    counts = [{"group": group or None, "state": state, "count": int(count)} for group, state, count in rows]
    return sorted(counts, key=lambda c: (c["group"] is None, c["group"] or "", c["state"]))


@dataclass(frozen=True)
class HistoryPage(Page):
    tasks: list[TaskTimelineView] = field(default_factory=list)


def instance_history(session: Session, instance_id: str, *, limit: int = 200, offset: int = 0,
                     now: datetime | None = None) -> HistoryPage:
    """The instance's history of changes, oldest first, with each human task's timeline (the caller has
    checked the instance is visible); reads of the record are in the audit trail only."""
    query = select(Event).where(Event.instance_id == instance_id, Event.type != RECORD_VIEWED)
    rows, total, exact = _page(session, query, [Event.id], limit, offset, exact_total=True)
    versions = version_numbers(session, {e.pathway_version_id for e in rows if e.pathway_version_id})
    items = [EventView(id=e.id, type=e.type, actor=e.actor, at=e.at, task_id=e.task_id, data=shown(e.data),
                       pathway_version=versions.get(e.pathway_version_id or 0, ("", None))[1]) for e in rows]
    return HistoryPage(items, total, limit, offset, exact, task_timeline(session, instance_id, now))


def version_numbers(session: Session, ids: set[int]) -> dict[int, tuple[str, int]]:
    """Pathway version id -> (key, version number), in one query for a page of events."""
    if not ids:
        return {}
    rows = session.execute(select(PathwayVersion.id, PathwayVersion.key, PathwayVersion.version)
                           .where(PathwayVersion.id.in_(ids)))
    return {row.id: (row.key, row.version) for row in rows}


def task_timeline(session: Session, instance_id: str, now: datetime | None = None) -> list[TaskTimelineView]:
    """Each human task of the instance in the order they appeared: claimed when the history first gave it
    an assignee (the diagram at creation, a claim, an assignment, or the claim made by saving a draft or
    completing); waited until completed (or until now, still open); late by how long past its due date."""
    claims: dict[str, tuple[datetime, str]] = {}
    for task_id, kind, at, data in session.execute(
            select(Event.task_id, Event.type, Event.at, Event.data)
            .where(Event.instance_id == instance_id, Event.task_id.is_not(None)).order_by(Event.id)):
        if task_id in claims:
            continue
        if data.get("field") == "assignee" and data.get("new"):
            claims[task_id] = (at, str(data["new"]))
        elif kind == "task_ready" and data.get("assignee"):  # assigned by the diagram
            claims[task_id] = (at, str(data["assignee"]))
    out = []
    for task in session.scalars(select(Task).where(Task.instance_id == instance_id).order_by(Task.created_at, Task.id)):
        is_open, cancelled = task.state in OPEN_TASK_STATES, task.state == TaskState.CANCELLED.value
        end = task.completed_at or (now if is_open else None)
        late = (end - task.due_date).total_seconds() if end and task.due_date and end > task.due_date else None
        claim = claims.get(task.id)
        out.append(TaskTimelineView(
            task_id=task.id, element_id=task.element_id, name=task.name, state=task.state,
            offered_to=[k.split(":", 1)[1] for k in task.audience or [] if not k.startswith("all:")],
            created_at=task.created_at, claimed_at=claim[0] if claim else None, claimed_by=claim[1] if claim else None,
            completed_at=None if cancelled else task.completed_at, completed_by=task.completed_by,
            cancelled_at=task.completed_at if cancelled else None, due_date=task.due_date,
            waited_seconds=((end or task.created_at) - task.created_at).total_seconds(), late_by_seconds=late))
    return out


def notifications_visible_to(session: Session, visible_to: VisibleTo | None) -> Any:
    """The notifications about tasks that user may see (identity.notification_scope; None: all)."""
    if visible_to is None:
        return true()
    return NotificationRecord.task_id.in_(select(Task.id).where(_visible(_dialect(session), *visible_to)))


def not_read_by(user_id: int) -> Any:
    """The notification has no read mark of this user."""
    return ~select(NotificationRead.notification_id).where(
        NotificationRead.user_id == user_id, NotificationRead.notification_id == NotificationRecord.id).exists()


def list_notifications(session: Session, *, state: str | None = None, kind: str | None = None,
                       task_id: str | None = None, instance_id: str | None = None, limit: int = 50,
                       offset: int = 0, visible_to: VisibleTo | None = None,
                       unread_by: int | None = None, channel: str | None = None) -> Page:
    """Newest first; with `visible_to`, only notifications about tasks that user may see; with `unread_by`
    (a user id), only those that user has not marked read."""
    query = select(NotificationRecord).where(notifications_visible_to(session, visible_to))
    if unread_by is not None:
        query = query.where(not_read_by(unread_by))
    for column, value in ((NotificationRecord.state, state), (NotificationRecord.kind, kind),
                          (NotificationRecord.task_id, task_id), (NotificationRecord.instance_id, instance_id),
                          (NotificationRecord.channel, channel)):
        if value is not None:
            query = query.where(column == value)
    rows, total, exact = _page(session, query, [NotificationRecord.id.desc()], limit, offset)
    items = [NotificationView(id=r.id, kind=r.kind, channel=r.channel, instance_id=r.instance_id, task_id=r.task_id,
                              subject=r.subject, recipients=list(r.recipients), payload=dict(r.payload), state=r.state,
                              attempts=r.attempts, next_attempt_at=r.next_attempt_at, last_error=r.last_error,
                              created_at=r.created_at, delivered_at=r.delivered_at) for r in rows]
    return Page(items, total, limit, offset, exact)


def task_comments(session: Session, task_id: str) -> list[dict[str, Any]]:
    events = session.scalars(select(Event).where(Event.task_id == task_id, Event.type == "task_comment")
                             .order_by(Event.id))
    return [{"task_id": task_id, "author": e.actor, "text": e.data.get("text", ""), "at": e.at} for e in events]


def completed_with(session: Session, task_id: str) -> dict[str, Any] | None:
    """The values a task was completed with (its `task_completed` history entry), None if it was not."""
    data = session.scalar(select(Event.data).where(Event.task_id == task_id, Event.type == "task_completed")
                          .order_by(Event.id.desc()).limit(1))
    return None if data is None else shown(data.get("data") or {})
