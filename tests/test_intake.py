"""Starts that lack the clinical inputs an ADT feed cannot carry: the sidecar's "intake" lets them leave
those fields out, and the coordinator's intake task collects them before anything reads them. Also the
post-ED episode whose ED visit became an admission (message ed_visit_admitted): FUM, FUA and FMC do not
apply to it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from carepath.api.app import create_app
from carepath.api.settings import Settings
from carepath.api.web.start import INTAKE_HINT
from carepath.engine.application import CarePath
from carepath.engine.clock import ManualClock
from carepath.engine.usecases.instances import get_instance_view
from tests.support.api import ApiClient
from tests.support.web import Browser, page, text_of, web_user

SHIPPED = Path(__file__).resolve().parents[1] / "bpmn"
POST_ED, TCM = "post-ed-follow-up", "transition-of-care"
NY = ZoneInfo("America/New_York")
FRIDAY_10AM = datetime(2026, 1, 9, 10, 0, tzinfo=NY)
POST_ED_MEASURES = ("fum-7", "fum-30", "fua-7", "fua-30", "fmc-7")


def _open(api: ApiClient, user: str, instance_id: str) -> list[dict[str, Any]]:
    return sorted(api.get(f"/api/instances/{instance_id}", user).json()["open_tasks"], key=lambda t: t["element_id"])


def _complete(api: ApiClient, user: str, task_id: str, data: dict[str, Any]) -> Any:
    return api.post(f"/api/tasks/{task_id}/complete", user, {"data": data})


def _measures(api: ApiClient, user: str, instance_id: str) -> dict[str, str]:
    return {m["measure_id"]: m["status"] for m in api.get(f"/api/instances/{instance_id}/measures", user).json()}


def _recorded_outcomes(api: ApiClient, user: str, instance_id: str) -> dict[str, str]:
    history = api.get(f"/api/instances/{instance_id}/history", user).json()
    [recorded] = [e for e in history["items"] if e["type"] == "measure_outcomes"]
    return {m["measure_id"]: m["status"] for m in recorded["data"]["measures"]}


# -- post-ED: the count of chronic conditions ----------------------------------------------------------

def test_an_ed_discharge_without_the_chronic_conditions_starts_with_the_intake_task(
        shipped: ApiClient, clock: ManualClock) -> None:
    clock.set(FRIDAY_10AM.astimezone(UTC))
    lead, coordinator = shipped.user("clinical_lead"), shipped.user("coordinator", "care-coordinator")
    started = shipped.start(lead, POST_ED, business_key="V-1001", patient_id="pat-1",
                            data={"ed_visit_date": "2026-01-08", "diagnosis_category": "other"})
    assert started.status_code == 201, started.text
    instance = started.json()
    assert instance["data"]["intake_fields"] == ["high_risk_chronic_conditions"]
    [intake] = instance["open_tasks"]
    assert (intake["element_id"], intake["name"]) == ("complete_intake", "Complete the intake: chronic conditions")
    assert intake["candidate_groups"] == ["care-coordinator"]
    assert datetime.fromisoformat(intake["due_date"]) == datetime(2026, 1, 12, 10, 0, tzinfo=NY)  # P1BD, Monday
    form = shipped.get(f"/api/tasks/{intake['id']}/form", coordinator).json()["schema"]
    assert form["required"] == ["high_risk_chronic_conditions"]
    assert form["properties"] == {"high_risk_chronic_conditions": {
        "type": "integer", "minimum": 0, "title": "Number of high-risk chronic conditions (2 or more: FMC)"}}

    refused = _complete(shipped, coordinator, intake["id"], {"high_risk_chronic_conditions": -1})
    assert refused.status_code == 422 and "high_risk_chronic_conditions" in refused.text
    assert _complete(shipped, coordinator, intake["id"], {}).status_code == 422
    done = _complete(shipped, coordinator, intake["id"], {"high_risk_chronic_conditions": 2})
    assert done.status_code == 200, done.text
    assert [t["element_id"] for t in done.json()["open_tasks"]] == ["call_patient"]
    assert done.json()["data"]["measure"] == "FMC"  # classified with the value the intake collected
    assert _measures(shipped, lead, instance["id"])["fmc-7"] == "open"


def test_a_start_with_every_input_gets_no_intake_task(shipped: ApiClient, clock: ManualClock) -> None:
    clock.set(FRIDAY_10AM.astimezone(UTC))
    lead = shipped.user("clinical_lead")
    started = shipped.start(lead, POST_ED, business_key="V-1002", data={
        "ed_visit_date": "2026-01-08", "diagnosis_category": "mental_illness", "high_risk_chronic_conditions": 0})
    assert started.status_code == 201, started.text
    assert started.json()["data"]["intake_fields"] == []
    assert [t["element_id"] for t in started.json()["open_tasks"]] == ["call_patient"]
    history = shipped.get(f"/api/instances/{started.json()['id']}/history", lead).json()["items"]
    assert not any(e["data"].get("element_id") == "complete_intake" for e in history)


@pytest.mark.parametrize("value", [-1, "two", None, 1.5])
def test_an_intake_field_that_is_given_is_still_checked(shipped: ApiClient, value: Any) -> None:
    lead = shipped.user("clinical_lead")
    refused = shipped.start(lead, POST_ED, business_key="V-1003", data={
        "ed_visit_date": "2026-01-08", "diagnosis_category": "other", "high_risk_chronic_conditions": value})
    assert refused.status_code == 422, refused.text
    assert "high_risk_chronic_conditions" in refused.text
    missing = shipped.start(lead, POST_ED, business_key="V-1003", data={"diagnosis_category": "other"})
    assert missing.status_code == 422 and "'ed_visit_date' is required" in missing.text  # not an intake field


def test_the_published_start_data_says_which_fields_the_intake_collects(shipped: ApiClient) -> None:
    lead = shipped.user("clinical_lead")
    [version] = [v for v in shipped.get("/api/pathways", lead).json() if v["key"] == POST_ED]
    schema = version["start_data"]
    assert schema["required"] == ["ed_visit_date", "diagnosis_category"]
    assert schema["x-intake"] == {"task": "complete_intake", "fields": ["high_risk_chronic_conditions"]}
    assert schema["properties"]["high_risk_chronic_conditions"]["minimum"] == 0


# -- TCM: decision making and LACE ---------------------------------------------------------------------

def test_a_discharge_without_mdm_and_lace_starts_with_the_intake_then_decides_the_complexity(
        shipped: ApiClient, clock: ManualClock) -> None:
    clock.set(datetime(2026, 3, 2, 15, tzinfo=UTC))
    lead, coordinator = shipped.user("clinical_lead"), shipped.user("coordinator", "care-coordinator")
    started = shipped.start(lead, TCM, business_key="V-2001",
                            data={"discharge_date": "2026-03-02", "discharge_setting": "inpatient"})
    assert started.status_code == 201, started.text
    instance = started.json()
    assert instance["data"]["intake_fields"] == ["mdm_level", "lace_score"]
    [intake] = instance["open_tasks"]
    assert (intake["element_id"], intake["name"]) == (
        "complete_intake", "Complete the intake: decision making and LACE score")
    form = shipped.get(f"/api/tasks/{intake['id']}/form", coordinator).json()["schema"]
    assert sorted(form["required"]) == ["lace_score", "mdm_level"]
    assert form["properties"]["mdm_level"]["enum"] == ["high", "moderate", "low"]
    assert (form["properties"]["lace_score"]["minimum"], form["properties"]["lace_score"]["maximum"]) == (0, 19)
    assert _complete(shipped, coordinator, intake["id"], {"mdm_level": "low", "lace_score": 20}).status_code == 422
    done = _complete(shipped, coordinator, intake["id"], {"mdm_level": "moderate", "lace_score": 12})
    assert done.status_code == 200, done.text
    assert [t["element_id"] for t in done.json()["open_tasks"]] == ["contact_patient"]
    assert (done.json()["data"]["tcm_complexity"], done.json()["data"]["face_to_face_window"]) == ("high", "P7D")


def test_a_tcm_start_with_one_of_the_two_inputs_still_asks_for_the_intake(shipped: ApiClient,
                                                                         clock: ManualClock) -> None:
    clock.set(datetime(2026, 3, 2, 15, tzinfo=UTC))
    lead = shipped.user("clinical_lead")
    started = shipped.start(lead, TCM, business_key="V-2002",
                            data={"discharge_date": "2026-03-02", "discharge_setting": "snf", "lace_score": 4})
    assert started.status_code == 201, started.text
    assert started.json()["data"]["intake_fields"] == ["mdm_level"]
    assert [t["element_id"] for t in started.json()["open_tasks"]] == ["complete_intake"]
    full = shipped.start(lead, TCM, business_key="V-2003", data={
        "discharge_date": "2026-03-02", "discharge_setting": "snf", "lace_score": 4, "mdm_level": "high"})
    assert [t["element_id"] for t in full.json()["open_tasks"]] == ["contact_patient"]


# -- deploy checks the declaration ---------------------------------------------------------------------

def _post_ed_upload(api: ApiClient, change: Any) -> Any:
    sidecar = json.loads((SHIPPED / f"{POST_ED}.pathway.json").read_text())
    change(sidecar)
    return api.deploy(api.user("clinical_lead"), (f"{POST_ED}.bpmn", (SHIPPED / f"{POST_ED}.bpmn").read_bytes()),
                      ("ed-visit-classification.dmn", (SHIPPED / "ed-visit-classification.dmn").read_bytes()),
                      (f"{POST_ED}.pathway.json", json.dumps(sidecar)))


def _intake(task: str = "complete_intake", fields: Any = None) -> Any:
    def change(sidecar: dict[str, Any]) -> None:
        sidecar["intake"] = {"task": task, "fields": ["high_risk_chronic_conditions"] if fields is None else fields}
    return change


def _retype(sidecar: dict[str, Any]) -> None:
    sidecar["start_data"]["properties"]["high_risk_chronic_conditions"]["maximum"] = 30


def _drop_start_data(sidecar: dict[str, Any]) -> None:
    del sidecar["start_data"]
    del sidecar["example_data"]


@pytest.mark.parametrize(("change", "says"), [
    (_intake(fields=["chronic_count"]), "\"intake\" field 'chronic_count' is not in the start data; the start data's "
                                        "fields are: ed_visit_date, diagnosis_category, high_risk_chronic_conditions"),
    (_intake(task="complete_intake_typo"), "\"intake\" task 'complete_intake_typo' is not an element of process"),
    (_intake(task="classify_ed_visit"), "not a user task"),
    (_intake(task="call_patient"), "must ask for exactly the intake fields (high_risk_chronic_conditions): it does "
                                   "not ask for high_risk_chronic_conditions and also asks for reached, call_notes"),
    (_intake(fields=[]), '"intake" needs "fields", a non-empty list'),
    (_intake(fields=["high_risk_chronic_conditions", "high_risk_chronic_conditions"]), "more than once"),
    (lambda s: s.update(intake=["high_risk_chronic_conditions"]), '"intake" must be a JSON object'),
    (lambda s: s.update(intake={"task": "complete_intake", "fields": ["x"], "due": "P1D"}), "unknown key(s) due"),
    (_retype, "asks for 'high_risk_chronic_conditions' differently from the start data: maximum is not set in the "
              "form, 30 in the start data"),
    (_drop_start_data, "the pathway declares no start data"),
])
def test_deploy_refuses_an_intake_that_does_not_fit_the_diagram(shipped: ApiClient, change: Any, says: str) -> None:
    refused = _post_ed_upload(shipped, change)
    assert refused.status_code == 422, refused.text
    messages = [e["message"] for e in refused.json()["errors"]]
    assert any(says in m and m.startswith(f"In {POST_ED}.pathway.json:") for m in messages), messages


def test_deploy_refuses_an_intake_task_whose_form_does_not_require_the_field(shipped: ApiClient) -> None:
    bpmn = (SHIPPED / f"{POST_ED}.bpmn").read_text()
    start = bpmn.index('<camunda:formField id="high_risk_chronic_conditions"')
    loose = bpmn[:start] + bpmn[start:].replace('<camunda:constraint name="required" />\n', "", 1)
    refused = shipped.deploy(shipped.user("clinical_lead"), (f"{POST_ED}.bpmn", loose),
                             ("ed-visit-classification.dmn", (SHIPPED / "ed-visit-classification.dmn").read_bytes()),
                             (f"{POST_ED}.pathway.json", (SHIPPED / f"{POST_ED}.pathway.json").read_bytes()))
    assert refused.status_code == 422, refused.text
    assert any("must make 'high_risk_chronic_conditions' required" in e["message"] for e in refused.json()["errors"])


def test_the_shipped_intake_declarations_deploy(shipped: ApiClient) -> None:
    assert _post_ed_upload(shipped, lambda s: None).status_code == 201


# -- post-ED: an ED visit that became an admission -----------------------------------------------------

def _admitted(api: ApiClient, user: str, business_key: str, message_id: str) -> Any:
    return api.post("/api/messages", user, {"name": "ed_visit_admitted", "correlation_key": business_key,
                                            "data": {"admit_date": "2026-01-10"}, "message_id": message_id})


def test_an_ed_visit_that_became_an_admission_ends_the_episode_and_the_measures_do_not_apply(
        shipped: ApiClient, clock: ManualClock) -> None:
    clock.set(FRIDAY_10AM.astimezone(UTC))
    lead, integration = shipped.user("clinical_lead"), shipped.user("coordinator", "care-coordinator")
    started = shipped.start(lead, POST_ED, business_key="V-3001", data={
        "ed_visit_date": "2026-01-08", "diagnosis_category": "mental_illness", "high_risk_chronic_conditions": 3})
    iid = started.json()["id"]
    [call] = started.json()["open_tasks"]
    assert _complete(shipped, integration, call["id"], {"reached": False}).status_code == 200
    assert [t["element_id"] for t in _open(shipped, lead, iid)] == ["escalate_not_reached"]
    assert _measures(shipped, lead, iid)["fum-7"] == "open"

    clock.set(datetime(2026, 1, 10, 15, tzinfo=UTC))
    sent = _admitted(shipped, integration, "V-3001", "adt-a06-1")
    assert sent.status_code == 200, sent.text
    assert (sent.json()["outcome"], sent.json()["instance_ids"]) == ("delivered", [iid])
    after = shipped.get(f"/api/instances/{iid}", lead).json()
    assert (after["status"], after["open_tasks"], after["waiting"]) == ("completed", [], [])
    assert after["data"]["ed_visit_admitted"] is True
    assert after["data"]["ed_visit_admitted_reported_Response"] == {"admit_date": "2026-01-10"}
    expected = dict.fromkeys(POST_ED_MEASURES, "not_applicable")
    assert _measures(shipped, lead, iid) == expected
    assert _recorded_outcomes(shipped, lead, iid) == expected
    assert _admitted(shipped, integration, "V-3001", "adt-a06-1").json()["outcome"] == "duplicate"


def test_an_admission_reported_during_the_intake_ends_the_episode_at_once(
        shipped: ApiClient, clock: ManualClock) -> None:
    """The intake task's boundary event waits for the message: no buffering until the intake is done."""
    clock.set(FRIDAY_10AM.astimezone(UTC))
    lead, coordinator = shipped.user("clinical_lead"), shipped.user("coordinator", "care-coordinator")
    started = shipped.start(lead, POST_ED, business_key="V-3002",
                            data={"ed_visit_date": "2026-01-08", "diagnosis_category": "substance_use"})
    iid = started.json()["id"]
    assert [t["element_id"] for t in started.json()["open_tasks"]] == ["complete_intake"]
    waits = shipped.get(f"/api/instances/{iid}", lead).json()["waiting"]
    assert "ed_visit_admitted" in json.dumps(waits)
    sent = _admitted(shipped, coordinator, "V-3002", "adt-a06-2")
    assert (sent.json()["outcome"], sent.json()["instance_ids"]) == ("delivered", [iid])
    after = shipped.get(f"/api/instances/{iid}", lead).json()
    assert (after["status"], after["open_tasks"], after["waiting"]) == ("completed", [], [])
    assert after["data"]["ed_visit_admitted"] is True
    assert after["data"]["admitted_during_intake_Response"] == {"admit_date": "2026-01-10"}
    expected = dict.fromkeys(POST_ED_MEASURES, "not_applicable")  # FUA excluded though never classified
    assert _measures(shipped, lead, iid) == expected
    assert _recorded_outcomes(shipped, lead, iid) == expected


def test_a_readmission_reported_during_the_tcm_intake_ends_the_remaining_work(
        shipped: ApiClient, clock: ManualClock) -> None:
    clock.set(datetime(2026, 3, 2, 15, tzinfo=UTC))
    lead, integration = shipped.user("clinical_lead"), shipped.user("coordinator", "care-coordinator")
    started = shipped.start(lead, TCM, business_key="V-2003",
                            data={"discharge_date": "2026-03-02", "discharge_setting": "inpatient"})
    iid = started.json()["id"]
    assert [t["element_id"] for t in started.json()["open_tasks"]] == ["complete_intake"]
    sent = shipped.post("/api/messages", integration, {
        "name": "readmission", "correlation_key": "V-2003", "message_id": "adt-a01-3",
        "data": {"admit_date": "2026-03-04", "visit_number": "V-2009"}})
    assert (sent.json()["outcome"], sent.json()["instance_ids"]) == ("delivered", [iid]), sent.text
    after = shipped.get(f"/api/instances/{iid}", lead).json()
    assert (after["status"], after["open_tasks"], after["waiting"]) == ("completed", [], [])
    assert after["data"]["readmitted"] is True
    assert after["data"]["readmitted_during_intake_Response"]["visit_number"] == "V-2009"
    expected = dict.fromkeys(("tcm-interactive-contact", "tcm-face-to-face-7", "tcm-face-to-face-14", "hedis-mrp"),
                             "not_applicable")  # no complexity was decided: not readmitted is read first
    assert _measures(shipped, lead, iid) == expected
    assert _recorded_outcomes(shipped, lead, iid) == expected


def test_the_compliance_report_counts_an_admitted_ed_visit_as_not_applicable(
        shipped: ApiClient, clock: ManualClock) -> None:
    clock.set(FRIDAY_10AM.astimezone(UTC))
    lead, coordinator, auditor = (shipped.user("clinical_lead"), shipped.user("coordinator", "care-coordinator"),
                                  shipped.user("auditor"))
    fum = {"ed_visit_date": "2026-01-08", "diagnosis_category": "mental_illness", "high_risk_chronic_conditions": 0}
    for key in ("V-4001", "V-4002", "V-4003"):
        assert shipped.start(lead, POST_ED, business_key=key, data=fum).status_code == 201
    clock.set(datetime(2026, 1, 10, 15, tzinfo=UTC))
    assert _admitted(shipped, coordinator, "V-4001", "adt-a01-1").json()["outcome"] == "delivered"
    visit = {"name": "visit_completed", "correlation_key": "V-4002", "data": {"visit_date": "2026-01-10"}}
    assert shipped.post("/api/messages", coordinator, visit).json()["outcome"] == "buffered"  # not yet scheduled
    clock.set(datetime(2026, 3, 1, 15, tzinfo=UTC))  # every window closed; V-4002's visit never got scheduled
    report = shipped.get("/api/reports/compliance", auditor, params={"pathway": POST_ED})
    assert report.status_code == 200, report.text
    rows = {r["measure_id"]: r for r in report.json()["measures"]}
    fum7 = rows["fum-7"]
    assert (fum7["denominator"], fum7["met"], fum7["not_met"], fum7["not_applicable"], fum7["excluded"]) == (
        2, 0, 2, 1, 0)
    assert {m["business_key"] for m in fum7["misses"]} == {"V-4002", "V-4003"}
    assert rows["fmc-7"]["not_applicable"] == 3 and rows["fmc-7"]["denominator"] == 0


# -- the web app's start form --------------------------------------------------------------------------

def test_the_start_form_marks_the_intake_fields_and_a_start_without_them_gets_the_intake(
        engine: CarePath, database_url: str, clock: ManualClock) -> None:
    clock.set(FRIDAY_10AM.astimezone(UTC))
    settings = Settings(database_url=database_url, deploy_shipped_pathways=True, scheduler_enabled=False)
    with TestClient(create_app(settings, engine)):  # start-up deploys the shipped pathways
        web_user(engine, "lee", "clinical_lead")
        browser = Browser(create_app(settings, engine))
        assert browser.sign_in("lee").status_code == 303
        url = f"/app/pathways/{POST_ED}/start"
        doc = page(browser.get(url))
        hint = doc.xpath('//*[@id="field-high_risk_chronic_conditions-hint"]')
        assert hint and INTAKE_HINT in text_of(hint[0])
        assert doc.xpath('//input[@name="high_risk_chronic_conditions"]/@required') == []
        assert len(doc.xpath('//input[@name="ed_visit_date"]/@required')) == 1
        assert not doc.xpath('//*[@id="field-ed_visit_date-hint"]') or INTAKE_HINT not in text_of(
            doc.xpath('//*[@id="field-ed_visit_date-hint"]')[0])
        started = browser.submit(url, url, **{"episode-business_key": "V-5001", "episode-patient_id": "pat-5",
                                              "ed_visit_date": "2026-01-08", "diagnosis_category": "other",
                                              "high_risk_chronic_conditions": ""})
        assert started.status_code == 303, started.text
        view = get_instance_view(engine, started.headers["location"].rsplit("/", 1)[1])
        assert [t.element_id for t in view.open_tasks] == ["complete_intake"]
        assert view.data["intake_fields"] == ["high_risk_chronic_conditions"]
