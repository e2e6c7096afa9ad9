"""The answer of a change (a start, a completion, a cancel, a retry): the instance as a GET right after
the commit reads it (`queries.instance_view`), built inside the change's own transaction from what it
already holds: the locked row, the engine's last snapshot (its timers; its message waits when it has
any) and the pathway version's number, known since it was loaded. What the change did not keep, the
open tasks (with their patient) is read again in its transaction: no second transaction, no second
look-up of the instance, its version or its timers.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from ..caches import LRUCache
from ..identity import Principal
from ..persistence.tables import Instance, PathwayVersion
from ..persistence.unit_of_work import UnitOfWork
from ..queries import assembled_instance_view, instance_view, message_waits, worker_waits
from ..views import InstanceView, WaitView


def answer_of_change(uow: UnitOfWork, instance: Instance, reader: Principal) -> InstanceView:
    """Call after the change's last save and before its commit (the view is of what it commits)."""
    session = uow.session
    snapshot = uow.snapshots.get(instance.id)
    session.flush()
    if snapshot is None:  # not saved through after_engine_steps: read as the GET does
        view = instance_view(session, instance.id, uow.app.now(), reader)
        assert view is not None  # the row is locked by this transaction
        return view
    due = sorted(snapshot.timers, key=lambda t: (t.due_at, t.element_id, t.task_id))  # queries.TIMER_ORDER
    waiting = [WaitView("timer", t.element_id, due_at=t.due_at) for t in due]
    if snapshot.messages:  # in the order they were awaited: the rows' ids
        waiting += message_waits(session, instance.id)
    if snapshot.external_tasks:  # a worker's or a connector's: the rows say which still wait
        waiting += worker_waits(session, instance.id)
    number = version_number(uow.app.version_numbers, session, instance.pathway_version_id)
    return assembled_instance_view(session, instance, number, waiting, uow.app.now(), reader)


def version_number(numbers: LRUCache[int, int], session: Session, version_id: int) -> int:
    """A pathway version's number never changes: read once per process."""
    number = numbers.get(version_id)
    if number is None:
        row = session.get(PathwayVersion, version_id)
        number = row.version if row is not None else 0
        numbers.put(version_id, number)
    return number
