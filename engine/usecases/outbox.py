"""The outbound delivery outbox: what CarePath sends to partner organizations' endpoints (docs/partners.md).

A change that must tell a partner (a referral sent, cancelled) calls `enqueue_delivery` inside its own unit of
work, so the delivery exists exactly when the change is committed. The scheduler's deliverer
(`deliver_outbound`, in `carepath serve` and `carepath worker`) then claims due rows in a short transaction,
POSTs each outside any transaction, and records the outcome in another: a 2xx delivers it; a network error,
timeout, 408, 429 or 5xx is tried again after an exponential backoff on the product's clock; another answer
(a 4xx, a redirect) or the last allowed attempt makes it dead, for an admin to read and retry. One row per
idempotency key, and one deliverer at a time holds it (SKIP LOCKED on PostgreSQL, a compare-and-set of the
attempt count everywhere), so each key is sent once; only a deliverer that dies mid-send before recording
lets another send it again after the lease, with the same Idempotency-Key for the receiver to drop.
Rules: DELIVERY_RULES in engine/rules.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from ..application import CarePath
from ..bounds import check_json
from ..errors import BadRequest, CarePathError, Conflict, NotFound
from ..identity import Principal
from ..model import DeliveryState
from ..partner_signing import SIGNATURE_HEADER, signature_header
from ..persistence.partner_tables import OutboundDelivery, PartnerOrganization
from ..persistence.unit_of_work import UnitOfWork
from ..rules import DELIVERY_RULES, advance, check_delivery_reader, check_role
from .partners import signing_secret

# Sends one delivery: (url, body, headers) -> the HTTP status code; raises on a network error or timeout.
OutboundPoster = Callable[[str, bytes, dict[str, str]], int]
DUE = (DeliveryState.PENDING.value, DeliveryState.FAILED.value)
# How long a claimed delivery is left to its deliverer before another may send it (one that died mid-send).
DELIVERY_LEASE = timedelta(minutes=5)
RETRIED_STATUSES = frozenset({408, 429})
MAX_PAGE = 200
WITHHELD = "withheld: "  # last_error of a delivery given up on purpose (withhold_deliveries): never retried


@dataclass(frozen=True)
class DeliveryView:
    id: int
    partner_id: str
    kind: str
    idempotency_key: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    last_status_code: int | None
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None
    payload: dict[str, Any] | None = None  # one delivery read alone; not in lists


@dataclass(frozen=True)
class Outgoing:
    id: int
    attempt: int
    url: str
    body: bytes
    headers: dict[str, str]


def enqueue_delivery(uow: UnitOfWork, *, partner_id: str, kind: str, payload: dict[str, Any],
                     idempotency_key: str) -> int:
    """Add a delivery to the caller's transaction (it is sent only if that commits); a key already enqueued
    answers that delivery's id and adds nothing."""
    check_json(uow.app, payload, "payload")
    if not (0 < len(idempotency_key) <= 200) or not (0 < len(kind) <= 60):
        raise BadRequest("an idempotency key is 1 to 200 characters and a kind 1 to 60")
    partner = uow.session.get(PartnerOrganization, partner_id)
    if partner is None:
        raise NotFound(f"there is no partner organization '{partner_id}'")
    if not partner.active or not partner.endpoint_url:
        why = "is inactive" if not partner.active else "has no endpoint"
        raise Conflict(f"partner organization '{partner_id}' {why}: nothing can be sent to it")
    existing = _by_key(uow, idempotency_key)
    if existing is not None:
        return existing
    now = uow.app.now()
    row = OutboundDelivery(partner_id=partner_id, kind=kind, payload=payload, idempotency_key=idempotency_key,
                           state=DeliveryState.PENDING.value, attempts=0, next_attempt_at=now, created_at=now,
                           updated_at=now)
    try:
        with uow.session.begin_nested():  # a concurrent transaction enqueued the same key: answer its row
            uow.session.add(row)
            uow.session.flush()
    except IntegrityError:
        found = _by_key(uow, idempotency_key)
        if found is None:
            raise
        return found
    uow.after_commit(lambda: uow.app.timers_scheduled([now]))  # wakes the scheduler's deliverer
    return row.id


def _by_key(uow: UnitOfWork, key: str) -> int | None:
    return uow.session.scalar(select(OutboundDelivery.id).where(OutboundDelivery.idempotency_key == key))


def deliver_outbound(app: CarePath, limit: int = 10) -> int:
    """Send up to `limit` due deliveries, one after another; returns how many were handled."""
    poster = app.outbound_poster
    if poster is None:
        return 0
    handled = 0
    while handled < limit:
        outgoing = _claim_next(app)
        if outgoing is None:
            break
        handled += 1
        if isinstance(outgoing, Outgoing):
            _send(app, poster, outgoing)
    return handled


def _claim_next(app: CarePath) -> Outgoing | bool | None:
    """Claim the next due delivery (a short transaction): its request to send, False when it was given up or
    another deliverer took it first, None when nothing is due."""
    with UnitOfWork(app) as uow:
        now = app.now()
        query = (select(OutboundDelivery)
                 .where(OutboundDelivery.state.in_(DUE), OutboundDelivery.next_attempt_at <= now)
                 .order_by(OutboundDelivery.next_attempt_at, OutboundDelivery.id).limit(1))
        if uow.session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        row = uow.session.scalars(query).first()
        if row is None:
            return None
        partner = uow.session.get(PartnerOrganization, row.partner_id)
        try:
            outgoing = _request(app, row, partner, now)
        except CarePathError as exc:
            _give_up(row, exc.message, now)
            uow.commit()
            return False
        # Compare-and-set on the attempt count: of two deliverers that read the same row, one claims it.
        claimed = uow.session.execute(update(OutboundDelivery).where(
            OutboundDelivery.id == row.id, OutboundDelivery.attempts == row.attempts,
            OutboundDelivery.state.in_(DUE)).values(attempts=row.attempts + 1, next_attempt_at=now + DELIVERY_LEASE,
                                                    updated_at=now).execution_options(synchronize_session=False))
        uow.commit()
        return outgoing if claimed.rowcount == 1 else False  # type: ignore[attr-defined]


def _request(app: CarePath, row: OutboundDelivery, partner: PartnerOrganization | None, now: datetime) -> Outgoing:
    if partner is None or not partner.active or not partner.endpoint_url:
        why = "is inactive" if partner is not None and not partner.active else "has no endpoint"
        raise Conflict(f"partner organization '{row.partner_id}' {why}")
    body = json.dumps(row.payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()
    fhir = isinstance(row.payload, dict) and "resourceType" in row.payload
    headers = {"Content-Type": "application/fhir+json" if fhir else "application/json",
               "Idempotency-Key": row.idempotency_key, "X-CarePath-Delivery": str(row.id),
               "X-CarePath-Kind": row.kind, SIGNATURE_HEADER: signature_header(signing_secret(app, partner), body, now)}
    return Outgoing(row.id, row.attempts + 1, partner.endpoint_url, body, headers)


def _send(app: CarePath, poster: OutboundPoster, outgoing: Outgoing) -> None:
    status, error = None, None
    try:
        status = poster(outgoing.url, outgoing.body, outgoing.headers)
    except Exception as exc:  # any failure to send is a failed attempt, retried
        error = f"{type(exc).__name__}: {exc}"[:2000]
    _record_outcome(app, outgoing, status, error)


def _record_outcome(app: CarePath, outgoing: Outgoing, status: int | None, error: str | None) -> None:
    with UnitOfWork(app) as uow:
        now = app.now()
        row = uow.session.get(OutboundDelivery, outgoing.id, with_for_update=True, populate_existing=True)
        if row is None or row.state not in DUE or row.attempts != outgoing.attempt:
            return  # the lease ran out and another deliverer took it over
        row.last_status_code, row.updated_at = status, now
        if status is not None and 200 <= status < 300:
            advance(row, DELIVERY_RULES, "deliver", f"delivery {row.id}")
            row.delivered_at, row.last_error = now, None
        elif status is not None and not _worth_retrying(status):
            _give_up(row, f"the endpoint answered {status}{_redirect_note(status)}", now)
        elif row.attempts >= app.config.outbound_max_attempts:
            _give_up(row, f"{error or f'the endpoint answered {status}'} (attempt {row.attempts}, the last allowed)",
                     now)
        else:
            advance(row, DELIVERY_RULES, "retry_later", f"delivery {row.id}")
            row.last_error = error or f"the endpoint answered {status}"
            row.next_attempt_at = now + backoff(app, row.attempts)
        uow.commit()


def _worth_retrying(status: int) -> bool:
    return status >= 500 or status in RETRIED_STATUSES


def _redirect_note(status: int) -> str:
    return " (redirects are not followed: correct the partner's endpoint)" if 300 <= status < 400 else ""


def _give_up(row: OutboundDelivery, reason: str, now: datetime) -> None:
    advance(row, DELIVERY_RULES, "give_up", f"delivery {row.id}")
    row.last_error, row.updated_at = reason[:2000], now


def withhold_deliveries(uow: UnitOfWork, key_prefix: str, reason: str) -> int:
    """The deliveries not sent yet whose idempotency key starts with `key_prefix` are given up (dead) in the
    caller's transaction, e.g. when the patient withdraws consent; an admin cannot retry them."""
    rows = uow.session.scalars(select(OutboundDelivery).where(
        OutboundDelivery.idempotency_key.startswith(key_prefix, autoescape=True),
        OutboundDelivery.state.in_(DUE)).with_for_update())
    withheld = 0
    for row in rows:
        _give_up(row, WITHHELD + reason, uow.app.now())
        withheld += 1
    return withheld


def backoff(app: CarePath, attempts: int) -> timedelta:
    """How long after its `attempts`-th failed attempt a delivery is tried again: doubling, capped."""
    return min(app.config.outbound_retry_base * (2 ** min(attempts - 1, 30)), app.config.outbound_retry_max)


def retry_delivery(app: CarePath, principal: Principal, delivery_id: int) -> DeliveryView:
    """A dead delivery back to pending (admins), its attempts counted again from zero; sent at once."""
    rule = DELIVERY_RULES["retry"]
    check_role(rule, principal)
    with UnitOfWork(app) as uow:
        row = uow.session.get(OutboundDelivery, delivery_id, with_for_update=True, populate_existing=True)
        if row is None:
            raise NotFound(f"outbound delivery {delivery_id} does not exist")
        if (row.last_error or "").startswith(WITHHELD):
            raise Conflict(f"outbound delivery {delivery_id} was withheld ({row.last_error}); it is not sent")
        advance(row, DELIVERY_RULES, "retry", f"outbound delivery {delivery_id}")
        now = app.now()
        uow.record(rule.event or "", principal.name, data={
            "delivery": row.id, "partner": row.partner_id, "kind": row.kind, "old": DeliveryState.DEAD.value,
            "new": row.state, "attempts": row.attempts, "last_error": row.last_error})
        row.attempts, row.next_attempt_at, row.updated_at = 0, now, now
        view = _view(row, with_payload=True)
        uow.commit()
    app.timers_scheduled([now])
    return view


def list_deliveries(app: CarePath, principal: Principal, *, status: str | None = None, partner_id: str | None = None,
                    offset: int = 0, limit: int = 50) -> tuple[list[DeliveryView], int]:
    """Deliveries, newest first (admins), optionally of one status (`dead`: what needs an admin) or partner."""
    check_delivery_reader(principal)
    query = select(OutboundDelivery)
    if status is not None:
        if status not in {s.value for s in DeliveryState}:
            raise BadRequest(f"status: '{status[:40]}' is not one of {', '.join(s.value for s in DeliveryState)}")
        query = query.where(OutboundDelivery.state == status)
    if partner_id is not None:
        query = query.where(OutboundDelivery.partner_id == partner_id)
    with app.db.read() as session:
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = session.scalars(query.order_by(OutboundDelivery.id.desc()).offset(offset).limit(min(limit, MAX_PAGE)))
        return [_view(row) for row in rows], total


def get_delivery(app: CarePath, principal: Principal, delivery_id: int) -> DeliveryView:
    check_delivery_reader(principal)
    with app.db.read() as session:
        row = session.get(OutboundDelivery, delivery_id)
        if row is None:
            raise NotFound(f"outbound delivery {delivery_id} does not exist")
        return _view(row, with_payload=True)


def delivery_counts(app: CarePath) -> dict[str, int]:
    """Deliveries by status (the /metrics gauge)."""
    with app.db.read() as session:
        rows = session.execute(select(OutboundDelivery.state, func.count()).group_by(OutboundDelivery.state)).all()
        counts: dict[str, int] = dict(rows)
    return {state.value: counts.get(state.value, 0) for state in DeliveryState}


def next_delivery_time(app: CarePath) -> datetime | None:
    with app.db.read() as session:
        return session.scalar(select(func.min(OutboundDelivery.next_attempt_at)).where(OutboundDelivery.state.in_(DUE)))


def _view(row: OutboundDelivery, *, with_payload: bool = False) -> DeliveryView:
    return DeliveryView(id=row.id, partner_id=row.partner_id, kind=row.kind, idempotency_key=row.idempotency_key,
                        status=row.state, attempts=row.attempts, next_attempt_at=row.next_attempt_at,
                        last_error=row.last_error, last_status_code=row.last_status_code, created_at=row.created_at,
                        updated_at=row.updated_at, delivered_at=row.delivered_at,
                        payload=dict(row.payload) if with_payload else None)
