"""Recompute every history chain and checkpoint; stop at the first broken link and name it.

Events are streamed in (chain, seq) order, so memory stays flat however long the history; only the
signed heads of the checkpoints (one entry per chain) are held. Checks, per event: seq follows the one
before, prev_hash is the hash of the event before, the hash matches the content, the chain is the
event's instance. Per checkpoint: its number follows the one before and its MAC (over its content and
the previous MAC) matches the key. Then every signed head must be an event of its chain with that hash;
since each hash covers the one before, a signed head vouches for its whole chain up to there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..application import CarePath
from ..persistence.chain import GENESIS, chain_of, checkpoint_mac, hash_of_row
from ..persistence.tables import AuditCheckpoint, Event

STREAM_BATCH = 2000


class BrokenLink(Exception):
    pass


@dataclass
class Verification:
    chains: int = 0
    events: int = 0
    checkpoints: int = 0
    warnings: list[str] = field(default_factory=list)
    problem: str | None = None

    @property
    def intact(self) -> bool:
        return self.problem is None


def verify_history(app: CarePath, key: bytes | None, progress: Callable[[Verification], None] | None = None,
                   progress_every: int = 10_000) -> Verification:
    result = Verification()
    with app.db.read() as session:
        try:
            marks = _verify_checkpoints(session, key, result)
            _verify_chains(session, marks, result, progress, progress_every)
        except BrokenLink as exc:
            result.problem = str(exc)
    return result


def _verify_checkpoints(session: Session, key: bytes | None, result: Verification) -> dict[str, tuple[int, str, int]]:
    """The signed heads, {chain: (seq, hash, checkpoint number)}, latest per chain."""
    if key is None:
        result.warnings.append("no audit key configured (CAREPATH_AUDIT_KEY): checkpoints were not checked, so a "
                               "chain rewritten consistently would go unnoticed")
        return {}
    marks: dict[str, tuple[int, str, int]] = {}
    prev_mac = ""
    query = select(AuditCheckpoint).order_by(AuditCheckpoint.seq).execution_options(yield_per=STREAM_BATCH)
    for checkpoint in session.scalars(query):
        expected = result.checkpoints + 1
        where = f"checkpoint {checkpoint.seq} (id {checkpoint.id})"
        if checkpoint.seq != expected:
            raise BrokenLink(f"{where}: expected checkpoint number {expected} (checkpoints missing or inserted)")
        mac = checkpoint_mac(key, seq=checkpoint.seq, at=checkpoint.at, last_event_id=checkpoint.last_event_id,
                             heads=checkpoint.heads, prev_mac=prev_mac)
        if mac != checkpoint.mac:
            raise BrokenLink(f"{where}: MAC does not match (the checkpoint or the one before was altered, or "
                             "the key is not the one it was signed with)")
        prev_mac = checkpoint.mac
        result.checkpoints += 1
        for chain, (seq, digest) in checkpoint.heads.items():
            if chain not in marks or marks[chain][0] <= seq:
                marks[chain] = (seq, digest, checkpoint.seq)
    if result.checkpoints == 0:
        result.warnings.append("no checkpoints yet: a chain rewritten consistently would go unnoticed")
    return marks


def _verify_chains(session: Session, marks: dict[str, tuple[int, str, int]], result: Verification,
                   progress: Callable[[Verification], None] | None, progress_every: int) -> None:
    columns = (Event.id, Event.chain, Event.seq, Event.prev_hash, Event.hash, Event.instance_id, Event.task_id,
               Event.pathway_version_id, Event.type, Event.actor, Event.at, Event.data)
    chain: str | None = None
    seq, prev = 0, GENESIS
    for row in _stream(session, select(*columns).order_by(Event.chain, Event.seq)):
        if row.chain is None or row.seq is None:
            raise BrokenLink(f"event {row.id}: it belongs to no chain (chain or seq is empty)")
        if row.chain != chain:
            if chain is not None:
                _close_chain(chain, seq, marks)
                if progress and result.chains % progress_every == 0:
                    progress(result)
            chain, seq, prev = row.chain, 0, GENESIS
            result.chains += 1
        _check_event(session, row, seq, prev, marks)
        seq, prev = row.seq, row.hash
        result.events += 1
    if chain is not None:
        _close_chain(chain, seq, marks)
    if marks:
        lost, (signed, _, number) = next(iter(marks.items()))
        raise BrokenLink(f"chain {lost}: checkpoint {number} signed it up to seq {signed}, but it has no events "
                         "(deleted)")


def _check_event(session: Session, row: Any, seq: int, prev: str, marks: dict[str, tuple[int, str, int]]) -> None:
    where = f"event {row.id} (chain {row.chain}, seq {row.seq})"
    if row.seq != seq + 1:
        raise BrokenLink(f"{where}: expected seq {seq + 1}{_missing(session, row)}")
    if row.prev_hash != prev:
        raise BrokenLink(f"{where}: prev_hash {row.prev_hash} is not the hash of seq {seq} ({prev})"
                         f"{_missing(session, row)}")
    if hash_of_row(row) != row.hash:
        raise BrokenLink(f"{where}: hash does not match the event's content (altered)")
    if row.chain != chain_of(row.instance_id):
        raise BrokenLink(f"{where}: chain is not the event's instance {row.instance_id}")
    mark = marks.get(row.chain)
    if mark is not None and mark[0] == row.seq and mark[1] != row.hash:
        raise BrokenLink(f"{where}: hash differs from the one signed by checkpoint {mark[2]} (chain rewritten)")


def _close_chain(chain: str, last_seq: int, marks: dict[str, tuple[int, str, int]]) -> None:
    mark = marks.pop(chain, None)
    if mark is not None and mark[0] > last_seq:
        raise BrokenLink(f"chain {chain}: ends at seq {last_seq}, but checkpoint {mark[2]} signed it up to seq "
                         f"{mark[0]} (events deleted)")


def _missing(session: Session, row: Any) -> str:
    """Name the event this one links back to when it is not where it belongs (moved to another chain or
    seq); only looked up once a link is broken, so the unindexed search costs nothing on a clean run."""
    moved = session.execute(select(Event.id, Event.chain, Event.seq).where(Event.hash == row.prev_hash)).first()
    if moved is None:
        return "; the event it links back to is missing (deleted, or this prev_hash was altered)"
    return f"; the event it links back to is event {moved.id}, now at chain {moved.chain}, seq {moved.seq} (moved)"


def _stream(session: Session, query: Any) -> Iterator[Any]:
    yield from session.execute(query.execution_options(yield_per=STREAM_BATCH))
