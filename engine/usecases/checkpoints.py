"""Signed checkpoints over the history chains: the heads of every chain that changed since the checkpoint
before, MAC'd with a key kept outside the database and chained to the previous checkpoint's MAC. Someone
who can write to the database but has no key can rewrite a chain consistently, yet not the checkpoint
that signed its head."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from ..application import CarePath
from ..persistence.chain import checkpoint_mac
from ..persistence.tables import AuditCheckpoint, Event
from ..persistence.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)


def write_checkpoint(app: CarePath, key: bytes | None = None) -> AuditCheckpoint | None:
    """Sign the heads of the chains changed since the last checkpoint with `key` (default: the configured
    one); None when nothing changed, there is no key, or another process wrote the same checkpoint first."""
    key = key or app.config.audit_key
    if not key:
        return None
    try:
        with UnitOfWork(app) as uow:
            session = uow.session
            recent = session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.seq.desc()).limit(2)).all()
            last_event_id = session.scalar(select(func.max(Event.id))) or 0
            if recent and last_event_id <= recent[0].last_event_id:
                return None
            # From the checkpoint before the last: a transaction still open when the last one was taken may
            # have committed rows with smaller ids since.
            since = recent[-1].last_event_id if len(recent) == 2 else 0
            heads = _changed_heads(session, since)
            seq, prev_mac = (recent[0].seq + 1, recent[0].mac) if recent else (1, "")
            at = app.now()
            mac = checkpoint_mac(key, seq=seq, at=at, last_event_id=last_event_id, heads=heads, prev_mac=prev_mac)
            checkpoint = AuditCheckpoint(seq=seq, at=at, last_event_id=last_event_id, heads=heads, mac=mac)
            session.add(checkpoint)
            uow.commit()
            return checkpoint
    except IntegrityError:  # another worker's sweep took this checkpoint number: it signed the same heads
        log.info("another process wrote the audit checkpoint at the same time")
        return None


def _changed_heads(session: Any, since: int) -> dict[str, list[Any]]:
    last = (select(Event.chain, func.max(Event.seq).label("seq")).where(Event.id > since)
            .group_by(Event.chain).subquery())
    rows = session.execute(select(Event.chain, Event.seq, Event.hash)
                           .join(last, (Event.chain == last.c.chain) & (Event.seq == last.c.seq)))
    return {chain: [seq, digest] for chain, seq, digest in rows}
