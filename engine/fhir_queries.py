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
from .persistence.tables import Event, Instance, PathwayVersion, Task
from .queries import TaskFilter, instances_visible_to, task_page_query, task_views
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
    patient_id: str | None = None
    assignee: str | None = None
    # steps as (pathway key or None for any pathway, BPMN element id) pairs; any may match
    steps: tuple[tuple[str | None, str], ...] | None = None
    changed: tuple[Bound, ...] = ()  # all must hold: the task's last change within them


@dataclass(frozen=True)
class EpisodeSearch:
    statuses: tuple[str, ...] | None = None
    patient_id: str | None = None
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
    filters = TaskFilter(state=None, patient_id=search.patient_id, assignee=search.assignee, visible_to=visible_to)
    query = task_page_query(filters, _dialect(session), "age", limit + 1, offset)
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


def search_episodes(session: Session, search: EpisodeSearch, visible_to: VisibleTo | None, *, limit: int,
                    offset: int) -> tuple[list[Instance], bool]:
    """A page of instances (newest first) the user may read, as the instance list decides it."""
    query = select(Instance)
    if visible_to is not None:
        query = query.where(instances_visible_to(session, *visible_to))
    if search.statuses is not None:
        query = query.where(Instance.status.in_(search.statuses))
    if search.patient_id is not None:
        query = query.where(Instance.patient_id == search.patient_id)
    if search.versions is not None:
        query = query.where(Instance.pathway_version_id.in_(_version_ids(search.versions)))
    query = query.order_by(Instance.created_at.desc(), Instance.id).limit(limit + 1).offset(offset)
    return _more(list(session.scalars(query)), limit)


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
