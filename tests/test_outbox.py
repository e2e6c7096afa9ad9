"""Outbound deliveries to partner organizations, against a real local HTTP endpoint: signed, with an
idempotency key, retried on the product's clock, dead when refused or after the last attempt, never sent for
a change that rolled back, and sent once even by two deliverers."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select

from carepath.api.outbound_http import HttpPoster
from carepath.engine.application import CarePath, EngineConfig
from carepath.engine.clock import ManualClock
from carepath.engine.errors import Conflict
from carepath.engine.identity import SYSTEM
from carepath.engine.persistence.database import Database
from carepath.engine.persistence.partner_tables import OutboundDelivery
from carepath.engine.persistence.unit_of_work import UnitOfWork
from carepath.engine.usecases.outbox import deliver_outbound, enqueue_delivery
from carepath.engine.usecases.partners import add_partner, deactivate_partner, rotate_secret
from tests.support.api import ApiClient
from tests.support.partner_endpoint import Endpoint, partner_endpoint
from tests.support.together import run_until_idle_together

KEY = b"outbox-test-key-of-at-least-32-bytes"
REFERRAL = {"resourceType": "Task", "status": "requested", "intent": "order", "owner": {"display": "Eastside"}}


def _configure(app: CarePath, **config: object) -> None:
    app.config = replace(app.config, partner_secret_key=KEY, partner_allow_http_loopback=True,
                         outbound_max_attempts=3, **config)  # type: ignore[arg-type]
    app.outbound_poster = HttpPoster(timeout_s=5)


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    with partner_endpoint() as running:
        yield running


@pytest.fixture
def secret(engine: CarePath, endpoint: Endpoint) -> str:
    _configure(engine)
    return add_partner(engine, SYSTEM, "eastside", "Eastside Food Bank", endpoint_url=endpoint.url).secret


def _enqueue(app: CarePath, key: str = "referral-1/sent", payload: dict[str, object] | None = None) -> int:
    with UnitOfWork(app) as uow:
        delivery = enqueue_delivery(uow, partner_id="eastside", kind="referral", payload=payload or REFERRAL,
                                    idempotency_key=key)
        uow.commit()
    return delivery


def _row(app: CarePath, delivery_id: int) -> OutboundDelivery:
    with app.db.read() as session:
        row = session.get(OutboundDelivery, delivery_id)
        assert row is not None
        return row


def verify(secret: str, body: bytes, header: str, now: float, tolerance: int = 300) -> bool:
    """The receiver's check, as docs/partners.md shows it."""
    parts = dict(item.split("=", 1) for item in header.split(","))
    signed = parts["t"].encode() + b"." + body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return abs(now - int(parts["t"])) <= tolerance and hmac.compare_digest(expected, parts["v1"])


def test_a_delivery_is_signed_and_carries_its_idempotency_key(engine: CarePath, clock: ManualClock,
                                                              endpoint: Endpoint, secret: str) -> None:
    delivery = _enqueue(engine)
    assert deliver_outbound(engine) == 1
    [got] = endpoint.received
    assert got.path == "/fhir/referrals" and json.loads(got.body) == REFERRAL
    assert got.headers["Idempotency-Key"] == "referral-1/sent"
    assert got.headers["Content-Type"] == "application/fhir+json"
    assert verify(secret, got.body, got.headers["X-CarePath-Signature"], clock().timestamp())
    assert not verify(secret, got.body + b" ", got.headers["X-CarePath-Signature"], clock().timestamp())
    assert not verify(secret, got.body, got.headers["X-CarePath-Signature"], clock().timestamp() + 3600)
    row = _row(engine, delivery)
    assert (row.state, row.attempts, row.delivered_at, row.last_status_code) == ("delivered", 1, clock(), 200)
    assert deliver_outbound(engine) == 0 and len(endpoint.received) == 1


def test_a_rotated_secret_signs_from_then_on(engine: CarePath, clock: ManualClock, endpoint: Endpoint,
                                            secret: str) -> None:
    _enqueue(engine, payload={"kind": "plain json"})
    new_secret = rotate_secret(engine, SYSTEM, "eastside").secret
    deliver_outbound(engine)
    [got] = endpoint.received
    assert got.headers["Content-Type"] == "application/json"
    assert verify(new_secret, got.body, got.headers["X-CarePath-Signature"], clock().timestamp())
    assert not verify(secret, got.body, got.headers["X-CarePath-Signature"], clock().timestamp())


def test_nothing_is_sent_when_the_enqueuing_transaction_rolls_back(engine: CarePath, endpoint: Endpoint,
                                                                    secret: str) -> None:
    with pytest.raises(RuntimeError), UnitOfWork(engine) as uow:
        enqueue_delivery(uow, partner_id="eastside", kind="referral", payload=REFERRAL, idempotency_key="k")
        raise RuntimeError("the state change failed after enqueuing")
    assert deliver_outbound(engine) == 0 and endpoint.received == []
    with engine.db.read() as session:
        assert session.scalars(select(OutboundDelivery)).all() == []


def test_the_same_idempotency_key_is_one_delivery(engine: CarePath, endpoint: Endpoint, secret: str) -> None:
    assert _enqueue(engine, "same") == _enqueue(engine, "same")
    deliver_outbound(engine)
    assert len(endpoint.received) == 1


def test_failures_are_retried_after_a_backoff_on_the_products_clock(engine: CarePath, clock: ManualClock,
                                                                     endpoint: Endpoint, secret: str) -> None:
    endpoint.answers = [503, 429]
    delivery = _enqueue(engine)
    deliver_outbound(engine)
    row = _row(engine, delivery)
    assert (row.state, row.attempts, row.next_attempt_at) == ("failed", 1, clock() + timedelta(seconds=30))
    assert "503" in (row.last_error or "")
    clock.advance(seconds=29)
    assert deliver_outbound(engine) == 0 and len(endpoint.received) == 1  # not due yet: nobody sleeps
    clock.advance(seconds=1)
    deliver_outbound(engine)
    row = _row(engine, delivery)
    assert (row.state, row.attempts, row.next_attempt_at) == ("failed", 2, clock() + timedelta(seconds=60))
    clock.advance(seconds=60)
    deliver_outbound(engine)
    assert _row(engine, delivery).state == "delivered" and len(endpoint.received) == 3
    assert len({r.headers["Idempotency-Key"] for r in endpoint.received}) == 1


def test_dead_after_the_last_attempt_then_retried_by_an_admin(api: ApiClient, clock: ManualClock,
                                                               endpoint: Endpoint, secret: str) -> None:
    endpoint.answers = [500, 502, 504]
    delivery = _enqueue(api.engine)
    for _ in range(3):
        deliver_outbound(api.engine)
        clock.advance(hours=1)
    row = _row(api.engine, delivery)
    assert (row.state, row.attempts) == ("dead", 3) and "the last allowed" in (row.last_error or "")
    assert deliver_outbound(api.engine) == 0 and len(endpoint.received) == 3
    admin = api.user("admin")
    dead = api.get("/api/outbound-deliveries?status=dead", admin).json()
    assert dead["total"] == 1 and dead["items"][0]["id"] == delivery and "payload" not in dead["items"][0]
    assert api.get("/api/outbound-deliveries", api.user("coordinator")).status_code == 403
    assert api.get("/api/outbound-deliveries?status=lost", admin).status_code == 400
    assert 'carepath_outbound_deliveries{status="dead"} 1.0' in api.client.get("/metrics").text
    assert api.post(f"/api/outbound-deliveries/{delivery}/retry", api.user("supervisor")).status_code == 403
    retried = api.post(f"/api/outbound-deliveries/{delivery}/retry", admin)
    assert retried.status_code == 200 and retried.json()["status"] == "pending" and retried.json()["attempts"] == 0
    assert retried.json()["payload"] == REFERRAL
    assert api.post(f"/api/outbound-deliveries/{delivery}/retry", admin).status_code == 409  # not dead now
    deliver_outbound(api.engine)
    assert _row(api.engine, delivery).state == "delivered" and len(endpoint.received) == 4


@pytest.mark.parametrize("status", [400, 401, 404, 410, 422, 302])
def test_a_refusal_or_a_redirect_fails_at_once(engine: CarePath, endpoint: Endpoint, secret: str,
                                               status: int) -> None:
    endpoint.answers = [status]
    delivery = _enqueue(engine)
    deliver_outbound(engine)
    row = _row(engine, delivery)
    assert (row.state, row.attempts, row.last_status_code) == ("dead", 1, status)
    assert len(endpoint.received) == 1  # a redirect is not followed


def test_an_unreachable_endpoint_is_retried_naming_only_its_host(engine: CarePath, endpoint: Endpoint,
                                                                 secret: str) -> None:
    with partner_endpoint() as closed:
        url = closed.url.replace("/fhir/referrals", "/path?token=abc")
    from carepath.engine.usecases.partners import update_partner
    update_partner(engine, SYSTEM, "eastside", {"endpoint_url": url})
    delivery = _enqueue(engine)
    deliver_outbound(engine)
    row = _row(engine, delivery)
    assert row.state == "failed" and "http://127.0.0.1" in (row.last_error or "") and "token" not in (row.last_error
                                                                                                      or "")


def test_a_deactivated_partner_is_sent_nothing(engine: CarePath, endpoint: Endpoint, secret: str) -> None:
    delivery = _enqueue(engine)
    deactivate_partner(engine, SYSTEM, "eastside")
    deliver_outbound(engine)
    assert endpoint.received == [] and _row(engine, delivery).state == "dead"
    assert "inactive" in (_row(engine, delivery).last_error or "")
    with pytest.raises(Conflict), UnitOfWork(engine) as uow:
        enqueue_delivery(uow, partner_id="eastside", kind="referral", payload=REFERRAL, idempotency_key="later")


@pytest.mark.postgres_only
def test_two_deliverers_send_each_delivery_once(engine: CarePath, database_url: str, clock: ManualClock,
                                                endpoint: Endpoint, secret: str) -> None:
    keys = [f"referral-{n}" for n in range(30)]
    for key in keys:
        _enqueue(engine, key)
    deliverers = []
    for _ in range(2):
        other = CarePath(Database(database_url), clock, EngineConfig())
        _configure(other)
        deliverers.append(other)
    run_until_idle_together(deliverers, lambda app: deliver_outbound(app, limit=5))
    sent = Counter(r.headers["Idempotency-Key"] for r in endpoint.received)
    assert sorted(sent) == sorted(keys) and set(sent.values()) == {1}
    for app in deliverers:
        app.db.dispose()


def test_the_scheduler_sends_what_a_commit_enqueued(engine: CarePath, endpoint: Endpoint, secret: str) -> None:
    from carepath.engine.scheduler import TimerScheduler

    scheduler = TimerScheduler(engine)  # not started: its wake-up is called by hand
    delivery = _enqueue(engine)
    scheduler.fire()
    assert _row(engine, delivery).state == "delivered" and len(endpoint.received) == 1
