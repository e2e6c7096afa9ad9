"""The compliance report's projected part, counted by the database: the final outcomes the
`measure_outcomes` projection holds (engine/usecases/outcome_projection.py) and the standing of the
other episodes `measure_states` holds (engine/usecases/measure_states.py), grouped per measure, with
the same filters the live evaluation applies (the principal's episodes, the period the clock started
in, a team's own deadlines), and the misses a page at a time in the report's order."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import String, and_, bindparam, case, func, null, or_, select, true, tuple_, union_all
from sqlalchemy.dialects import postgresql

from ..errors import ValidationFailed
from ..measures import Measure, MeasureStatus
from ..model import audience_key
from ..persistence.tables import Instance, MeasureOutcome, MeasureState, Task
from ..queries import audience_has

MO = MeasureOutcome
MS = MeasureState


class MissKey(NamedTuple):
    """A miss's place in the report: by pathway, measure, then the episode's start (created_at, id)."""

    pathway: str
    measure_id: str
    created_at: datetime
    instance_id: str


def encode_key(key: MissKey) -> str:
    """The opaque `misses_after` cursor naming this miss."""
    raw = json.dumps([key.pathway, key.measure_id, key.created_at.isoformat(), key.instance_id])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_key(cursor: str) -> MissKey:
    """A `misses_after` cursor back as the miss it names; ValidationFailed when it is not one."""
    try:
        pathway, measure_id, created_at, instance_id = json.loads(
            base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        moment = datetime.fromisoformat(created_at)
        if moment.tzinfo is None or not all(isinstance(v, str) for v in (pathway, measure_id, instance_id)):
            raise ValueError(cursor)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise ValidationFailed("misses_after is not a cursor this report gave (its `misses.next`)") from None
    return MissKey(pathway, measure_id, moment, instance_id)


class Source(NamedTuple):
    """A projection the report counts from (`measure_outcomes` or `measure_states`): its table, each row's
    status as of the report's "now", and which rows count (joined to their instance)."""

    table: Any
    status: Any
    conditions: list[Any]


def recorded_source(episodes: Sequence[Any], parsed: dict[int, list[Measure]], *, now: datetime,
                    start: datetime | None, end: datetime | None, group: str | None, dialect: str) -> Source:
    """The final recorded outcomes of ended episodes: recorded by `now`, of an episode the report covers
    (`episodes`: conditions on the instance), the clock started in the period (none given: any, or no
    clock), and for a team's report, a measure the team answers for."""
    conditions = [MO.final == true(), MO.recorded_at <= now, MO.pathway_version_id == Instance.pathway_version_id,
                  *episodes, *_period_and_team(MO, parsed, start, end, group, dialect)]
    return Source(MO, MO.status, conditions)


def standing_source(episodes: Sequence[Any], parsed: dict[int, list[Measure]], *, now: datetime,
                    start: datetime | None, end: datetime | None, group: str | None, dialect: str) -> Source:
    """The current standing of the other episodes (`measure_states` rows of the instance's version and
    lock version; an episode with final recorded outcomes has none), an open window read as missed once
    `now` has passed its deadline; same filters."""
    status = case((and_(MS.status == MeasureStatus.OPEN.value, MS.deadline < now), MeasureStatus.NOT_MET.value),
                  else_=MS.status)
    conditions = [MS.lock_version == Instance.lock_version, MS.pathway_version_id == Instance.pathway_version_id,
                  *episodes, *_period_and_team(MS, parsed, start, end, group, dialect)]
    return Source(MS, status, conditions)


def _period_and_team(table: Any, parsed: dict[int, list[Measure]], start: datetime | None, end: datetime | None,
                     group: str | None, dialect: str) -> list[Any]:
    conditions = []
    if start is not None or end is not None:
        conditions.append(table.clock_started.is_not(None))
    if start is not None:
        conditions.append(table.clock_started >= start)
    if end is not None:
        conditions.append(table.clock_started < end)
    if group is not None:
        conditions.append(_answered_by(table, parsed, group, dialect))
    return conditions


def has_final_outcomes(now: datetime) -> Any:
    """The instance's outcomes are counted from the recorded projection (the rows `recorded_source` reads)."""
    return select(MO.instance_id).where(MO.instance_id == Instance.id, MO.final == true(), MO.recorded_at <= now,
                                        MO.pathway_version_id == Instance.pathway_version_id).exists()


def has_current_states() -> Any:
    """The instance's standing is projected for its version and lock version (what `standing_source` reads)."""
    return select(MS.instance_id).where(MS.instance_id == Instance.id, MS.lock_version == Instance.lock_version,
                                        MS.pathway_version_id == Instance.pathway_version_id).exists()


def _answered_by(table: Any, parsed: dict[int, list[Measure]], group: str, dialect: str) -> Any:
    """The team answers for the measure: the task it waits for was offered to the team, or there is no
    such task to tell (met by a variable, or the episode never reached it). One pair of lookups for every
    measure (the task named by a CASE on the row's measure), each an index probe by instance."""
    waits = [(and_(table.pathway_version_id == vid, table.measure_id == m.id), m.met_by_task)
             for vid, declared in sorted(parsed.items()) for m in declared if m.met_by_task]
    if not waits:
        return true()
    task = case(*waits, else_=null())
    reached = select(Task.id).where(Task.instance_id == table.instance_id, Task.element_id == task)
    offered = audience_has(dialect, [audience_key("group", group)])
    return or_(task.is_(None), ~reached.exists(), reached.where(offered).exists())


def _union(sources: Sequence[Source]) -> Any:
    """The rows the sources count, each with its status as of now and its episode's columns."""
    return union_all(*(select(
        s.table.pathway_key, s.table.measure_id, s.status.label("status"), s.table.days_to_meet, s.table.deadline,
        s.table.detail, s.table.pathway_version_id, Instance.created_at, Instance.id.label("instance_id"),
        Instance.patient_id, Instance.business_key).select_from(s.table).join(
        Instance, Instance.id == s.table.instance_id).where(*s.conditions) for s in sources)).subquery()


# Fractions whose discrete percentiles are the lower and the upper middle value of any group of fewer
# than 10**9 values (the same one when there is an odd number): their mean is statistics.median's.
_MIDDLES = [0.5, 0.5 + 1e-10]


def projected_counts(connection: Any, sources: Sequence[Source], dialect: str) -> Iterable[Any]:
    """(pathway, measure id, status, episodes, middles) per measure and status; on PostgreSQL `middles`
    are the two middle days to meet of the group (None elsewhere: `projected_days_to_meet` gives them)."""
    u = _union(sources)
    middles = (func.percentile_disc(postgresql.array(_MIDDLES)).within_group(u.c.days_to_meet).label("middles")
               if dialect == "postgresql" else null().label("middles"))
    return connection.execute(select(u.c.pathway_key, u.c.measure_id, u.c.status, func.count(), middles).group_by(
        u.c.pathway_key, u.c.measure_id, u.c.status))


def projected_days_to_meet(connection: Any, sources: Sequence[Source]) -> Iterable[Any]:
    """(pathway, measure id, days, episodes) for the measures met with a clock: each distinct value once
    with how many met it in that time (a median needs every value, not every row)."""
    u = _union(sources)
    return connection.execute(select(u.c.pathway_key, u.c.measure_id, u.c.days_to_meet, func.count()).where(
        u.c.status == MeasureStatus.MET.value, u.c.days_to_meet.is_not(None)).group_by(
        u.c.pathway_key, u.c.measure_id, u.c.days_to_meet))


def projected_misses(connection: Any, sources: Sequence[Source], after: MissKey | None,
                     limit: int | None) -> Iterable[Any]:
    """The misses after `after` in the report's order, at most `limit` (all when None); each with the
    episode's start, patient and business key, the deadline, the detail and the pathway version."""
    u = _union(sources)
    order = (u.c.pathway_key, u.c.measure_id, u.c.created_at, u.c.instance_id)
    query = select(*order, u.c.patient_id, u.c.business_key, u.c.deadline, u.c.detail, u.c.pathway_version_id).where(
        u.c.status == MeasureStatus.NOT_MET.value)
    if after is not None:
        query = query.where(tuple_(*order) > tuple_(
            bindparam(None, after.pathway, type_=String()), bindparam(None, after.measure_id, type_=String()),
            bindparam(None, after.created_at, type_=Instance.created_at.type),
            bindparam(None, after.instance_id, type_=String())))
    query = query.order_by(*order)
    return connection.execute(query.limit(limit) if limit is not None else query)


__all__ = ["MissKey", "Source", "decode_key", "encode_key", "has_current_states", "has_final_outcomes",
           "projected_counts", "projected_days_to_meet", "projected_misses", "recorded_source", "standing_source"]
