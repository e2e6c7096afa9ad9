"""The inbox: stored before the ACK, a resend stored once, processed once in order per patient, failed
messages reprocessed by admins, raw payloads purged after the retention period."""

from __future__ import annotations

import threading
from collections import defaultdict
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from carepath.engine.application import CarePath
from carepath.engine.clock import Clock, ManualClock
from carepath.engine.errors import Conflict, InvalidTransition, PermissionDenied
from carepath.engine.identity import Principal, Role
from carepath.engine.inbox_queries import get_inbox_message, list_inbox
from carepath.engine.interop.hl7v2 import AckCode
from carepath.engine.model import InboxState
from carepath.engine.persistence.tables import Event, InboxMessage, User
from carepath.engine.persistence.unit_of_work import UnitOfWork
from carepath.engine.scheduler import TimerScheduler
from carepath.engine.usecases.inbox import (
    Answer,
    RouteOutcome,
    acknowledge,
    ensure_integration_account,
    process_inbox,
    purge_raw_payloads,
    reprocess,
    stored_message,
)
from tests.support.api import ApiClient
from tests.support.mllp_messages import adt, encoded

ADMIN = Principal("admin-1", Role.ADMIN)


def send(app: CarePath, message: str) -> Answer:
    return acknowledge(app, encoded(message), peer="127.0.0.1", account_for=lambda header: "mllp-local")


def rows(app: CarePath) -> list[InboxMessage]:
    with app.db.read() as session:
        return list(session.scalars(select(InboxMessage).order_by(InboxMessage.id)))


class Recorder:
    """A router that notes each message it is given (and can be told to fail some)."""

    def __init__(self, failing: set[str] | None = None) -> None:
        self.seen: list[tuple[str | None, str]] = []
        self.failing = failing or set()
        self.lock = threading.Lock()

    def __call__(self, uow: UnitOfWork, message: InboxMessage, clock: Clock) -> RouteOutcome:
        with self.lock:
            self.seen.append((message.patient_key, message.control_id))
        if message.control_id in self.failing:
            uow.session.add(User(name=f"made-by-{message.control_id}", role="coordinator", created_at=clock()))
            uow.session.flush()
            raise LookupError(f"no mapping for facility {message.sender}")
        return RouteOutcome(InboxState.DELIVERED, f"delivered {message.control_id}")


def test_a_message_is_stored_then_acknowledged_and_a_resend_is_stored_once(engine: CarePath) -> None:
    message = adt(control_id="C-1", name="Müller^Jörg")
    first, again = send(engine, message), send(engine, message)
    assert first.code is AckCode.ACCEPT and again.code is AckCode.ACCEPT
    assert first.stored is not None and again.stored is not None
    assert again.stored.duplicate and again.stored.id == first.stored.id
    assert [(r.sender, r.control_id, r.state, r.account) for r in rows(engine)] == [
        ("EPIC^GENHOSP", "C-1", "received", "mllp-local")]
    assert first.ack is not None and b"MSA|AA|C-1" in first.ack


def test_the_same_control_id_from_another_sender_is_another_message(engine: CarePath) -> None:
    send(engine, adt(control_id="C-1"))
    send(engine, adt(control_id="C-1", facility="NORTHCLINIC"))
    assert len(rows(engine)) == 2


def test_a_refused_message_is_answered_and_not_stored(engine: CarePath) -> None:
    answer = send(engine, adt(version="2.2"))
    assert answer.code is AckCode.REJECT and answer.stored is None and rows(engine) == []
    unmapped = acknowledge(engine, encoded(adt()), peer="10.0.0.9", account_for=lambda header: None)
    assert unmapped.code is AckCode.REJECT and unmapped.ack is not None and b"not mapped" in unmapped.ack


def test_the_router_in_place_routes_by_the_pathways_triggers_and_says_why_nothing_matched(engine: CarePath) -> None:
    send(engine, adt("A03", name="Çelik^Ayşe"))  # no pathway is deployed here
    assert process_inbox(engine) == 1
    [row] = rows(engine)
    assert (row.state, row.outcome, row.attempts) == (
        "nothing_to_do", "no pathway starts or moves on an A03 with patient class E (emergency) at GENHOSP", 1)
    assert row.processed_at == engine.now()
    assert stored_message(row).message.extract_field("PID", 1, 5, 1, 2) == "Ayşe"


def test_a_message_waits_while_an_earlier_one_of_its_patient_is_unprocessed(engine: CarePath) -> None:
    recorder = Recorder(failing={"X1", "X2"})
    for control_id, mrn in (("X1", "X"), ("X2", "X"), ("Y1", "Y")):
        send(engine, adt(control_id=control_id, mrn=mrn))
    process_inbox(engine, recorder)
    assert [c for _, c in recorder.seen] == ["X1", "X2", "Y1"]
    # X1 is received again (an admin's reprocess committed, its processing not done yet) ...
    with UnitOfWork(engine) as uow:
        uow.session.execute(update(InboxMessage).where(InboxMessage.control_id == "X1").values(state="received"))
        uow.commit()
    recorder.failing.clear()
    recorder.seen.clear()
    # ... so reprocessing X2 leaves it waiting behind X1; the sweep then takes both, X1 first.
    x2 = next(r.id for r in rows(engine) if r.control_id == "X2")
    assert reprocess(engine, ADMIN, x2, recorder) is InboxState.RECEIVED
    assert recorder.seen == []
    assert process_inbox(engine, recorder) == 2
    assert [c for _, c in recorder.seen] == ["X1", "X2"]


def test_a_router_failure_is_the_outcome_and_its_changes_are_undone(engine: CarePath) -> None:
    send(engine, adt(control_id="BAD"))
    send(engine, adt(control_id="GOOD"))
    process_inbox(engine, Recorder(failing={"BAD"}))
    bad, good = rows(engine)
    assert (bad.state, bad.outcome) == ("failed", "processing failed: no mapping for facility EPIC^GENHOSP")
    assert good.state == "delivered"
    with engine.db.read() as session:
        assert session.scalar(select(User).where(User.name == "made-by-BAD")) is None


def test_an_admin_reprocesses_a_failed_message_once_fixed(engine: CarePath) -> None:
    send(engine, adt(control_id="BAD"))
    recorder = Recorder(failing={"BAD"})
    process_inbox(engine, recorder)
    [row] = rows(engine)
    with pytest.raises(PermissionDenied):
        reprocess(engine, Principal("coord", Role.COORDINATOR), row.id, recorder)
    recorder.failing.clear()  # the mapping was fixed
    assert reprocess(engine, ADMIN, row.id, recorder) is InboxState.DELIVERED
    [row] = rows(engine)
    assert (row.state, row.attempts, row.outcome) == ("delivered", 2, "delivered BAD")
    with pytest.raises(InvalidTransition, match="is delivered; reprocessing a failed message needs one that is failed"):
        reprocess(engine, ADMIN, row.id, recorder)
    with engine.db.read() as session:
        event = session.scalars(select(Event).where(Event.type == "inbox_message_reprocessed")).one()
    assert event.actor == "admin-1" and event.data["control_id"] == "BAD"


def test_raw_payloads_are_purged_after_the_retention_period(engine: CarePath, clock: ManualClock) -> None:
    send(engine, adt(control_id="OLD"))
    process_inbox(engine, Recorder(failing={"OLD"}))
    send(engine, adt(control_id="WAITING"))  # not processed yet: keeps its payload
    clock.advance(timedelta(days=29))
    assert purge_raw_payloads(engine) == 0
    clock.advance(timedelta(days=2))
    assert purge_raw_payloads(engine) == 1
    old, waiting = rows(engine)
    assert old.raw is None and old.purged_at == clock() and old.control_id == "OLD" and old.patient_key
    assert waiting.raw is not None
    with pytest.raises(Conflict, match="dropped after the retention period"):
        reprocess(engine, ADMIN, old.id)
    assert get_inbox_message(engine, ADMIN, old.id).raw is None


def test_only_admins_read_the_inbox_and_the_payload_only_one_by_one(engine: CarePath) -> None:
    send(engine, adt(control_id="C-1", name="Müller^Jörg"))
    process_inbox(engine, _nothing_to_do)
    page = list_inbox(engine, ADMIN, state=InboxState.NOTHING_TO_DO)
    assert page.total == 1 and page.items[0].raw is None
    assert "Müller" in (get_inbox_message(engine, ADMIN, page.items[0].id).raw or "")
    assert list_inbox(engine, ADMIN, state=InboxState.FAILED).total == 0
    with pytest.raises(PermissionDenied):
        list_inbox(engine, Principal("lead", Role.CLINICAL_LEAD))


def test_the_built_in_account_is_created_and_a_configured_one_must_be_integration(engine: CarePath) -> None:
    ensure_integration_account(engine, "mllp-local", create=True)
    ensure_integration_account(engine, "mllp-local", create=True)  # already there
    with pytest.raises(Conflict, match="user 'epic-feed' does not exist"):
        ensure_integration_account(engine, "epic-feed", create=False)


def test_concurrent_processors_act_exactly_once_in_order_per_patient(engine: CarePath) -> None:
    for n in range(40):
        send(engine, adt(control_id=f"M{n:02d}", mrn=f"P{n % 4}"))
    recorder = Recorder()
    threads = [threading.Thread(target=process_inbox, args=(engine, recorder, 1000)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(c for _, c in recorder.seen) == [f"M{n:02d}" for n in range(40)]  # each once
    by_patient: dict[str | None, list[str]] = defaultdict(list)
    for patient, control_id in recorder.seen:
        by_patient[patient].append(control_id)
    assert all(ids == sorted(ids) for ids in by_patient.values()), by_patient
    assert {r.state for r in rows(engine)} == {"delivered"} and {r.attempts for r in rows(engine)} == {1}


def test_the_inbox_api_lists_dead_letters_and_reprocesses_them(api: ApiClient) -> None:
    engine = api.engine
    admin, coordinator = api.user("admin"), api.user("coordinator", "care")
    send(engine, adt(control_id="BAD", name="Müller^Jörg"))
    send(engine, adt(control_id="FINE", mrn="OTHER"))
    process_inbox(engine, Recorder(failing={"BAD"}))
    failed = api.get("/api/inbox?state=failed", admin).json()
    assert failed["total"] == 1 and failed["items"][0]["control_id"] == "BAD" and "raw" not in failed["items"][0]
    assert "no mapping for facility" in failed["items"][0]["outcome"]
    message_id = failed["items"][0]["id"]
    detail = api.get(f"/api/inbox/{message_id}", admin).json()
    assert "Müller^Jörg" in detail["raw"]
    assert api.get("/api/inbox", coordinator).status_code == 403
    assert api.get(f"/api/inbox/{message_id}", coordinator).status_code == 403
    assert api.post(f"/api/inbox/{message_id}/reprocess", coordinator).status_code == 403
    refused = api.get("/api/inbox?state=lost", admin)
    assert refused.status_code == 422 and "not an inbox state" in refused.text
    assert api.get("/api/inbox/999999", admin).status_code == 404
    again = api.post(f"/api/inbox/{message_id}/reprocess", admin)  # the router in place: nothing to do
    assert again.status_code == 200 and again.json()["state"] == "nothing_to_do" and again.json()["attempts"] == 2
    conflict = api.post(f"/api/inbox/{message_id}/reprocess", admin)
    assert conflict.status_code == 409 and "needs one that is failed" in conflict.text


def test_the_backlog_is_a_metric(api: ApiClient, clock: ManualClock) -> None:
    engine = api.engine
    send(engine, adt(control_id="W1"))
    clock.advance(timedelta(seconds=90))
    send(engine, adt(control_id="W2", mrn="OTHER"))
    metrics = api.client.get("/metrics").text
    assert "carepath_inbox_waiting 2.0" in metrics and "carepath_inbox_failed 0.0" in metrics
    assert "carepath_inbox_lag_seconds 90.0" in metrics
    process_inbox(engine, Recorder(failing={"W1"}))
    metrics = api.client.get("/metrics").text
    assert "carepath_inbox_waiting 0.0" in metrics and "carepath_inbox_failed 1.0" in metrics


def test_the_schedulers_sweep_processes_the_inbox_and_purges_payloads(engine: CarePath, clock: ManualClock) -> None:
    send(engine, adt(control_id="OLD"))
    TimerScheduler(engine).sweep_inbox()  # a message the listener stored and did not process (it died)
    [row] = rows(engine)
    assert row.state == "nothing_to_do" and row.raw is not None
    clock.advance(timedelta(days=31))
    TimerScheduler(engine).sweep_inbox()
    assert rows(engine)[0].raw is None


def _nothing_to_do(uow: UnitOfWork, message: InboxMessage, clock: Clock) -> RouteOutcome:
    return RouteOutcome(InboxState.NOTHING_TO_DO, f"nothing to do with {stored_message(message).header.event}")
