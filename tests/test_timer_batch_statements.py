"""A batch of due timers fires in a fixed number of SQL statements whatever its size: the projection rows
are read for the whole batch, the writes of every instance go in one flush (one multi-row statement a
table, the instance rows included) and the history chains are locked and read together. A guard against round trips
added per timer, which is what the speed of draining a burst comes down to."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import event, select

from carepath.engine.application import CarePath
from carepath.engine.clock import ManualClock
from carepath.engine.definitions import SourceFile
from carepath.engine.identity import Principal, Role
from carepath.engine.persistence.tables import Event, Instance, Task, Timer
from carepath.engine.usecases.deploy import deploy_pathways
from carepath.engine.usecases.instances import start_instance
from carepath.engine.usecases.timers import BATCH_SIZE, fire_due_timers
from tests.support import diagrams as d

LEAD = Principal("lead", Role.ADMIN)


def _start_waiting(engine: CarePath, count: int) -> list[str]:
    """`count` instances waiting on a one-day timer, with a boundary timer on the task it opens."""
    deploy_pathways(engine, LEAD, [SourceFile("wait.bpmn", d.definitions(d.process(
        "wait", d.node("startEvent", "s"),
        d.node("intermediateCatchEvent", "day", "Wait a day", body=d.timer("timeDuration", "P1D")),
        d.node("userTask", "review", "Review"),
        d.node("boundaryEvent", "late", "Late", attachedToRef="review", cancelActivity="false",
               body=d.timer("timeDuration", "P2D")),
        d.node("endEvent", "e"), d.node("endEvent", "e2"),
        d.flow("f1", "s", "day"), d.flow("f2", "day", "review"), d.flow("f3", "review", "e"),
        d.flow("f4", "late", "e2"))).encode())])
    return [start_instance(engine, LEAD, "wait", business_key=f"w{n}").id for n in range(count)]


def _statements(engine: CarePath, action: Any) -> list[str]:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(" ".join(statement.split()[:3]))

    event.listen(engine.db.engine, "before_cursor_execute", count)
    try:
        action()
    finally:
        event.remove(engine.db.engine, "before_cursor_execute", count)
    return statements


def test_a_batch_of_timers_costs_a_fixed_number_of_statements(
        engine: CarePath, clock: ManualClock) -> None:
    started = _start_waiting(engine, BATCH_SIZE)
    engine.workflows.clear()  # a worker that did not start these instances: every state is read and restored
    clock.advance(days=1, seconds=1)
    fired: list[int] = []
    statements = _statements(engine, lambda: fired.append(fire_due_timers(engine, limit=BATCH_SIZE)))
    assert fired == [BATCH_SIZE]
    kinds = Counter(statements)
    assert kinds.pop("UPDATE instances SET") == 1  # an executemany: one round trip on PostgreSQL
    if engine.db.dialect == "sqlite":  # in-process calls, not round trips: a head lookup per chain, and
        # SQLAlchemy inserts rows that return their ids one at a time there
        assert kinds.pop("SELECT events.seq, events.hash") == BATCH_SIZE
        kinds = Counter({kind: n for kind, n in kinds.items() if not kind.startswith("INSERT")})
        assert sum(kinds.values()) <= 7, kinds  # BEGIN, claim, 3 projection reads, timers' UPDATE
    else:  # claim, 3 projection reads, 4 multi-row writes to projections, chain locks and heads, history
        assert sum(kinds.values()) <= 11, kinds
    with engine.db.read() as session:
        tasks = session.scalars(select(Task.instance_id).where(Task.element_id == "review", Task.state == "ready"))
        assert sorted(tasks) == sorted(started)
        history = Counter(session.scalars(select(Event.type).where(Event.instance_id.in_(started))))
        assert history["timer_fired"] == BATCH_SIZE and history["timer_scheduled"] == 2 * BATCH_SIZE
        pending = session.scalars(select(Timer.element_id).where(Timer.state == "pending")).all()
        assert pending == ["late"] * BATCH_SIZE  # the boundary timers the batch scheduled
        versions = dict(session.execute(select(Instance.id, Instance.lock_version)).all())
    # Each workflow went back to the cache with the version its row was written with, so the next change
    # of the instance uses it (a stale version would restore it again; a wrong one could use a stale copy).
    for instance_id in started:
        cached = engine.workflows.take(instance_id)
        assert cached is not None and cached[0] == versions[instance_id]
