"""The `measure_outcomes` projection: each episode's last recorded measure outcomes as rows the compliance
report counts in SQL (engine/usecases/reports.py), replaced in the transaction that records them.

The rows are made from the recorded event's data alone (the `measure_outcomes` history event), so the
same function serves the product's writer, the migration that backfills existing history and the
benchmark's loader, and they cannot disagree."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import delete, insert
from sqlalchemy.orm import Session

from ..measures import FINAL_STATUSES, MeasureStatus
from ..model import InstanceStatus
from ..persistence.tables import MeasureOutcome

_FINAL = {status.value: status for status in FINAL_STATUSES}
ENDED = (InstanceStatus.COMPLETED.value, InstanceStatus.CANCELLED.value)


class Outcome(NamedTuple):
    """What the report reads of a recorded outcome."""

    status: MeasureStatus
    clock_started: datetime | None
    met_at: datetime | None
    deadline: datetime | None
    detail: str


def final_results(recorded: Sequence[Sequence[str | None]], measure_ids: list[str]) -> list[Outcome] | None:
    """Recorded outcomes (measure id, status, clock started, met at, deadline, detail; as many as the
    widest declaration and one more, absent ones None) back as results, when they are final and name
    exactly the declared measures."""
    count = len(measure_ids)
    if [r[0] for r in recorded[:count]] != measure_ids or any(r[0] is not None for r in recorded[count:]):
        return None
    results = []
    for _, status_text, clock_started, met_at, deadline, detail in recorded[:count]:
        status = _FINAL.get(status_text or "")
        if status is None:
            return None
        met = status is MeasureStatus.MET
        missed = status is MeasureStatus.NOT_MET
        results.append(Outcome(status, _moment(clock_started), _moment(met_at) if met else None,
                               _moment(deadline) if missed else None, (detail or "") if missed else ""))
    return results


def _moment(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _fields(item: Any) -> tuple[Any, ...]:
    if not isinstance(item, Mapping):
        return (None,) * 6
    return tuple(item.get(k) for k in ("measure_id", "status", "clock_started", "met_at", "deadline", "detail"))


def outcome_rows(instance_id: str, version_id: int, pathway_key: str, declared_ids: list[str], *,
                 instance_status: str, ended_at: datetime | None, recorded_at: datetime,
                 data: Any) -> list[dict[str, Any]]:
    """The projection's rows for one `measure_outcomes` event's data: one per recorded measure (each id
    once), all `final` when the episode had ended by then and every declared measure's outcome is final
    (the outcome as the report would count it: met time only when met, deadline and detail only when
    missed)."""
    measures = data.get("measures") if isinstance(data, Mapping) else None
    if not isinstance(measures, list):
        return []
    recorded = [_fields(m) for m in measures]
    ended = instance_status in ENDED and ended_at is not None and ended_at <= recorded_at
    final = _final(recorded, declared_ids) if ended else None
    rows: dict[str, dict[str, Any]] = {}
    for n, (measure_id, status, clock_started, met_at, deadline, detail) in enumerate(recorded):
        if not isinstance(measure_id, str) or measure_id in rows or not isinstance(status, str):
            continue
        outcome = final[n] if final is not None else Outcome(
            MeasureStatus.OPEN if status == "open" else MeasureStatus(status) if status in _VALUES
            else MeasureStatus.UNKNOWN, _safe(clock_started), _safe(met_at), _safe(deadline), str(detail or ""))
        rows[measure_id] = {
            "instance_id": instance_id, "measure_id": measure_id[:200], "pathway_version_id": version_id,
            "pathway_key": pathway_key, "status": outcome.status.value, "clock_started": outcome.clock_started,
            "met_at": outcome.met_at, "deadline": outcome.deadline, "detail": outcome.detail,
            "days_to_meet": _days(outcome), "final": final is not None, "recorded_at": recorded_at}
    return list(rows.values())


_VALUES = {status.value for status in MeasureStatus}


def _final(recorded: list[tuple[Any, ...]], declared_ids: list[str]) -> list[Outcome] | None:
    """The final results of a record, or None (not final, not the declared measures, or times that are
    not aware ISO times: counted by evaluating the episode)."""
    if len(recorded) > len(declared_ids):
        return None
    try:
        final = final_results(recorded + [(None,) * 6], declared_ids)
    except (TypeError, ValueError):
        return None
    aware = all(t is None or t.tzinfo is not None for o in final or () for t in (o.clock_started, o.met_at, o.deadline))
    return final if aware else None


def _safe(value: Any) -> datetime | None:
    """A recorded time of a record not counted from (kept for reading): None when it is not one."""
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) and value else None
    except ValueError:
        return None
    return moment if moment is not None and moment.tzinfo is not None else None


def _days(outcome: Outcome) -> float | None:
    """Days from the clock's start to meeting the measure, as the report's median reads them."""
    if outcome.status is not MeasureStatus.MET or outcome.met_at is None or outcome.clock_started is None:
        return None
    return (outcome.met_at - outcome.clock_started).total_seconds() / 86400


def replace_outcomes(session: Session, instance_id: str, rows: list[dict[str, Any]]) -> None:
    """The instance's projection rows replaced by these (in the caller's transaction)."""
    session.execute(delete(MeasureOutcome).where(MeasureOutcome.instance_id == instance_id))
    if rows:
        session.execute(insert(MeasureOutcome), rows)
