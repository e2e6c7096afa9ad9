"""One state change = one transaction: `with UnitOfWork(app) as uow: ...; uow.commit()`.

Leaving the block without commit rolls back. History rows are appended through `record`; they are
held here and written at commit, after every other change has been flushed, because appending takes
each chain's lock (see `chain.py`): taken last and in chain order, that lock never closes a cycle with
the row locks a transaction takes, and it is held only for the last statements of the transaction.
Work to do only once the transaction is durable (putting a workflow back into the cache,
waking the scheduler) is registered with `after_commit`; projections of the state the transaction
leaves (an episode's measure standing) with `before_commit`, run at commit before the history.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from ..application import CarePath
from ..model import Snapshot
from .chain import GENESIS, as_stored, chain_of, hash_of_row, read_heads
from .tables import Event, Instance

log = logging.getLogger(__name__)


class UnitOfWork:
    def __init__(self, app: CarePath) -> None:
        self.app = app
        self._after_commit: list[Callable[[], None]] = []
        self._before_commit: dict[str, Callable[[], None]] = {}  # by key: registered once per transaction
        self._committed = False
        self._heads: dict[str, tuple[int, str]] = {}  # chain -> (seq, hash) of its last row written so far
        self._history: list[Event] = []  # recorded, not yet written
        self.delivered_catches: set[str] = set()  # message catches handed a message in this transaction
        self.migrated_instances: set[str] = set()  # moved to another pathway version in this transaction
        # The engine's last snapshot of each instance saved (usecases/after_steps.py): the change's answer
        # is built from it (usecases/change_answers.py).
        self.snapshots: dict[str, Snapshot] = {}
        # Several instances change in this transaction (a batch of timers): their saves leave every write to
        # one flush, so that each table gets a few multi-row statements instead of a few per instance, and
        # read their projection rows from `projection_rows` (usecases/projections.ProjectionRows by instance
        # id), read for the whole batch at once.
        self.batched = False
        self.projection_rows: dict[str, Any] = {}
        self.session: Session

    def __enter__(self) -> UnitOfWork:
        self.session = self.app.db.write_sessions()
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            if not self._committed:
                self.session.rollback()
        finally:
            self.session.close()
        if self._committed:
            for callback in self._after_commit:
                try:
                    callback()
                except Exception:  # the change is durable; one failed follow-up must not skip the others
                    log.exception("work after a commit failed")

    def commit(self) -> None:
        if self._before_commit:
            self.session.flush()  # what the callbacks read is what the transaction leaves
            for callback in self._before_commit.values():
                callback()
        self.flush_history()
        self.session.commit()
        self._committed = True

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """Part of the transaction that can fail alone: on an exception its changes, history rows and
        after-commit work are undone and the exception propagates; the rest of the transaction goes on."""
        pending, heads, history = len(self._after_commit), dict(self._heads), list(self._history)
        before = dict(self._before_commit)
        try:
            with self.session.begin_nested():
                yield
        except BaseException:
            del self._after_commit[pending:]
            self._before_commit = before
            # Fresh rows: any of them written inside the savepoint (flush_history) were rolled back with it.
            self._history = [_unwritten(e) for e in history]
            self._heads = heads
            raise

    def after_commit(self, callback: Callable[[], None]) -> None:
        self._after_commit.append(callback)

    def before_commit(self, key: str, callback: Callable[[], None]) -> None:
        """Work to do at commit, after every change has been flushed and before the history is written
        (once per key and transaction: projections of the state the transaction leaves)."""
        self._before_commit.setdefault(key, callback)

    def pending_history(self, instance_id: str, type_: str) -> list[Event]:
        """This transaction's history rows of that type about the instance not written yet."""
        return [e for e in self._history if e.instance_id == instance_id and e.type == type_]

    def record(self, type_: str, actor: str, *, instance_id: str | None = None, task_id: str | None = None,
               pathway_version_id: int | None = None, data: dict[str, Any] | None = None) -> None:
        self._history.append(Event(type=type_, actor=actor, instance_id=instance_id, task_id=task_id,
                                   pathway_version_id=pathway_version_id, at=self.app.now(),
                                   data=as_stored(data or {}), chain=chain_of(instance_id)))

    def new_chain(self, instance_id: str) -> None:
        """The chain of an instance this transaction creates (its id fresh, unseen by any other transaction)
        starts at genesis: its head is neither read nor locked. Were it not new after all, the unique
        (chain, seq) would refuse the first row."""
        self._heads[chain_of(instance_id)] = (0, GENESIS)

    def flush_history(self) -> None:
        """Write the recorded history rows now, chained after each chain's head (read and locked once per
        chain and transaction), in one INSERT of many rows. Called by `commit`; call it earlier only to
        read this transaction's rows."""
        events, self._history = self._history, []
        if not events:
            return
        self.session.flush()  # every row lock of the transaction before any chain lock
        self._fill_pathway_versions(events)
        self._heads.update(read_heads(self.session, sorted({e.chain for e in events} - self._heads.keys())))
        for event in events:
            seq, prev_hash = self._heads[event.chain]
            event.seq, event.prev_hash = seq + 1, prev_hash
            event.hash = hash_of_row(event)
            self._heads[event.chain] = (event.seq, event.hash)
        self.session.execute(insert(_EVENTS), [{column: getattr(e, column) for column in _EVENT_COLUMNS}
                                             for e in events])

    def _fill_pathway_versions(self, events: list[Event]) -> None:
        """Every entry about an instance names the pathway version it ran (task actions record only the
        task and its instance): one read for all of them, before they are hashed."""
        missing = {e.instance_id for e in events if e.instance_id and e.pathway_version_id is None}
        if not missing:
            return
        versions: dict[str, int] = {}
        for instance_id in missing:  # an instance this transaction loaded (locked) already says it
            loaded = self.session.identity_map.get(identity_key(Instance, instance_id))
            if loaded is not None and "pathway_version_id" in loaded.__dict__:
                versions[instance_id] = loaded.pathway_version_id
        if missing - versions.keys():
            rows = self.session.execute(select(Instance.id, Instance.pathway_version_id)
                                        .where(Instance.id.in_(missing - versions.keys())))
            versions.update((instance_id, version_id) for instance_id, version_id in rows)
        for event in events:
            if event.instance_id and event.pathway_version_id is None:
                event.pathway_version_id = versions.get(event.instance_id)


_EVENTS = cast(Table, Event.__table__)  # written with Core: one INSERT of many rows, no identity map
_EVENT_COLUMNS = ("instance_id", "task_id", "pathway_version_id", "type", "actor", "at", "data", "chain", "seq",
                  "prev_hash", "hash")


def _unwritten(event: Event) -> Event:
    return Event(type=event.type, actor=event.actor, instance_id=event.instance_id, task_id=event.task_id,
                 pathway_version_id=event.pathway_version_id, at=event.at, data=event.data, chain=event.chain)
