"""Signed checkpoints over the history chains: the heads of every chain that changed since the checkpoint
before, MAC'd with a key kept outside the database and chained to the previous checkpoint's MAC. Someone
who can write to the database but has no key can rewrite a chain consistently, yet not the checkpoint
that signed its head."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from ..application import CarePath
from ..audit import utc_instant
from ..persistence.chain import CHECKPOINT_FORMAT, checkpoint_mac
from ..persistence.tables import AuditCheckpoint, Event
from ..persistence.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckpointAnchor:
    """What is copied outside the database for each checkpoint written (`carepath audit verify --anchors`):
    enough to notice a checkpoint deleted or replaced, nothing about patients."""

    seq: int
    at: str
    key_id: str
    full: bool
    last_event_id: int
    chains: int
    mac: str

    def as_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def write_checkpoint(app: CarePath, key: bytes | None = None, *, key_id: str | None = None,
                     full: bool = False) -> AuditCheckpoint | None:
    """Sign the heads of the chains changed since the last checkpoint with `key` (default: the configured
    signing key, named `key_id`); None when nothing changed, there is no key, or another process wrote the
    same checkpoint first. A full checkpoint signs the head of every chain: the first one, the first one
    signed with a new key (key rotation; written even when nothing changed, so that the history verifies
    with the new key alone once the old one is retired), or when asked."""
    if key is None:
        key, key_id = app.config.audit_key, app.config.audit_key_id
    key_id = key_id or app.config.audit_key_id
    if not key:
        return None
    try:
        with UnitOfWork(app) as uow:
            session = uow.session
            recent = session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.seq.desc()).limit(2)).all()
            last_event_id = session.scalar(select(func.max(Event.id))) or 0
            rotation = _rotation(session, recent, key_id)
            if rotation == "replaced":
                log.warning("audit key %r was replaced by %r: this process no longer signs checkpoints (restart it "
                            "with the new key)", key_id, recent[0].key_id)
                return None
            full = full or not recent or rotation == "full"
            # From the checkpoint before the last: a transaction still open when the last one was taken may
            # have committed rows with smaller ids since.
            since = 0 if full else recent[-1].last_event_id if len(recent) == 2 else 0
            heads = _changed_heads(session, since)
            if not full and _all_signed(heads, recent):
                return None  # nothing new (a late commit below the last id is new too, and signed)
            seq, prev_mac = (recent[0].seq + 1, recent[0].mac) if recent else (1, "")
            at = app.now()
            mac = checkpoint_mac(key, seq=seq, at=at, last_event_id=last_event_id, heads=heads, prev_mac=prev_mac,
                                 format=CHECKPOINT_FORMAT, key_id=key_id, full=full)
            checkpoint = AuditCheckpoint(seq=seq, at=at, last_event_id=last_event_id, heads=heads, mac=mac,
                                         key_id=key_id, full=full, format=CHECKPOINT_FORMAT)
            session.add(checkpoint)
            uow.commit()
    except IntegrityError:  # another worker's sweep took this checkpoint number: it signed the same heads
        log.info("another process wrote the audit checkpoint at the same time")
        return None
    anchor = CheckpointAnchor(seq=seq, at=utc_instant(at), key_id=key_id, full=full, last_event_id=last_event_id,
                              chains=len(heads), mac=mac)
    log.info("audit checkpoint %s signed with key %s%s: %s chain head(s) up to event %s, mac %s", seq, key_id,
             " (full)" if full else "", len(heads), last_event_id, mac)
    for sink in app.anchor_sinks:
        try:
            sink(anchor)
        except Exception:  # the checkpoint is committed; a lost copy is reported, not raised
            log.exception("copying audit checkpoint %s outside the database failed", seq)
    return checkpoint


def _rotation(session: Any, recent: Any, key_id: str) -> str | None:
    """None: the last checkpoint is this key's (or there is none). "full": this key has never signed (a
    rotation: the first checkpoint of a key signs every chain), or an older key signed after it (a
    process not yet restarted during a rolling restart: signing every chain again keeps the history
    verifiable with the new key alone). "replaced": a newer key has signed since this one first did."""
    if not recent or recent[0].key_id == key_id:
        return None
    first = dict(session.execute(select(AuditCheckpoint.key_id, func.min(AuditCheckpoint.seq))
                                 .where(AuditCheckpoint.key_id.in_([key_id, recent[0].key_id]))
                                 .group_by(AuditCheckpoint.key_id)).all())
    mine = first.get(key_id)
    if mine is None or first[recent[0].key_id] < mine:
        return "full"
    return "replaced"


def _all_signed(heads: dict[str, list[Any]], recent: Any) -> bool:
    """Every head is the one the last checkpoints signed for its chain."""
    signed: dict[str, Any] = {}
    for checkpoint in reversed(recent):
        signed.update(checkpoint.heads)
    return all(signed.get(chain) == head for chain, head in heads.items())


def _changed_heads(session: Any, since: int) -> dict[str, list[Any]]:
    last = (select(Event.chain, func.max(Event.seq).label("seq")).where(Event.id > since)
            .group_by(Event.chain).subquery())
    rows = session.execute(select(Event.chain, Event.seq, Event.hash)
                           .join(last, (Event.chain == last.c.chain) & (Event.seq == last.c.seq)))
    return {chain: [seq, digest] for chain, seq, digest in rows}
