"""The `measure_states` projection: where each episode stands on its pathway's declared measures, as
rows the compliance report counts in SQL (engine/usecases/compliance_sql.py) instead of evaluating
running episodes on every request.

A row holds the evaluation of the instance version its `lock_version` names, made independent of the
time: a measure whose window is still open is stored `open` with its deadline (and the detail it gets
once missed), and reads as missed once the report's clock has passed that deadline, without any write.
Rows are replaced at commit of each transaction that saves the instance's state or records its
outcomes (`project_on_commit`); an episode whose final outcomes are recorded (`measure_outcomes`) has
none, the report counts it from those. Any other change to the instance bumps its `lock_version`, so a
stale row is never counted: the report evaluates that episode live instead."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, delete, insert, inspect, select
from sqlalchemy.orm import Session

from ..application import CarePath
from ..calendars import TimeContext
from ..measures import Completion, Episode, Measure, MeasureResult, MeasureStatus, evaluate, measure_from_dict
from ..model import InstanceStatus
from ..persistence.tables import Event, Instance, MeasureOutcome, MeasureState, PathwayVersion
from ..persistence.unit_of_work import UnitOfWork
from ..sandbox import evaluate_expression
from .outcome_projection import ENDED

# Before any deadline a declaration can name: what an evaluation then says does not depend on the time,
# except that an open window closes at its deadline.
_BEFORE_ANY = datetime(1900, 1, 1, tzinfo=UTC)


def standing(measure: Measure, episode: Episode, context: TimeContext) -> tuple[MeasureResult, str]:
    """The measure's result at any time before its deadline, and the detail it has once missed (for an
    open one: the evaluation just after the deadline; else its own detail)."""
    result = evaluate(measure, episode, now=_BEFORE_ANY, time_context=context,
                      evaluate_expression=evaluate_expression)
    if result.status is MeasureStatus.OPEN and result.deadline is not None:
        missed = evaluate(measure, episode, now=result.deadline + timedelta(microseconds=1), time_context=context,
                          evaluate_expression=evaluate_expression)
        return result, missed.detail
    return result, result.detail


def state_rows(instance_id: str, version_id: int, pathway_key: str, lock_version: int,
               measures: Sequence[Measure], episode: Episode, context: TimeContext) -> list[dict[str, Any]]:
    """The projection's rows for one episode as these facts stand (one per declared measure)."""
    rows = []
    for measure in measures:
        result, detail = standing(measure, episode, context)
        days = None
        if result.status is MeasureStatus.MET and result.met_at and result.clock_started:
            days = (result.met_at - result.clock_started).total_seconds() / 86400
        rows.append({"instance_id": instance_id, "measure_id": measure.id, "pathway_version_id": version_id,
                     "pathway_key": pathway_key, "lock_version": lock_version, "status": result.status.value,
                     "clock_started": result.clock_started, "met_at": result.met_at, "deadline": result.deadline,
                     "detail": detail if result.status in (MeasureStatus.OPEN, MeasureStatus.NOT_MET) else "",
                     "days_to_meet": days})
    return rows


def declared_measures(app: CarePath, session: Session, version_id: int) -> list[Measure]:
    """The version's declared measures (from the spec cache when the workflow was loaded: no statement)."""
    cached = app.specs.get(version_id)
    raw = cached.measures if cached is not None else (
        session.scalar(select(PathwayVersion.measures).where(PathwayVersion.id == version_id)) or [])
    return [measure_from_dict(m) for m in raw]


def project_on_commit(uow: UnitOfWork, instance: Instance) -> None:
    """The instance's rows replaced at commit, from its facts as the transaction leaves them. An instance
    this transaction inserts has no rows and no history yet: nothing to delete or read."""
    instance_id, fresh = instance.id, inspect(instance).pending
    uow.before_commit(f"measure_states:{instance_id}", lambda: project_instance(uow, instance_id, fresh=fresh))


def project_instance(uow: UnitOfWork, instance_id: str, *, fresh: bool = False) -> None:
    """Replace the instance's rows (after the transaction's last change to it has been flushed)."""
    session = uow.session
    if not fresh:
        session.execute(delete(MeasureState).where(MeasureState.instance_id == instance_id))
    instance = session.get(Instance, instance_id)
    if instance is None or instance.status in ENDED and _has_final_outcomes(session, instance_id):
        return  # counted from its final recorded outcomes (measure_outcomes) instead
    measures = declared_measures(uow.app, session, instance.pathway_version_id)
    if not measures:
        return
    stored = [] if fresh else _completions(session, [instance_id]).get(instance_id, [])
    completions = stored + [_completion(event.at, event.data)
                            for event in uow.pending_history(instance_id, "task_completed")]
    rows = state_rows(instance.id, instance.pathway_version_id, instance.pathway_key, instance.lock_version,
                      measures, _episode(instance.status, instance.ended_at, instance.data, completions),
                      _context(uow.app, session, instance.pathway_version_id))
    session.execute(insert(_MEASURE_STATES), rows)  # Core: one statement for all of them


def _has_final_outcomes(session: Session, instance_id: str) -> bool:
    return session.scalar(select(MeasureOutcome.instance_id).where(
        MeasureOutcome.instance_id == instance_id, MeasureOutcome.final.is_(True)).limit(1)) is not None


def _context(app: CarePath, session: Session, version_id: int) -> TimeContext:
    cached = app.specs.get(version_id)
    settings = cached.time_settings if cached is not None else session.scalar(
        select(PathwayVersion.time_settings).where(PathwayVersion.id == version_id))
    return app.time_context(settings)


def _episode(status: str, ended_at: datetime | None, data: Any, completions: list[Completion]) -> Episode:
    return Episode(data or {}, completions, ended_at if status == InstanceStatus.CANCELLED else None)


def _completion(at: datetime, data: Any) -> Completion:
    return Completion(str(data.get("element_id") or ""), at, data.get("data") or {})


def _completions(session: Session, instance_ids: Sequence[str]) -> dict[str, list[Completion]]:
    out: dict[str, list[Completion]] = {}
    for instance_id, at, data in session.execute(select(Event.instance_id, Event.at, Event.data).where(
            Event.instance_id.in_(instance_ids), Event.type == "task_completed").order_by(Event.id)):
        out.setdefault(instance_id, []).append(_completion(at, data))
    return out


_MEASURE_STATES = cast(Table, MeasureState.__table__)
PAGE = 500


def project_all(app: CarePath) -> int:
    """Rows for every instance of a version declaring measures that has neither current rows nor final
    outcomes (after the migration that added the table), a page at a time, each page in its own
    transaction; how many. An instance another transaction holds is left to that transaction."""
    written = 0
    for ids in _without_current_rows(app):
        with app.db.write_sessions() as session, session.begin():
            page = session.execute(select(
                Instance.id, Instance.pathway_version_id, Instance.pathway_key, Instance.lock_version,
                Instance.status, Instance.ended_at, Instance.data).where(
                Instance.id.in_(ids), ~_final_outcomes()).with_for_update(skip_locked=True)).all()
            mine = [row.id for row in page]
            session.execute(delete(MeasureState).where(MeasureState.instance_id.in_(mine)))
            completions = _completions(session, mine)
            rows = []
            for row in page:
                rows += state_rows(row.id, row.pathway_version_id, row.pathway_key, row.lock_version,
                                   declared_measures(app, session, row.pathway_version_id),
                                   _episode(row.status, row.ended_at, row.data, completions.get(row.id, [])),
                                   _context(app, session, row.pathway_version_id))
            if rows:
                session.execute(insert(MeasureState), rows)
        written += len(page)
    return written


def _final_outcomes() -> Any:
    return select(MeasureOutcome.instance_id).where(MeasureOutcome.instance_id == Instance.id,
                                                    MeasureOutcome.final.is_(True)).exists()


def _without_current_rows(app: CarePath) -> Iterator[list[str]]:
    """Ids of the instances to project, a page at a time."""
    with app.db.read() as session:
        declaring = [vid for vid, measures in session.execute(select(PathwayVersion.id, PathwayVersion.measures))
                     if measures]
    after = ""
    while declaring:
        with app.db.read() as session:
            current = select(MeasureState.instance_id).where(
                MeasureState.instance_id == Instance.id, MeasureState.lock_version == Instance.lock_version,
                MeasureState.pathway_version_id == Instance.pathway_version_id).exists()
            page = list(session.scalars(select(Instance.id).where(
                Instance.pathway_version_id.in_(declaring), Instance.id > after, ~current, ~_final_outcomes())
                .order_by(Instance.id).limit(PAGE)))
        if not page:
            return
        yield page
        after = page[-1]
