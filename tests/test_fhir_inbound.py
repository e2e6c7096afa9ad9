"""Issue 14's inbound FHIR: an Encounter, a Da Vinci notification Bundle and a subscription notification
go through the same inbox and the same pathway triggers as HL7 v2 ADT (tests/test_adt_done_when.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from carepath.engine.clock import ManualClock
from carepath.engine.errors import BadRequest, ValidationFailed
from carepath.engine.interop.fhir_inbound import (
    ENCOUNTER_EVENTS,
    NOTIFICATION_EVENT_SYSTEM,
    PATIENT_CLASS_OF,
    read_inbound,
)
from carepath.engine.interop.triggers import EVENTS
from carepath.engine.patient_links import patient_with_identifier
from carepath.engine.persistence.tables import InboxMessage, Instance
from tests.support.api import ApiClient
from tests.support.web import page, signed_in, text_of, web_user

MRN_SYSTEM = "urn:oid:2.16.840.1.113883.3.999.1"
POST_ED = "post-ed-follow-up"


@pytest.fixture
def feed(shipped: ApiClient, clock: ManualClock) -> str:
    clock.set(datetime(2026, 12, 2, 15, 0, tzinfo=UTC))
    return shipped.user("integration", name="hie-fhir")


def encounter(*, status: str = "finished", klass: str = "EMER", visit: str = "V-ED-88",
              subject: dict[str, Any] | None = None, disposition: str | None = "home",
              diagnosis: str = "F32.9") -> dict[str, Any]:
    found: dict[str, Any] = {
        "resourceType": "Encounter", "id": "enc-1", "status": status,
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": klass},
        "identifier": [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                             "code": "VN"}]}, "system": "urn:genhosp:visits", "value": visit}],
        "period": {"start": "2026-12-01T18:05:00-05:00", "end": "2026-12-01T22:15:00-05:00"},
        "reasonCode": [{"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": diagnosis}]}],
        "serviceProvider": {"display": "GENHOSP"},
        "contained": [{"resourceType": "Patient", "id": "p1",
                       "identifier": [{"system": MRN_SYSTEM, "value": "MRN-F1"},
                                      {"system": "http://hl7.org/fhir/sid/us-ssn", "value": "123-45-6789"}],
                       "name": [{"family": "Okafor", "given": ["Ada"]}], "birthDate": "1961-04-02"}],
        "subject": subject or {"reference": "#p1"},
    }
    if status != "finished":
        del found["period"]["end"]
    if disposition:
        found["hospitalization"] = {"dischargeDisposition": {"coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/discharge-disposition", "code": disposition}]}}
    return found


def davinci(event: str, resource: dict[str, Any], bundle_id: str = "dv-1") -> dict[str, Any]:
    patient = resource.pop("contained")[0]
    resource["subject"] = {"reference": "Patient/p1"}
    return {"resourceType": "Bundle", "id": bundle_id, "type": "message", "timestamp": "2026-12-02T03:16:00Z",
            "entry": [
                {"fullUrl": "urn:uuid:h1", "resource": {
                    "resourceType": "MessageHeader", "id": "h1",
                    "eventCoding": {"system": NOTIFICATION_EVENT_SYSTEM, "code": event},
                    "source": {"endpoint": "https://hie.example.org/fhir"},
                    "focus": [{"reference": "Encounter/enc-1"}]}},
                {"fullUrl": "https://hie.example.org/fhir/Encounter/enc-1", "resource": resource},
                {"fullUrl": "https://hie.example.org/fhir/Patient/p1", "resource": patient}]}


def subscription(kind: str, focus: dict[str, Any] | None = None, number: int = 1) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"name": "subscription", "valueReference": {"reference": "https://hie.example.org/fhir/Subscription/s1"}},
        {"name": "topic", "valueCanonical": "http://hl7.org/SubscriptionTopic/encounter-end"},
        {"name": "type", "valueCode": kind}]
    entries: list[dict[str, Any]] = [{"fullUrl": "urn:uuid:status", "resource": {
        "resourceType": "Parameters", "id": "status", "parameter": parameters}}]
    if kind == "event-notification":
        parameters.append({"name": "notification-event", "part": [
            {"name": "event-number", "valueString": str(number)},
            {"name": "focus", "valueReference": {"reference": "Encounter/enc-1"}}]})
        if focus is not None:
            entries.append({"fullUrl": "https://hie.example.org/fhir/Encounter/enc-1", "resource": focus})
    return {"resourceType": "Bundle", "type": "history", "entry": entries}


def post(api: ApiClient, user: str, path: str, body: Any) -> Any:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return api.client.post(path, content=content, headers={**api.headers(user),
                                                          "Content-Type": "application/fhir+json"})


def episodes(api: ApiClient, visit: str) -> list[Instance]:
    with api.engine.db.read() as session:
        found = list(session.scalars(select(Instance).where(Instance.business_key == visit)).all())
        session.expunge_all()
        return found


def inbox(api: ApiClient) -> list[InboxMessage]:
    with api.engine.db.read() as session:
        found = list(session.scalars(select(InboxMessage).order_by(InboxMessage.id)).all())
        session.expunge_all()
        return found


def test_an_ed_discharge_encounter_starts_post_ed_once(shipped: ApiClient, feed: str) -> None:
    answered = post(shipped, feed, "/fhir/Encounter", encounter())
    assert answered.status_code == 202, answered.text
    assert answered.headers["content-type"].startswith("application/fhir+json")
    assert answered.json()["issue"][0]["severity"] == "information"
    resent = post(shipped, feed, "/fhir/Encounter", encounter())  # the answer was lost: sent again
    assert resent.status_code == 202 and "already received" in resent.json()["issue"][0]["diagnostics"]

    [row] = inbox(shipped)
    assert (row.message_type, row.event, row.sender, row.state) == ("FHIR", "A03", "FHIR hie-fhir", "started"), \
        row.outcome
    [episode] = episodes(shipped, "V-ED-88")
    with shipped.engine.db.read() as session:
        patient = patient_with_identifier(session, MRN_SYSTEM, "MRN-F1")
        assert patient_with_identifier(session, "http://hl7.org/fhir/sid/us-ssn", "123-45-6789") is None
    assert episode.pathway_key == POST_ED and episode.patient_ref == patient is not None
    data = shipped.get(f"/api/instances/{episode.id}", shipped.user("clinical_lead")).json()["data"]
    assert data["ed_visit_date"] == "2026-12-01" and data["diagnosis_category"] == "mental_illness"

    admin = shipped.user("admin")  # the admin inbox shows it like an ADT message
    listed = shipped.get("/api/inbox", admin).json()["items"]
    assert [(m["message_type"], m["event"], m["state"]) for m in listed] == [("FHIR", "A03", "started")]


def test_a_da_vinci_discharge_starts_post_ed_and_an_admission_delivers_the_exclusion(
        shipped: ApiClient, feed: str) -> None:
    answered = post(shipped, feed, "/fhir/$process-message", davinci("notification-discharge", encounter()))
    assert answered.status_code == 202, answered.text
    assert post(shipped, feed, "/fhir/$process-message",
                davinci("notification-discharge", encounter())).status_code == 202
    [episode] = episodes(shipped, "V-ED-88")
    assert episode.pathway_key == POST_ED

    admission = davinci("notification-admit", encounter(status="in-progress", klass="IMP", visit="V-IP-5",
                                                        disposition=None), bundle_id="dv-2")
    assert post(shipped, feed, "/fhir/$process-message", admission).status_code == 202
    rows = inbox(shipped)
    assert [(r.event, r.state) for r in rows] == [("A03", "started"), ("A01", "delivered")], rows[-1].outcome
    # the episode is in its intake task, whose boundary event takes the admission at once
    assert f"ed_visit_admitted delivered to {POST_ED} episode {episode.id}" in (rows[-1].outcome or "")


def test_subscription_handshake_heartbeat_and_event(shipped: ApiClient, feed: str) -> None:
    for kind in ("handshake", "heartbeat"):
        answered = post(shipped, feed, "/fhir/$subscription-notification", subscription(kind))
        assert answered.status_code == 200, answered.text
        assert answered.json()["issue"][0]["diagnostics"] == f"subscription {kind} acknowledged"
    assert inbox(shipped) == []

    id_only = post(shipped, feed, "/fhir/$subscription-notification", subscription("event-notification"))
    assert id_only.status_code == 422 and "id-only" in id_only.json()["issue"][0]["diagnostics"]

    full = subscription("event-notification", encounter())
    assert post(shipped, feed, "/fhir/$subscription-notification", full).status_code == 202
    [row] = inbox(shipped)
    assert row.state == "started", row.outcome
    assert [e.pathway_key for e in episodes(shipped, "V-ED-88")] == [POST_ED]


@pytest.mark.parametrize(("path", "body", "status", "named"), [
    ("/fhir/Encounter", b'{"resourceType": "Encounter", ', 400, "not valid JSON"),
    ("/fhir/Encounter", b"[" * 40 + b"]" * 40, 400, "nested deeper"),
    ("/fhir/Encounter", encounter(klass="HH"), 422, "Encounter.class"),
    ("/fhir/Encounter", encounter(status="planned"), 422, "Encounter.status"),
    ("/fhir/Encounter", encounter(subject={"reference": "Patient/elsewhere"}), 422, "Encounter.subject"),
    ("/fhir/Encounter", {**encounter(), "subject": None}, 422, "Encounter.subject"),
    ("/fhir/$process-message", encounter(), 422, "a message Bundle"),
    ("/fhir/$process-message", davinci("notification-unknown", encounter()), 422, "MessageHeader.eventCoding"),
])
def test_what_cannot_be_routed_is_refused_naming_the_problem(shipped: ApiClient, feed: str, path: str, body: Any,
                                                           status: int, named: str) -> None:
    answered = post(shipped, feed, path, body)
    assert answered.status_code == status, answered.text
    issue = answered.json()["issue"][0]
    assert answered.json()["resourceType"] == "OperationOutcome" and named in issue["diagnostics"]
    assert inbox(shipped) == []


def test_only_integration_accounts_send(shipped: ApiClient, feed: str) -> None:
    coordinator = shipped.user("coordinator", "care-coordinator")
    refused = post(shipped, coordinator, "/fhir/Encounter", encounter())
    assert refused.status_code == 403, refused.text
    assert "integration account" in refused.json()["issue"][0]["diagnostics"]
    anonymous = shipped.client.post("/fhir/Encounter", content=json.dumps(encounter()).encode())
    assert anonymous.status_code == 401
    as_xml = shipped.client.post("/fhir/Encounter", content=b"<Encounter/>",
                                 headers={**shipped.headers(feed), "Content-Type": "application/fhir+xml"})
    assert as_xml.status_code == 400 and "application/fhir+xml" in as_xml.json()["issue"][0]["diagnostics"]
    assert inbox(shipped) == []


def test_the_mapping_covers_every_class_and_happening_with_events_the_triggers_take() -> None:
    happenings = {happening for happening, _ in ENCOUNTER_EVENTS}
    assert set(ENCOUNTER_EVENTS) == {(h, c) for h in happenings for c in set(PATIENT_CLASS_OF.values())}
    assert {f"ADT^{event}" for event in ENCOUNTER_EVENTS.values()} <= set(EVENTS)


def test_the_admin_inbox_page_shows_a_fhir_message_like_an_adt_one(shipped: ApiClient, feed: str) -> None:
    assert post(shipped, feed, "/fhir/Encounter", encounter()).status_code == 202
    admin = signed_in(shipped.client.app, web_user(shipped.engine, "ada", "admin"))
    listing = page(admin.get("/app/inbox?state=started"))
    [row] = listing.xpath("//tr[@data-message]")
    shown = text_of(row)
    assert "FHIR^A03" in shown and "FHIR hie-fhir" in shown and "started post-ed-follow-up" in shown
    detail = text_of(page(admin.get(f"/app/inbox/{row.get('data-message')}")))
    assert '"family": "Okafor"' in detail  # the raw JSON, while it is kept


def test_docs_fhir_md_shows_the_mapping_table_as_the_code_has_it() -> None:
    text = (Path(__file__).resolve().parents[1] / "docs" / "fhir.md").read_text(encoding="utf-8")
    section = text.split("| happening | class | ADT event |", 1)[1].split("\n\n", 1)[0]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in section.strip().splitlines()[1:]]
    assert {(happening, klass): event for happening, klass, event in rows} == ENCOUNTER_EVENTS


def _mutations(document: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """Every element of a document replaced by a value of the wrong type, one at a time."""
    children = document.items() if isinstance(document, dict) else enumerate(document) \
        if isinstance(document, list) else ()
    for key, child in children:
        for wrong in (5, "x", [], None, {}, [5], {"a": [1]}):
            yield (*path, key), wrong
        yield from _mutations(child, (*path, key))


def _replaced(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    copy = json.loads(json.dumps(document))
    target = copy
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return copy


@pytest.mark.parametrize("document", [encounter(), davinci("notification-discharge", encounter()),
                                      subscription("event-notification", encounter())],
                         ids=["Encounter", "Da Vinci", "subscription"])
def test_any_element_of_the_wrong_type_is_read_or_refused_naming_it(document: dict[str, Any]) -> None:
    tried = 0
    for path, wrong in _mutations(document):
        try:
            read_inbound(_replaced(document, path, wrong))
        except (ValidationFailed, BadRequest) as refused:
            assert refused.message
        tried += 1
    assert tried > 100


def test_an_inpatient_discharge_home_starts_tcm_and_one_to_a_snf_does_not(shipped: ApiClient, feed: str) -> None:
    home = encounter(klass="IMP", visit="V-IP-7", disposition="home")
    assert post(shipped, feed, "/fhir/Encounter", home).status_code == 202
    [episode] = episodes(shipped, "V-IP-7")
    assert episode.pathway_key == "transition-of-care"
    data = shipped.get(f"/api/instances/{episode.id}", shipped.user("clinical_lead")).json()["data"]
    assert data["discharge_date"] == "2026-12-01" and data["discharge_setting"] == "inpatient"

    to_snf = encounter(klass="IMP", visit="V-IP-8", disposition="snf")
    assert post(shipped, feed, "/fhir/Encounter", to_snf).status_code == 202
    assert episodes(shipped, "V-IP-8") == []
    last = inbox(shipped)[-1]
    assert last.state == "nothing_to_do" and "disposition 03" in (last.outcome or ""), last.outcome
