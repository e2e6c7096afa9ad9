"""Where an episode stands on the quality measures its pathway declares (engine/measures.py).

Evaluated from the instance's data and its history's task completions, never from which timers fired,
so the answer is the same whenever it is asked; recorded in the history (`measure_outcomes`) when an
episode ends, so the audit keeps what was known at the time.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..application import CarePath
from ..errors import NotFound
from ..identity import Principal, instance_scope
from ..measures import Completion, Episode, MeasureResult, evaluate, measure_from_dict
from ..model import InstanceStatus
from ..persistence.tables import Event, Instance, PathwayVersion
from ..persistence.unit_of_work import UnitOfWork
from ..queries import instance_is_visible
from ..sandbox import evaluate_expression


def instance_measures(app: CarePath, instance_id: str, principal: Principal) -> list[MeasureResult]:
    """Each declared measure's status for one episode, now; for those who may read the instance."""
    with app.db.read() as session:
        if not instance_is_visible(session, instance_id, instance_scope(principal)):
            raise NotFound(f"instance {instance_id} does not exist")
        instance = session.get(Instance, instance_id)
        if instance is None:
            raise NotFound(f"instance {instance_id} does not exist")
        return evaluate_instance(app, session, instance)


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


def record_measure_outcomes(uow: UnitOfWork, instance: Instance, actor: str) -> None:
    """At the end of an episode: every declared measure's status into the history, in one event."""
    results = evaluate_instance(uow.app, uow.session, instance)
    if results:
        data: dict[str, Any] = {"status": instance.status, "measures": [r.as_dict() for r in results]}
        uow.record("measure_outcomes", actor, instance_id=instance.id, pathway_version_id=instance.pathway_version_id,
                   data=data)
