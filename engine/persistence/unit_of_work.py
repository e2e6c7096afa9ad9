"""One state change = one transaction: `with UnitOfWork(app) as uow: ...; uow.commit()`.

Leaving the block without commit rolls back. History rows are appended through `record`.
Work to do only once the transaction is durable (putting a workflow back into the cache,
waking the scheduler) is registered with `after_commit`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.orm import Session

from ..application import CarePath
from .chain import as_stored, chain_of, event_hash, read_head
from .tables import Event

log = logging.getLogger(__name__)


class UnitOfWork:
    def __init__(self, app: CarePath) -> None:
        self.app = app
        self._after_commit: list[Callable[[], None]] = []
        self._committed = False
        self._heads: dict[str, tuple[int, str]] = {}  # chain -> (seq, hash) of its last row in this transaction
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
        self.session.commit()
        self._committed = True

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """Part of the transaction that can fail alone: on an exception its changes, history rows and
        after-commit work are undone and the exception propagates; the rest of the transaction goes on."""
        pending, heads = len(self._after_commit), dict(self._heads)
        try:
            with self.session.begin_nested():
                yield
        except BaseException:
            del self._after_commit[pending:]
            self._heads = heads
            raise

    def after_commit(self, callback: Callable[[], None]) -> None:
        self._after_commit.append(callback)

    def record(self, type_: str, actor: str, *, instance_id: str | None = None, task_id: str | None = None,
               pathway_version_id: int | None = None, data: dict[str, Any] | None = None) -> None:
        """Append a history row to its instance's chain; the chain's head is read (and locked) once per
        transaction and then kept here."""
        chain = chain_of(instance_id)
        head = self._heads.get(chain)
        if head is None:
            head = read_head(self.session, chain)
        seq, prev_hash = head[0] + 1, head[1]
        event = Event(type=type_, actor=actor, instance_id=instance_id, task_id=task_id,
                      pathway_version_id=pathway_version_id, at=self.app.now(), data=as_stored(data or {}),
                      chain=chain, seq=seq, prev_hash=prev_hash)
        event.hash = event_hash(chain=chain, seq=seq, prev_hash=prev_hash, instance_id=instance_id,
                                task_id=task_id, pathway_version_id=pathway_version_id, type=type_, actor=actor,
                                at=event.at, data=event.data)
        self._heads[chain] = (seq, event.hash)
        self.session.add(event)
