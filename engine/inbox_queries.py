"""Reading the inbox (admins only): a page of messages by state, newest first, and one message.

The raw payload carries PHI: it is answered only for one message, only to admins, and only while it is
kept (usecases/inbox.purge_raw_payloads drops it after the retention period).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select

from .application import CarePath
from .errors import NotFound, ValidationFailed
from .identity import Principal, require_role
from .model import InboxState
from .persistence.tables import InboxMessage

MAX_PAGE = 200


@dataclass(frozen=True)
class InboxMessageView:
    id: int
    sender: str
    control_id: str
    account: str
    peer: str
    received_at: datetime
    message_type: str
    event: str
    version: str
    patient_key: str | None
    state: str
    outcome: str | None
    attempts: int
    processed_at: datetime | None
    purged_at: datetime | None
    raw: str | None = None  # only in `get_inbox_message`


@dataclass(frozen=True)
class InboxPage:
    items: list[InboxMessageView]
    total: int
    offset: int
    limit: int


def may_read_inbox(principal: Principal) -> None:
    """Admins alone read the inbox (it carries PHI from every sender); PermissionDenied for anyone else."""
    require_role(principal, action="Reading the inbox")


def _view(row: InboxMessage, *, raw: bool = False) -> InboxMessageView:
    return InboxMessageView(id=row.id, sender=row.sender, control_id=row.control_id, account=row.account,
                            peer=row.peer, received_at=row.received_at, message_type=row.message_type,
                            event=row.event, version=row.version, patient_key=row.patient_key, state=row.state,
                            outcome=row.outcome, attempts=row.attempts, processed_at=row.processed_at,
                            purged_at=row.purged_at, raw=row.raw if raw else None)


def inbox_state(value: str | None) -> InboxState | None:
    if value is None or value == "":
        return None
    try:
        return InboxState(value)
    except ValueError:
        raise ValidationFailed(f"state '{value[:40]}' is not an inbox state: use one of "
                               f"{', '.join(s.value for s in InboxState)}") from None


def list_inbox(app: CarePath, principal: Principal, *, state: InboxState | None = None, offset: int = 0,
               limit: int = 50) -> InboxPage:
    may_read_inbox(principal)
    if not 1 <= limit <= MAX_PAGE or offset < 0:
        raise ValidationFailed(f"limit must be 1 to {MAX_PAGE} and offset 0 or more")
    where = [InboxMessage.state == state.value] if state is not None else []
    with app.db.read() as session:
        total = session.scalar(select(func.count()).select_from(InboxMessage).where(*where)) or 0
        rows = session.scalars(select(InboxMessage).where(*where).order_by(InboxMessage.id.desc())
                               .offset(offset).limit(limit)).all()
        return InboxPage([_view(row) for row in rows], total, offset, limit)


RATE_WINDOW = timedelta(minutes=1)


@dataclass(frozen=True)
class InboxBacklog:
    waiting: int  # received, not processed yet
    failed: int  # the dead-letter list
    oldest_waiting: datetime | None  # when the oldest waiting message was received
    received_last_minute: int = 0  # stored (and acknowledged) in the last RATE_WINDOW
    processed_last_minute: dict[str, int] = field(default_factory=dict)  # by outcome, in the last RATE_WINDOW


def inbox_backlog(app: CarePath) -> InboxBacklog:
    """For the metrics: what waits, what failed, since when the oldest has waited, and how many messages were
    received and processed (by outcome) in the last minute, whichever process processed them: the routing
    rate beside the acknowledgement rate (no PHI, no user)."""
    waiting_states = (InboxState.RECEIVED.value, InboxState.FAILED.value)
    since = app.now() - RATE_WINDOW
    with app.db.read() as session:
        counts = dict(session.execute(select(InboxMessage.state, func.count()).where(
            InboxMessage.state.in_(waiting_states)).group_by(InboxMessage.state)).all())
        oldest = session.scalar(select(func.min(InboxMessage.received_at)).where(
            InboxMessage.state == InboxState.RECEIVED.value))
        received = session.scalar(select(func.count()).select_from(InboxMessage).where(
            InboxMessage.received_at >= since)) or 0
        processed = dict(session.execute(select(InboxMessage.state, func.count()).where(
            InboxMessage.processed_at >= since).group_by(InboxMessage.state)).all())
    return InboxBacklog(counts.get(InboxState.RECEIVED.value, 0), counts.get(InboxState.FAILED.value, 0), oldest,
                        received, {str(state): int(n) for state, n in processed.items()})


def get_inbox_message(app: CarePath, principal: Principal, message_id: int) -> InboxMessageView:
    may_read_inbox(principal)
    with app.db.read() as session:
        row = session.get(InboxMessage, message_id)
        if row is None:
            raise NotFound(f"inbox message {message_id} does not exist")
        return _view(row, raw=True)


__all__ = ["RATE_WINDOW", "InboxBacklog", "InboxMessageView", "InboxPage", "get_inbox_message", "inbox_backlog",
           "inbox_state", "list_inbox", "may_read_inbox"]
