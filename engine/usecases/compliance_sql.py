"""The compliance report's recorded part, counted by the database: the final outcomes the
`measure_outcomes` projection holds (engine/usecases/outcome_projection.py), grouped per measure, with
the same filters the live evaluation applies (the principal's episodes, the period the clock started
in, a team's own deadlines), and the misses a page at a time in the report's order."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import String, and_, bindparam, case, func, null, or_, select, true, tuple_

from ..errors import ValidationFailed
from ..measures import Measure
from ..model import audience_key
from ..persistence.tables import Instance, MeasureOutcome, Task
from ..queries import audience_has

MO = MeasureOutcome


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


def recorded_conditions(episodes: Sequence[Any], parsed: dict[int, list[Measure]], *, now: datetime,
                        start: datetime | None, end: datetime | None, group: str | None, dialect: str) -> list[Any]:
    """Which projection rows the report counts (joined to their instance): final, recorded by `now`,
    of an episode the report covers (`episodes`: conditions on the instance), the clock started in the
    period (none given: any, or no clock), and for a team's report, a measure the team answers for."""
    conditions = [MO.final == true(), MO.recorded_at <= now, MO.pathway_version_id == Instance.pathway_version_id,
                  *episodes]
    if start is not None or end is not None:
        conditions.append(MO.clock_started.is_not(None))
    if start is not None:
        conditions.append(MO.clock_started >= start)
    if end is not None:
        conditions.append(MO.clock_started < end)
    if group is not None:
        conditions.append(_answered_by(parsed, group, dialect))
    return conditions


def has_final_outcomes(now: datetime) -> Any:
    """The instance's outcomes are counted from the projection (the rows `recorded_conditions` reads)."""
    return select(MO.instance_id).where(MO.instance_id == Instance.id, MO.final == true(), MO.recorded_at <= now,
                                        MO.pathway_version_id == Instance.pathway_version_id).exists()


def _answered_by(parsed: dict[int, list[Measure]], group: str, dialect: str) -> Any:
    """The team answers for the measure: the task it waits for was offered to the team, or there is no
    such task to tell (met by a variable, or the episode never reached it). One pair of lookups for every
    measure (the task named by a CASE on the row's measure), each an index probe by instance."""
    waits = [(and_(MO.pathway_version_id == vid, MO.measure_id == m.id), m.met_by_task)
             for vid, declared in sorted(parsed.items()) for m in declared if m.met_by_task]
    if not waits:
        return true()
    task = case(*waits, else_=null())
    reached = select(Task.id).where(Task.instance_id == MO.instance_id, Task.element_id == task)
    offered = audience_has(dialect, [audience_key("group", group)])
    return or_(task.is_(None), ~reached.exists(), reached.where(offered).exists())


def _joined(*columns: Any) -> Any:
    return select(*columns).select_from(MO).join(Instance, Instance.id == MO.instance_id)


def recorded_counts(connection: Any, conditions: list[Any]) -> Iterable[Any]:
    """(pathway, measure id, status, episodes) per measure and status."""
    return connection.execute(_joined(MO.pathway_key, MO.measure_id, MO.status, func.count()).where(
        *conditions).group_by(MO.pathway_key, MO.measure_id, MO.status))


def recorded_days_to_meet(connection: Any, conditions: list[Any]) -> Iterable[Any]:
    """(pathway, measure id, days, episodes) for the measures met with a clock: each distinct value once
    with how many met it in that time (a median needs every value, not every row)."""
    return connection.execute(_joined(MO.pathway_key, MO.measure_id, MO.days_to_meet, func.count()).where(
        *conditions, MO.status == "met", MO.days_to_meet.is_not(None)).group_by(
        MO.pathway_key, MO.measure_id, MO.days_to_meet))


def recorded_misses(connection: Any, conditions: list[Any], after: MissKey | None,
                    limit: int | None) -> Iterable[Any]:
    """The misses after `after` in the report's order, at most `limit` (all when None); each with the
    episode's start, patient and business key, the deadline, the detail and the pathway version."""
    query = _joined(MO.pathway_key, MO.measure_id, Instance.created_at, Instance.id, Instance.patient_id,
                    Instance.business_key, MO.deadline, MO.detail, MO.pathway_version_id).where(
        *conditions, MO.status == "not_met")
    if after is not None:
        query = query.where(tuple_(MO.pathway_key, MO.measure_id, Instance.created_at, Instance.id) > tuple_(
            bindparam(None, after.pathway, type_=String()), bindparam(None, after.measure_id, type_=String()),
            bindparam(None, after.created_at, type_=Instance.created_at.type),
            bindparam(None, after.instance_id, type_=String())))
    query = query.order_by(MO.pathway_key, MO.measure_id, Instance.created_at, Instance.id)
    return connection.execute(query.limit(limit) if limit is not None else query)


__all__ = ["MissKey", "decode_key", "encode_key", "has_final_outcomes", "recorded_conditions",
           "recorded_counts", "recorded_days_to_meet", "recorded_misses"]
