"""Recompute every history chain and checkpoint; stop at the first broken link and name it.

Events are streamed in (chain, seq) order, so memory stays flat however long the history; only the
signed heads of the checkpoints (one entry per chain) are held. Checks, per event: seq follows the one
before, prev_hash is the hash of the event before, the hash matches the content, the chain is the
event's instance. Per checkpoint: its number follows the one before, its MAC (over its content and
the previous MAC) matches the key it names, and it is the one copied outside the database (anchors),
if any were given. Then every signed head must be an event of its chain with that hash; since each hash
covers the one before, a signed head vouches for its whole chain up to there.

Key rotation: checkpoints name the key that signed them. Those signed with a key that is no longer
configured cannot be checked; they are accepted only when a full checkpoint signed with a configured key
follows them (it signs every chain's head, so it vouches for everything before it on its own).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..application import CarePath
from ..audit import utc_instant
from ..identity import Principal
from ..persistence.chain import GENESIS, chain_of, hash_of_row, mac_of_checkpoint
from ..persistence.tables import AuditCheckpoint, AuditVerification, Event
from ..persistence.unit_of_work import UnitOfWork
from .audit import require_audit_reader

STREAM_BATCH = 2000


class BrokenLink(Exception):
    pass


@dataclass(frozen=True)
class Anchor:
    """A checkpoint's number and MAC as copied outside the database (CAREPATH_AUDIT_ANCHOR_FILE)."""

    seq: int
    mac: str
    where: str  # e.g. "anchors.jsonl line 12"


@dataclass
class Unsigned:
    """The oldest event no checkpoint signs yet."""

    event_id: int
    chain: str
    seq: int
    at: datetime


@dataclass
class Verification:
    chains: int = 0
    events: int = 0
    checkpoints: int = 0  # checked with their key
    unchecked_checkpoints: int = 0  # signed with a key not configured, vouched for by a later full one
    anchors: int = 0
    unsigned_events: int = 0
    oldest_unsigned: Unsigned | None = None
    warnings: list[str] = field(default_factory=list)
    problem: str | None = None

    @property
    def intact(self) -> bool:
        return self.problem is None


def verify_history(app: CarePath, keys: dict[str, bytes], progress: Callable[[Verification], None] | None = None,
                   progress_every: int = 10_000, anchors: Sequence[Anchor] = (),
                   signed_before: datetime | None = None) -> Verification:
    """`keys`: the key ring by name (EngineConfig.audit_keyring). `anchors`: copies of checkpoints kept
    outside the database, each of which must still be in it, unchanged. `signed_before`: every event
    recorded before this time must be signed by a checkpoint (else the latest checkpoints were deleted, or
    none are being written)."""
    result = Verification()
    with app.db.read() as session:
        try:
            marks = _verify_checkpoints(session, keys, anchors, result)
            _verify_chains(session, marks, result, progress, progress_every, track_unsigned=bool(keys))
            _check_unsigned_age(result, signed_before)
        except BrokenLink as exc:
            result.problem = str(exc)
    return result


@dataclass(frozen=True)
class CheckedRange:
    """What a check read: the events after checkpoint `after` (0: every event) up to now, and checkpoint
    `up_to` the latest it found; `since_at` when the check that vouched for the rest ran."""

    after: int
    up_to: int
    full: bool
    since_at: datetime | None = None


def check_history(app: CarePath, principal: Principal, full: bool = False) -> tuple[Verification, CheckedRange]:
    """For an auditor who asks (the web app's verify page), with the configured key ring: every checkpoint's
    signature, and the events from the last checkpoint an earlier check found intact (all of them when
    `full`, when no key signs checkpoints, or when no check passed yet). A check that passes is kept
    (`audit_verifications`) so that the next one starts from its last checkpoint; `carepath audit verify`
    always checks everything."""
    require_audit_reader(principal, "Verifying the history")
    keys = app.config.audit_keyring()
    with app.db.read() as session:
        last = None if full or not keys else session.scalars(
            select(AuditVerification).order_by(AuditVerification.to_checkpoint.desc(), AuditVerification.id.desc())
            .limit(1)).first()
        top = session.scalar(select(func.max(AuditCheckpoint.seq))) or 0
    if last is None or last.to_checkpoint > top:  # checkpoints deleted since: the full check names it
        result, checked = verify_history(app, keys), CheckedRange(0, top, True)
    else:
        result, checked = verify_since(app, keys, last.to_checkpoint), CheckedRange(
            last.to_checkpoint, top, False, last.at)
    if result.intact and keys and top:
        with UnitOfWork(app) as uow:
            uow.session.add(AuditVerification(at=app.now(), actor=principal.name, full=checked.full,
                                              from_checkpoint=checked.after, to_checkpoint=top, events=result.events))
            uow.commit()
    return result, checked


def verify_since(app: CarePath, keys: dict[str, bytes], after: int) -> Verification:
    """Every checkpoint (their MACs are few and cheap), then only the events a check up to checkpoint
    `after` did not read: each chain that changed since is followed from the head checkpoints up to
    `after` signed for it (that event must still carry the signed hash), or from its first event."""
    result = Verification()
    with app.db.read() as session:
        try:
            marks = _verify_checkpoints(session, keys, (), result)
            base = _signed_heads(session, after)
            before = session.scalar(select(AuditCheckpoint.last_event_id).where(AuditCheckpoint.seq == after - 1))
            changed = session.scalars(select(Event.chain).where(Event.id > (before or 0)).distinct()
                                      .order_by(Event.chain)).all()
            for chain in changed:
                _verify_chain_from(session, chain, base.get(chain), marks, result)
        except BrokenLink as exc:
            result.problem = str(exc)
    return result


def _signed_heads(session: Session, up_to: int) -> dict[str, tuple[int, str, int]]:
    heads: dict[str, tuple[int, str, int]] = {}
    for checkpoint in session.scalars(select(AuditCheckpoint).where(AuditCheckpoint.seq <= up_to)
                                      .order_by(AuditCheckpoint.seq)):
        for chain, (seq, digest) in checkpoint.heads.items():
            if chain not in heads or heads[chain][0] <= seq:
                heads[chain] = (seq, digest, checkpoint.seq)
    return heads


def _verify_chain_from(session: Session, chain: str | None, base: tuple[int, str, int] | None,
                       marks: dict[str, tuple[int, str, int]], result: Verification) -> None:
    columns = (Event.id, Event.chain, Event.seq, Event.prev_hash, Event.hash, Event.instance_id, Event.task_id,
               Event.pathway_version_id, Event.type, Event.actor, Event.at, Event.data)
    if chain is None:
        found = session.scalar(select(Event.id).where(Event.chain.is_(None)).limit(1))
        raise BrokenLink(f"event {found}: it belongs to no chain (chain or seq is empty)")
    query = select(*columns).where(Event.chain == chain).order_by(Event.seq)
    seq, prev = 0, GENESIS
    if base is not None:
        rows = session.execute(query.where(Event.seq == base[0])).all()
        if len(rows) != 1 or rows[0].hash != base[1] or hash_of_row(rows[0]) != rows[0].hash:
            raise BrokenLink(f"chain {chain}: the event at seq {base[0]} that checkpoint {base[2]} signed is missing "
                             "or altered")
        seq, prev, query = base[0], base[1], query.where(Event.seq > base[0])
    result.chains += 1
    for row in _stream(session, query):
        _check_event(session, row, seq, prev, marks)
        _note_unsigned(row, marks, result)
        seq, prev = row.seq, row.hash
        result.events += 1
    _close_chain(chain, seq, marks)


def _verify_checkpoints(session: Session, keys: dict[str, bytes], anchors: Sequence[Anchor],
                        result: Verification) -> dict[str, tuple[int, str, int]]:
    """The signed heads, {chain: (seq, hash, checkpoint number)}, latest per chain."""
    if not keys:
        result.warnings.append("no audit key configured (CAREPATH_AUDIT_KEY): checkpoints' signatures were not "
                               "checked, so a chain rewritten consistently would go unnoticed")
    copies: dict[int, list[Anchor]] = {}
    for anchor in anchors:
        copies.setdefault(anchor.seq, []).append(anchor)
    marks: dict[str, tuple[int, str, int]] = {}
    prev_mac, number, unknown = "", 0, []
    query = select(AuditCheckpoint).order_by(AuditCheckpoint.seq).execution_options(yield_per=STREAM_BATCH)
    for checkpoint in session.scalars(query):
        number += 1
        where = f"checkpoint {checkpoint.seq} (id {checkpoint.id})"
        if checkpoint.seq != number:
            raise BrokenLink(f"{where}: expected checkpoint number {number} (checkpoints missing or inserted)")
        for anchor in copies.pop(checkpoint.seq, []):
            if anchor.mac != checkpoint.mac:
                raise BrokenLink(f"{where}: not the checkpoint copied to {anchor.where} (replaced)")
            result.anchors += 1
        if checkpoint.format == 1 and (checkpoint.key_id != "default" or checkpoint.full):
            raise BrokenLink(f"{where}: a format 1 checkpoint names key {checkpoint.key_id!r} or claims to be full "
                             "(altered: format 1 predates both)")
        key = keys.get(checkpoint.key_id)
        if key is None and keys:
            unknown.append(checkpoint)
        elif key is not None:
            if mac_of_checkpoint(key, checkpoint, prev_mac) != checkpoint.mac:
                raise BrokenLink(f"{where}: MAC does not match (the checkpoint or the one before was altered, or "
                                 f"key {checkpoint.key_id!r} is not the one it was signed with)")
            if unknown:
                _accept_unknown(unknown, checkpoint, result)
                unknown = []
            result.checkpoints += 1
            for chain, (seq, digest) in checkpoint.heads.items():
                if chain not in marks or marks[chain][0] <= seq:
                    marks[chain] = (seq, digest, checkpoint.seq)
        prev_mac = checkpoint.mac
    if copies:
        seq, (anchor, *_) = min(copies.items())
        raise BrokenLink(f"checkpoint {seq}: copied to {anchor.where}, but not in the database (deleted)")
    if unknown:
        result.unchecked_checkpoints = len(unknown)
        raise BrokenLink(f"{_run(unknown)}: signed with {_names(unknown)}, not configured (CAREPATH_AUDIT_KEY_ID / "
                         "CAREPATH_AUDIT_PREVIOUS_KEYS), and no full checkpoint with a configured key follows: "
                         "the latest checkpoints cannot be checked")
    if keys and result.checkpoints == 0:
        result.warnings.append("no checkpoints yet: a chain rewritten consistently would go unnoticed")
    return marks


def _accept_unknown(unknown: list[Any], checkpoint: Any, result: Verification) -> None:
    """Checkpoints signed with retired keys pass only before a full checkpoint (which signs every chain)."""
    if not checkpoint.full:
        raise BrokenLink(f"{_run(unknown)}: signed with {_names(unknown)}, not configured "
                         f"(CAREPATH_AUDIT_PREVIOUS_KEYS), and checkpoint {checkpoint.seq} after them is not a full "
                         "one: they cannot be checked")
    result.unchecked_checkpoints += len(unknown)
    result.warnings.append(f"{_run(unknown)} signed with {_names(unknown)}, not configured: not checked; full "
                           f"checkpoint {checkpoint.seq} (key {checkpoint.key_id!r}) vouches for every chain up to it")


def _run(checkpoints: list[Any]) -> str:
    first, last = checkpoints[0].seq, checkpoints[-1].seq
    return f"checkpoint {first}" if first == last else f"checkpoints {first} to {last}"


def _names(checkpoints: list[Any]) -> str:
    names = sorted({c.key_id for c in checkpoints})
    return ("key " if len(names) == 1 else "keys ") + ", ".join(repr(n) for n in names)


def _check_unsigned_age(result: Verification, signed_before: datetime | None) -> None:
    oldest = result.oldest_unsigned
    if signed_before is None or oldest is None or oldest.at >= signed_before:
        return
    raise BrokenLink(f"event {oldest.event_id} (chain {oldest.chain}, seq {oldest.seq}) was recorded at "
                     f"{utc_instant(oldest.at)} and no checkpoint signs it ({result.unsigned_events} such event(s)): "
                     "the checkpoints that signed it were deleted, or none are being written (is the scheduler "
                     "running with CAREPATH_AUDIT_KEY?)")


def _verify_chains(session: Session, marks: dict[str, tuple[int, str, int]], result: Verification,
                   progress: Callable[[Verification], None] | None, progress_every: int, *,
                   track_unsigned: bool) -> None:
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
        if track_unsigned:
            _note_unsigned(row, marks, result)
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


def _note_unsigned(row: Any, marks: dict[str, tuple[int, str, int]], result: Verification) -> None:
    mark = marks.get(row.chain)
    if mark is not None and row.seq <= mark[0]:
        return
    result.unsigned_events += 1
    oldest = result.oldest_unsigned
    if oldest is None or row.at < oldest.at:
        result.oldest_unsigned = Unsigned(row.id, row.chain, row.seq, row.at)


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


@dataclass(frozen=True)
class CheckpointSummary:
    """The latest checkpoint as an auditor reads it: which, when, signed with which key, up to which event."""

    seq: int
    at: datetime
    key_id: str
    full: bool
    last_event_id: int
    chains: int


def latest_checkpoint(app: CarePath) -> CheckpointSummary | None:
    with app.db.read() as session:
        row = session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.seq.desc()).limit(1)).first()
        if row is None:
            return None
        return CheckpointSummary(row.seq, row.at, row.key_id, row.full, row.last_event_id, len(row.heads or {}))
