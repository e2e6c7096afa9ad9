"""Read side of the FHIR facade (api/fhir): searches of tasks, episodes and pathway versions answered from the
projection tables, never from workflow state, through the same visibility predicates as the worklist and the
instance lists (`queries.task_page_query`, `queries.instances_visible_to`).

The values here are CarePath's own (task states, instance statuses, pathway keys); the FHIR codes and their
mapping tables live at the edge, in api/fhir.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Select, and_, false, func, or_, select
from sqlalchemy.orm import Session

from .identity import VisibleTo
from .model import TaskState
from .patient_links import linked_patients, survivors
from .persistence.tables import Event, Instance, PathwayVersion, Patient, PatientIdentifier, Task
from .queries import TaskFilter, instances_visible_to, readable_patients, task_page_query, task_views
from .rules import TASK_RULES
from .views import TaskView

Comparison = Literal["ge", "gt", "le", "lt"]
COMPARE: dict[Comparison, Callable[[Any, Any], Any]] = {
    "ge": operator.ge, "gt": operator.gt, "le": operator.le, "lt": operator.lt}
# The opposite of an upper bound: a task is last changed at or before X when none of its changes is after X.
OUTSIDE: dict[Comparison, Callable[[Any, Any], Any]] = {"le": operator.gt, "lt": operator.ge}

# What changes a task: the events of its rule table's rows, and its creation (`task_ready`). Reads
# (`record_viewed`) and the rest of the instance's history do not.
TASK_CHANGES = tuple(sorted({rule.event for rule in TASK_RULES.values() if rule.event} | {"task_ready"}))


@dataclass(frozen=True)
class Bound:
    """One side of a time range: `at` compared with `op` (FHIR's ge/gt/le/lt prefixes)."""

    op: Comparison
    at: datetime


@dataclass(frozen=True)
class TaskSearch:
    states: tuple[str, ...] | None = None  # None: any state
    patient: str | None = None  # a patient id: its episodes' tasks, and those of the patients merged with it
    assignee: str | None = None
    # steps as (pathway key or None for any pathway, BPMN element id) pairs; any may match
    steps: tuple[tuple[str | None, str], ...] | None = None
    changed: tuple[Bound, ...] = ()  # all must hold: the task's last change within them


@dataclass(frozen=True)
class EpisodeSearch:
    statuses: tuple[str, ...] | None = None
    patient: str | None = None  # a patient id, as TaskSearch.patient
    # (pathway key, version) pairs; a version None means every version of that pathway
    versions: tuple[tuple[str, int | None], ...] | None = None


@dataclass(frozen=True)
class VersionSearch:
    key: str | None = None
    key_prefix: str | None = None  # case-insensitive
    version: int | None = None
    retired: bool | None = None


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _more(rows: list[Any], limit: int) -> tuple[list[Any], bool]:
    """A page read with one row too many: the page, and whether another follows."""
    return rows[:limit], len(rows) > limit


def search_tasks(session: Session, search: TaskSearch, visible_to: VisibleTo | None, *, limit: int,
                 offset: int) -> tuple[list[TaskView], bool]:
    """A page of tasks (oldest first) the user may see, as the worklist decides it, and whether more follow."""
    filters = TaskFilter(state=None, assignee=search.assignee, visible_to=visible_to)
    query = task_page_query(filters, _dialect(session), "age", limit + 1, offset)
    if search.patient is not None:
        query = query.where(Task.instance_id.in_(_episodes_of(session, search.patient)))
    if search.states is not None:
        query = query.where(Task.state.in_(search.states))
    if search.steps is not None:
        query = query.where(or_(false(), *(_step(pathway, element) for pathway, element in search.steps)))
    for bound in search.changed:
        query = query.where(_changed_within(bound))
    rows, more = _more(list(session.scalars(query)), limit)
    return task_views(session, rows), more


def _step(pathway: str | None, element_id: str) -> Any:
    return (Task.element_id == element_id) & (Task.pathway_key == pathway) if pathway else Task.element_id == element_id


def _task_changes() -> Select[Any]:
    return select(Event.id).where(Event.instance_id == Task.instance_id, Event.task_id == Task.id,
                                  Event.type.in_(TASK_CHANGES))


def _changed_within(bound: Bound) -> Any:
    """The task's last change (creation, a change its rules record, completion) satisfies the bound."""
    compare = COMPARE[bound.op]
    if bound.op in ("ge", "gt"):  # some change is late enough
        return or_(compare(Task.created_at, bound.at),
                   Task.completed_at.is_not(None) & compare(Task.completed_at, bound.at),
                   _task_changes().where(compare(Event.at, bound.at)).exists())
    return and_(compare(Task.created_at, bound.at),  # every change is early enough
                Task.completed_at.is_(None) | compare(Task.completed_at, bound.at),
                ~_task_changes().where(OUTSIDE[bound.op](Event.at, bound.at)).exists())


def last_changes(session: Session, rows: Iterable[TaskView]) -> dict[str, datetime]:
    """When each task last changed (see `_changed_within`), for a page of tasks in one query."""
    tasks = list(rows)
    if not tasks:
        return {}
    latest: dict[str | None, datetime] = dict(session.execute(
        select(Event.task_id, func.max(Event.at))
        .where(Event.instance_id.in_({t.instance_id for t in tasks}), Event.task_id.in_([t.id for t in tasks]),
               Event.type.in_(TASK_CHANGES)).group_by(Event.task_id)).all())
    return {t.id: max(at for at in (t.created_at, t.completed_at, latest.get(t.id)) if at is not None)
            for t in tasks}


def hold_reasons(session: Session, rows: Iterable[TaskView]) -> dict[str, str]:
    """Why each task on hold was put on hold (the reason its last `hold` recorded), for a page of tasks."""
    held = [t for t in rows if t.state == TaskState.ON_HOLD]
    if not held:
        return {}
    reasons: dict[str, str] = {}
    for task_id, data in session.execute(
            select(Event.task_id, Event.data).where(
                Event.instance_id.in_({t.instance_id for t in held}), Event.task_id.in_([t.id for t in held]),
                Event.type == TASK_RULES["hold"].event).order_by(Event.id)):
        if task_id is not None and isinstance(data.get("reason"), str):
            reasons[task_id] = data["reason"]
    return reasons


def search_episodes(session: Session, search: EpisodeSearch, visible_to: VisibleTo | None, *, limit: int,
                    offset: int) -> tuple[list[Instance], bool]:
    """A page of instances (newest first) the user may read, as the instance list decides it."""
    query = select(Instance)
    if visible_to is not None:
        query = query.where(instances_visible_to(session, *visible_to))
    if search.statuses is not None:
        query = query.where(Instance.status.in_(search.statuses))
    if search.patient is not None:
        query = query.where(Instance.id.in_(_episodes_of(session, search.patient)))
    if search.versions is not None:
        query = query.where(Instance.pathway_version_id.in_(_version_ids(search.versions)))
    query = query.order_by(Instance.created_at.desc(), Instance.id).limit(limit + 1).offset(offset)
    return _more(list(session.scalars(query)), limit)


def _episodes_of(session: Session, patient: str) -> Select[Any]:
    """The episodes of the patient and of every patient merged with it (engine/patient_links.py)."""
    return select(Instance.id).where(Instance.patient_ref.in_(linked_patients(session, patient)))


def _version_ids(versions: tuple[tuple[str, int | None], ...]) -> Select[Any]:
    matches = [(PathwayVersion.key == key) & (PathwayVersion.version == version) if version is not None
               else PathwayVersion.key == key for key, version in versions]
    return select(PathwayVersion.id).where(or_(*matches) if matches else false())


def episode_tasks(session: Session, instance_ids: Iterable[str]) -> dict[str, list[str]]:
    """The ids of each instance's human tasks in the order they appeared, for a page of instances."""
    ids = sorted(set(instance_ids))
    found: dict[str, list[str]] = {i: [] for i in ids}
    if ids:
        for task_id, instance_id in session.execute(
                select(Task.id, Task.instance_id).where(Task.instance_id.in_(ids)).order_by(Task.created_at, Task.id)):
            found[instance_id].append(task_id)
    return found


def versions_by_id(session: Session, ids: Iterable[int]) -> dict[int, PathwayVersion]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    return {v.id: v for v in session.scalars(select(PathwayVersion).where(PathwayVersion.id.in_(wanted)))}


def search_versions(session: Session, search: VersionSearch, *, limit: int,
                    offset: int) -> tuple[list[PathwayVersion], bool]:
    """A page of pathway versions by key and version number (pathways are not patient data: all users read them)."""
    query = select(PathwayVersion)
    if search.key is not None:
        query = query.where(PathwayVersion.key == search.key)
    if search.key_prefix is not None:
        query = query.where(func.lower(PathwayVersion.key).startswith(search.key_prefix.lower(), autoescape=True))
    if search.version is not None:
        query = query.where(PathwayVersion.version == search.version)
    if search.retired is not None:
        query = query.where(PathwayVersion.retired.is_(search.retired))
    query = query.order_by(PathwayVersion.key, PathwayVersion.version).limit(limit + 1).offset(offset)
    return _more(list(session.scalars(query)), limit)


@dataclass(frozen=True)
class PatientSearch:
    identifier: tuple[str | None, str] | None = None  # (system or None for any, value)
    name: str | None = None  # the start of the family or given name, any case
    born: tuple[Bound, ...] = ()  # the birth date within all of them (instants at UTC midnight)


def readable_patient(session: Session, patient_id: str, visible_to: VisibleTo | None) -> Patient | None:
    query = select(Patient).where(Patient.id == patient_id)
    if visible_to is not None:
        query = query.where(readable_patients(session, visible_to))
    return session.scalars(query).first()


def search_patients(session: Session, search: PatientSearch, visible_to: VisibleTo | None, *, limit: int,
                    offset: int) -> tuple[list[Patient], bool]:
    """A page of patients as they stand now (survivors: a merged patient's identifier finds its survivor) the
    scope may read, by family name, given name and id."""
    query = select(Patient).where(Patient.merged_into.is_(None))
    if search.identifier is not None:
        system, value = search.identifier
        holders = select(PatientIdentifier.patient_ref).where(PatientIdentifier.value == value)
        if system is not None:
            holders = holders.where(PatientIdentifier.system == system)
        standing = survivors(session, session.scalars(holders.limit(MAX_HOLDERS)))
        query = query.where(Patient.id.in_(sorted(set(standing.values()))))
    if search.name is not None:
        start = search.name.lower()
        query = query.where(func.lower(Patient.family).startswith(start, autoescape=True)
                            | func.lower(Patient.given).startswith(start, autoescape=True))
    for bound in search.born:
        query = query.where(COMPARE[bound.op](Patient.birth_date, bound.at.date()))
    if visible_to is not None:
        query = query.where(readable_patients(session, visible_to))
    query = query.order_by(Patient.family, Patient.given, Patient.id).limit(limit + 1).offset(offset)
    return _more(list(session.scalars(query)), limit)


MAX_HOLDERS = 100  # patients one identifier value may name across systems


def patient_identifiers(session: Session, patient_ids: Iterable[str]) -> dict[str, list[tuple[str, str]]]:
    ids = sorted(set(patient_ids))
    found: dict[str, list[tuple[str, str]]] = {i: [] for i in ids}
    if ids:
        for ref, system, value in session.execute(
                select(PatientIdentifier.patient_ref, PatientIdentifier.system, PatientIdentifier.value)
                .where(PatientIdentifier.patient_ref.in_(ids))
                .order_by(PatientIdentifier.system, PatientIdentifier.value)):
            found[ref].append((system, value))
    return found


def merged_into(session: Session, patient_ids: Iterable[str]) -> dict[str, list[str]]:
    """The patients merged directly into each one."""
    ids = sorted(set(patient_ids))
    found: dict[str, list[str]] = {i: [] for i in ids}
    if ids:
        for merged, survivor in session.execute(select(Patient.id, Patient.merged_into)
                                                .where(Patient.merged_into.in_(ids)).order_by(Patient.id)):
            found[str(survivor)].append(merged)
    return found


def episode_patients(session: Session, instance_ids: Iterable[str]) -> dict[str, str]:
    """The patient each episode is for now (survivors), for a page of tasks or episodes."""
    ids = sorted(set(instance_ids))
    if not ids:
        return {}
    refs = {instance: ref for instance, ref in session.execute(select(Instance.id, Instance.patient_ref).where(
        Instance.id.in_(ids), Instance.patient_ref.is_not(None))) if ref is not None}
    standing = survivors(session, refs.values())
    return {instance: standing[ref] for instance, ref in refs.items()}
