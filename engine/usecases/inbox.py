"""The inbox: messages from outside (HL7 v2 ADT over MLLP, FHIR encounter notifications over HTTP), from
receipt to their outcome.

- `acknowledge`: a frame's message is checked (interop/hl7v2.inspect), mapped to the integration account
  its sender acts under, committed (`receive`), and only then answered AA; a resend (same sender and
  MSH-10) is answered AA again and stored once. What fails a check is answered AE or AR and not stored.
- `receive_fhir`: a FHIR notification (interop/fhir_inbound.py) posted by an integration account, checked
  and committed the same way (kind FHIR in message_type); the router reads each stored message by its kind.
- `process_inbox`: each received message in one transaction, in order per patient (a message waits while
  an earlier one of the same patient is unprocessed), exactly once across processes: the row is claimed
  with SELECT ... FOR UPDATE SKIP LOCKED on PostgreSQL and a conditional UPDATE (state still received)
  on SQLite. The `Router` decides the outcome; an exception is the outcome `failed`, recorded with the
  reason in a transaction of its own after the router's changes were rolled back.
- `reprocess` (admins): a failed message back to received, processed again at once when nothing earlier
  of its patient waits. `purge_raw_payloads`: the scheduler drops payloads past the retention period.
The rules (from which state to which, who may) are INBOX_RULES in engine/rules.py.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Executable, exists, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import aliased

from ..application import CarePath
from ..clock import Clock
from ..errors import Conflict, NotFound
from ..identity import Principal, Role
from ..interop import fhir_inbound, hl7v2
from ..model import InboxState
from ..persistence.tables import InboxMessage, User
from ..persistence.unit_of_work import UnitOfWork
from ..rules import INBOX_RULES, advance, check_role
from .adt_routing import FHIR_KIND, check_integration, route_inbox_message

log = logging.getLogger("carepath.inbox")
MAX_OUTCOME = 2000


@dataclass(frozen=True)
class RouteOutcome:
    state: InboxState  # started, delivered, nothing_to_do or failed
    text: str  # in words, shown to admins


# What processing does: given the transaction, the stored message (its raw payload, account, patient key)
# and the clock, act through the use cases and answer the outcome. It must not commit.
Router = Callable[[UnitOfWork, InboxMessage, Clock], RouteOutcome]

OUTCOME_ACTIONS = {InboxState.STARTED: "start", InboxState.DELIVERED: "deliver",
                   InboxState.NOTHING_TO_DO: "nothing_to_do", InboxState.FAILED: "fail"}


def stored_message(message: InboxMessage) -> hl7v2.Inspected:
    """The stored message parsed again; Conflict once its payload has been purged."""
    if message.raw is None:
        raise Conflict(f"inbox message {message.id}: its raw payload was dropped after the retention period")
    return hl7v2.parse_text(message.raw, message.charset)


def route_by_triggers(uow: UnitOfWork, message: InboxMessage, clock: Clock) -> RouteOutcome:
    """The router in place: the pathways' triggers (usecases/adt_routing.py), for HL7 v2 ADT and FHIR
    notifications alike, acting under the message's integration account."""
    outcome = route_inbox_message(uow, message, clock)
    return RouteOutcome(outcome.state, outcome.text)


# -- receiving ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Received:
    id: int
    duplicate: bool  # the same sender sent this MSH-10 before: stored then, not again


def receive(app: CarePath, inspected: hl7v2.Inspected, *, account: str, peer: str) -> Received:
    """Commit the message to the inbox (the acknowledgement waits for this)."""
    header = inspected.header
    return _store(app, sender=header.sender, control_id=header.control_id, account=account, peer=peer,
                  message_type=header.message_type, event=header.trigger_event, version=header.version,
                  patient_key=inspected.patient_key, charset=header.charset, raw=inspected.text)


FHIR_SENDER_PREFIX = "FHIR "  # a FHIR notification's sender: the integration account that posted it


def receive_fhir(app: CarePath, principal: Principal, payload: bytes, *, expected: str,
                 peer: str) -> Received | fhir_inbound.Ping:
    """A FHIR encounter notification (interop/fhir_inbound.py), checked and committed to the inbox for the
    same processing as ADT (the 202 waits for this); a resend (the same Bundle / MessageHeader id, or the
    same Encounter visit, status and period, from the same account) is stored once. A subscription
    handshake or heartbeat is answered (the Ping) and not stored. Only integration accounts send."""
    check_integration(principal)
    notice = fhir_inbound.read_inbound(fhir_inbound.read_document(payload), expected=expected)
    if isinstance(notice, fhir_inbound.Ping):
        return notice
    return _store(app, sender=FHIR_SENDER_PREFIX + principal.name, control_id=notice.control_id,
                  account=principal.name, peer=peer, message_type=FHIR_KIND, event=notice.event.trigger,
                  version=fhir_inbound.FHIR_VERSION, patient_key=notice.patient_key, charset="UTF-8",
                  raw=payload.decode("utf-8"))


def _store(app: CarePath, *, sender: str, control_id: str, account: str, peer: str, message_type: str, event: str,
           version: str, patient_key: str | None, charset: str, raw: str) -> Received:
    """One statement, its own transaction: stored unless (sender, control id) is there already (a resend, or
    the same message twice at once). Only a resend takes a second statement, to answer the stored id. (No
    NOTIFY here: PostgreSQL serializes the commits of notifying transactions, flushes included.)"""
    values = {"sender": sender[:200], "control_id": control_id[:199], "account": account, "peer": peer[:100],
              "received_at": app.now(), "message_type": message_type[:10], "event": event[:10],
              "version": version[:20], "patient_key": patient_key, "charset": charset[:40], "raw": raw,
              "state": INBOX_RULES["receive"].to[0].value, "attempts": 0}
    for attempt in (1, 2):
        try:
            with app.db.single_statement() as connection:
                stored = connection.scalar(_insert_unless_stored(connection.dialect.name, values))
                if stored is not None:
                    return Received(int(stored), False)
                found = connection.scalar(select(InboxMessage.id).where(
                    InboxMessage.sender == values["sender"], InboxMessage.control_id == values["control_id"]))
            if found is None:  # stored by another connection whose transaction has not committed yet
                raise Conflict("the same message is being stored by another connection")
            return Received(int(found), True)
        except DBAPIError as exc:
            if attempt == 2 or not exc.connection_invalidated:  # a dropped connection is tried again once
                raise
    raise AssertionError("unreachable")


def _insert_unless_stored(dialect: str, values: dict[str, Any]) -> Executable:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(InboxMessage).values(values).on_conflict_do_nothing(
        index_elements=[InboxMessage.sender, InboxMessage.control_id]).returning(InboxMessage.id)


@dataclass(frozen=True)
class Answer:
    """What to send back for one frame (None: the sender asked for no acknowledgement of this kind)."""

    ack: bytes | None
    code: hl7v2.AckCode
    stored: Received | None = None


AccountFor = Callable[[hl7v2.MshHeader], str | None]


def acknowledge(app: CarePath, payload: bytes, *, peer: str, account_for: AccountFor,
                policy: hl7v2.Policy | None = None) -> Answer:
    """One frame's message, checked, stored and answered. Never raises for anything the sender sent."""
    stored, header = None, None
    try:
        inspected = hl7v2.inspect(payload, policy)
        header = inspected.header
        account = account_for(inspected.header)
        if account is None:
            raise hl7v2.Unacceptable(hl7v2.AckCode.REJECT, f"sender {inspected.header.sender} (MSH-3^MSH-4) is not "
                                     "mapped to an integration account (CAREPATH_MLLP_SENDERS)", "207", "MSH-3",
                                     inspected.header, inspected.header.charset)
        try:
            stored = receive(app, inspected, account=account, peer=peer)
        except (SQLAlchemyError, Conflict):
            log.exception("storing an inbox message failed")
            raise hl7v2.Unacceptable(hl7v2.AckCode.REJECT, "the inbox could not store the message; send it again "
                                     "later", "207", "", inspected.header, inspected.header.charset) from None
        code, reason, error_code, location = hl7v2.AckCode.ACCEPT, "", "", ""
    except hl7v2.Unacceptable as refused:
        header, code = refused.header, refused.code
        reason, error_code, location = refused.reason, refused.error_code, refused.location
    if not hl7v2.ack_wanted(code, header):
        return Answer(None, code, stored)
    text = hl7v2.build_ack(header, code, now=app.now(), control_id=uuid.uuid4().hex[:20], reason=reason,
                           error_code=error_code, location=location)
    return Answer(hl7v2.encode_ack(text, header), code, stored)


def ensure_integration_account(app: CarePath, name: str, *, create: bool) -> None:
    """An account senders act under: the built-in one is created if missing; a configured one must exist
    with the role integration (a clear error at start-up otherwise)."""
    from .users import create_user

    with app.db.read() as session:
        role = session.scalar(select(User.role).where(User.name == name, User.active.is_(True)))
    if role is None and create:
        create_user(app, name, Role.INTEGRATION.value, actor="system")
        return
    if role != Role.INTEGRATION.value:
        found = "does not exist or is deactivated" if role is None else f"has the role {role}"
        raise Conflict(f"MLLP senders act under integration accounts: user '{name}' {found} (create it with "
                       f"`carepath user add {name} --role integration`)")


# -- processing ---------------------------------------------------------------------------------

def process_inbox(app: CarePath, router: Router | None = None, limit: int = 100) -> int:
    """Process up to `limit` received messages; returns how many were processed."""
    chosen = router or app.inbox_router or route_by_triggers
    done = 0
    while done < limit and _process_next(app, chosen) is not None:
        done += 1
    return done


def _process_next(app: CarePath, router: Router, only: int | None = None) -> InboxState | None:
    with UnitOfWork(app) as uow:
        row = _claim(uow, only)
        if row is None:
            return None
        claimed = row.id
        try:
            outcome = router(uow, row, app.clock)
        except Exception as exc:  # leaving the block rolls back whatever the router changed
            log.warning("inbox message %s failed: %s", claimed, exc)
            failure = RouteOutcome(InboxState.FAILED, f"processing failed: {exc}" if str(exc)
                                   else f"processing failed: {type(exc).__name__}")
        else:
            return _settle(uow, row, outcome)
    with UnitOfWork(app) as uow:  # the failure, in a transaction of its own
        row = _claim(uow, claimed)
        return None if row is None else _settle(uow, row, failure)


def _settle(uow: UnitOfWork, row: InboxMessage, outcome: RouteOutcome) -> InboxState:
    advance(row, INBOX_RULES, OUTCOME_ACTIONS[outcome.state], f"inbox message {row.id}")
    row.outcome, row.processed_at = outcome.text[:MAX_OUTCOME], uow.app.now()
    uow.commit()
    return InboxState(row.state)


def _claim(uow: UnitOfWork, only: int | None) -> InboxMessage | None:
    """The first received message no earlier message of its patient waits before, taken so that two
    processes never both process it: locked with FOR UPDATE SKIP LOCKED on PostgreSQL (another process
    skips it, and sees it processed once this transaction commits); on SQLite, whose writers take turns,
    by a conditional UPDATE that only succeeds while it is still received."""
    earlier = aliased(InboxMessage)
    waits = exists().where(earlier.patient_key == InboxMessage.patient_key, earlier.id < InboxMessage.id,
                           earlier.state == InboxState.RECEIVED.value)
    where = [InboxMessage.state == InboxState.RECEIVED.value, ~waits]
    if only is not None:
        where.append(InboxMessage.id == only)
    if uow.session.get_bind().dialect.name == "postgresql":
        row = uow.session.scalar(select(InboxMessage).where(*where).order_by(InboxMessage.id).limit(1)
                                 .with_for_update(skip_locked=True, of=InboxMessage))
        if row is not None:
            row.attempts += 1
        return row
    found = uow.session.scalar(select(InboxMessage.id).where(*where).order_by(InboxMessage.id).limit(1))
    if found is None:
        return None
    taken = uow.session.execute(update(InboxMessage).where(
        InboxMessage.id == found, InboxMessage.state == InboxState.RECEIVED.value)
        .values(attempts=InboxMessage.attempts + 1).execution_options(synchronize_session=False))
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        return None
    return uow.session.get(InboxMessage, found, populate_existing=True)


def reprocess(app: CarePath, principal: Principal, message_id: int, router: Router | None = None) -> InboxState:
    """A failed message back to received (admins), then processed at once unless an earlier message of the
    same patient waits (the sweep takes it then). Answers its state afterwards."""
    rule = INBOX_RULES["reprocess"]
    check_role(rule, principal)
    with UnitOfWork(app) as uow:
        row = uow.session.get(InboxMessage, message_id, with_for_update=True)
        if row is None:
            raise NotFound(f"inbox message {message_id} does not exist")
        previous = row.outcome
        advance(row, INBOX_RULES, "reprocess", f"inbox message {message_id}")
        if row.raw is None:
            raise Conflict(f"inbox message {message_id}: its raw payload was dropped after the retention period; "
                           "ask the sender to send it again")
        row.outcome, row.processed_at = None, None
        uow.record(rule.event or "", principal.name, data={
            "inbox_message": message_id, "sender": row.sender, "control_id": row.control_id,
            "old": InboxState.FAILED.value, "new": row.state, "previous_outcome": previous})
        uow.commit()
    processed = _process_next(app, router or app.inbox_router or route_by_triggers, only=message_id)
    return processed or InboxState.RECEIVED


def purge_raw_payloads(app: CarePath) -> int:
    """Drop the raw payloads (PHI) received before the retention period, keeping the metadata; a message
    still waiting to be processed keeps its payload. Returns how many were dropped."""
    now: datetime = app.now()
    with UnitOfWork(app) as uow:
        result = uow.session.execute(update(InboxMessage).where(
            InboxMessage.raw.is_not(None), InboxMessage.state != InboxState.RECEIVED.value,
            InboxMessage.received_at < now - app.config.inbox_retention).values(raw=None, purged_at=now)
            .execution_options(synchronize_session=False))
        uow.commit()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


__all__ = ["Answer", "Received", "RouteOutcome", "Router", "acknowledge", "ensure_integration_account",
           "process_inbox", "purge_raw_payloads", "receive", "receive_fhir", "reprocess", "route_by_triggers",
           "stored_message"]
