"""Where an episode stands on the quality measures its pathway declares (engine/measures.py).

Evaluated from the instance's data and its history's task completions, never from which timers fired,
so the answer is the same whenever it is asked; recorded in the history (`measure_outcomes`) when an
episode ends, so the audit keeps what was known at the time, and projected then into `measure_outcomes`
(engine/usecases/outcome_projection.py), which the compliance report counts; until then the report
counts the episode's standing, projected with its state (engine/usecases/measure_states.py).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..application import CarePath
from ..errors import NotFound
from ..identity import SCHEDULER, Principal, instance_scope
from ..measures import Completion, Episode, MeasureResult, MeasureStatus, evaluate, measure_from_dict
from ..model import InstanceStatus, TimerState
from ..persistence.tables import Event, Instance, PathwayVersion, Timer
from ..persistence.unit_of_work import UnitOfWork
from ..queries import readable_instance
from ..rules import TIMER_RULES, advance
from ..sandbox import evaluate_expression
from .measure_states import project_on_commit
from .outcome_projection import outcome_rows, replace_outcomes


def instance_measures(app: CarePath, instance_id: str, principal: Principal) -> list[MeasureResult]:
    """Each declared measure's status for one episode, now; for those who may read the instance."""
    with app.db.read() as session:
        return evaluate_instance(app, session, read_instance(session, principal, instance_id))


def read_instance(session: Session, principal: Principal, instance_id: str) -> Instance:
    """The instance this principal may read; NotFound otherwise, like one that does not exist."""
    instance = readable_instance(session, instance_id, instance_scope(principal))
    if instance is None:
        raise NotFound(f"instance {instance_id} does not exist")
    return instance


def evaluate_instance(app: CarePath, session: Session, instance: Instance) -> list[MeasureResult]:
    version = session.get(PathwayVersion, instance.pathway_version_id)
    declared = (version.measures if version is not None else None) or []
    if not declared:
        return []
    completions = [Completion(str(data.get("element_id") or ""), at, data.get("data") or {}) for at, data in
                   session.execute(select(Event.at, Event.data).where(
                       Event.instance_id == instance.id, Event.type == "task_completed").order_by(Event.id))]
    cancelled_at = instance.ended_at if instance.status == InstanceStatus.CANCELLED else None
    episode = Episode(instance.data or {}, completions, cancelled_at)
    context = app.time_context(version.time_settings if version is not None else {})
    return [evaluate(measure_from_dict(raw), episode, now=app.now(), time_context=context,
                     evaluate_expression=evaluate_expression) for raw in declared]


MEASURE_TIMER = "measure"


def record_measure_outcomes(uow: UnitOfWork, instance: Instance, actor: str) -> None:
    """Every declared measure's status into the history, in one event: when an episode ends, and again
    when the window of a measure still open at the end closes (a `measure` timer at the earliest such
    deadline), so the history ends with each measure's final outcome."""
    uow.flush_history()  # the completions recorded by this transaction count too
    results = evaluate_instance(uow.app, uow.session, instance)
    if not results:
        return
    data: dict[str, Any] = {"status": instance.status, "measures": [r.as_dict() for r in results]}
    uow.record("measure_outcomes", actor, instance_id=instance.id, pathway_version_id=instance.pathway_version_id,
               data=data)
    project_on_commit(uow, instance)  # its standing goes once the outcomes are final
    replace_outcomes(uow.session, instance.id, outcome_rows(
        instance.id, instance.pathway_version_id, instance.pathway_key, [r.measure_id for r in results],
        instance_status=instance.status, ended_at=instance.ended_at, recorded_at=uow.app.now(), data=data))
    still_open = [r.deadline for r in results if r.status == MeasureStatus.OPEN and r.deadline is not None]
    if still_open:
        due = min(still_open) + timedelta(seconds=1)
        uow.session.add(Timer(instance_id=instance.id, task_id=instance.id, element_id="measures", kind=MEASURE_TIMER,
                              due_at=due, state=TimerState.PENDING.value, attempts=0, created_at=uow.app.now()))
        uow.after_commit(lambda: uow.app.timers_scheduled([due]))


def measure_window_closed(uow: UnitOfWork, timer: Timer) -> None:
    """A `measure` timer came due: record the outcomes as they stand now (and wait for the next window)."""
    advance(timer, TIMER_RULES, "fire", f"timer {timer.id}")
    timer.fired_at = uow.app.now()
    # Locked like every change to the episode: its measure standing is replaced at commit.
    instance = uow.session.get(Instance, timer.instance_id, with_for_update=True)
    if instance is not None:
        record_measure_outcomes(uow, instance, SCHEDULER.name)
