"""Referrals through FHIR: the ServiceRequest and referral Task (Gravity SDOH Clinical Care shapes) read and
searched with GET /api/referrals' visibility and the FHIR reads' audit, the owning organization's updates by
PUT / PATCH of the Task moving the pathway as POST /api/referrals/{id}/status does, and an AHC HRSN
QuestionnaireResponse starting the sdoh-screening-referral pathway. Every answer is validated with the
fhir.resources R4B models."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.task import Task
from httpx import Response
from sqlalchemy import select

from carepath.engine.clock import ManualClock
from carepath.engine.persistence.tables import Event, Instance
from tests.pathways.test_sdoh_screening_referral_scenarios import Case, directory, ny, owned_by  # noqa: F401
from tests.support.api import ApiClient

FHIR_JSON = "application/fhir+json"


@dataclass
class Referred:
    api: ApiClient
    case: Case
    pantry: str  # the food pantry's integration account: owns the food referral
    other: str  # another organization's integration account
    food: dict[str, Any]
    rides: dict[str, Any]
    patient: str  # the Patient id (FHIR) of the case's patient

    def fhir(self, path: str, user: str, **params: Any) -> Response:
        return self.api.get(f"/fhir/{path}", user, params=params)

    def put(self, task: dict[str, Any], user: str, **headers: str) -> Response:
        return self.api.client.put(f"/fhir/Task/{task['id']}", content=json.dumps(task),
                                   headers={**self.api.headers(user), "Content-Type": FHIR_JSON, **headers})


@pytest.fixture
def referred(directory: ApiClient, clock: ManualClock) -> Referred:  # noqa: F811
    case = Case(directory, clock)
    case.at(ny(3, 12))
    case.consent_and_choose("food", "fict-svc-food-pantry")
    case.consent_and_choose("transportation", "fict-svc-rides")
    referrals = case.referrals()
    pantry = directory.user("integration", name="pantry-system")
    other = directory.user("integration", name="rides-system")
    owned_by(directory, referrals["food"]["id"], pantry)
    owned_by(directory, referrals["transportation"]["id"], other)
    with directory.engine.db.read() as session:
        patient = session.scalar(select(Instance.patient_ref).where(Instance.id == case.id))
    return Referred(directory, case, pantry, other, referrals["food"], referrals["transportation"], str(patient))


def _outcome(response: Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON)
    OperationOutcome.model_validate(response.json())
    return str(response.json()["issue"][0]["diagnostics"])


def _entries(response: Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    Bundle.model_validate(response.json())
    return [e["resource"] for e in response.json().get("entry", [])]


def test_a_referral_reads_as_service_request_and_task_and_the_reads_are_audited(referred: Referred) -> None:
    food, manager = referred.food, referred.case.manager
    request = referred.fhir(f"ServiceRequest/sr-{food['id']}", manager)
    assert request.status_code == 200, request.text
    ServiceRequest.model_validate(request.json())
    assert request.json()["category"][0]["coding"][0]["code"] == "food-insecurity"
    assert request.json()["status"] == "active"
    assert request.json()["subject"]["reference"] == f"Patient/{referred.patient}"
    task = referred.fhir(f"Task/{food['id']}", manager)
    assert task.status_code == 200, task.text
    Task.model_validate(task.json())
    assert task.json()["code"]["coding"][0]["code"] == "fulfill" and task.json()["status"] == "requested"
    assert task.json()["focus"]["reference"] == f"ServiceRequest/sr-{food['id']}"
    assert task.json()["meta"]["versionId"] == str(food["version"])
    with referred.api.engine.db.read() as session:
        reads = session.scalars(select(Event).where(Event.type == "record_viewed", Event.actor == manager)).all()
    assert [r.data["what"] for r in reads] == ["referral", "referral"]
    assert {r.instance_id for r in reads} == {referred.case.id}
    assert referred.fhir(request.json()["subject"]["reference"], manager).status_code == 200  # the same patient


def test_referrals_are_searched_by_patient_status_category_and_paged(referred: Referred) -> None:
    manager = referred.case.manager
    both = _entries(referred.fhir("ServiceRequest", manager, patient=f"Patient/{referred.patient}"))
    assert {r["id"] for r in both} == {f"sr-{referred.food['id']}", f"sr-{referred.rides['id']}"}
    food = _entries(referred.fhir("ServiceRequest", manager, category="food-insecurity", status="active"))
    assert [r["id"] for r in food] == [f"sr-{referred.food['id']}"]
    assert _entries(referred.fhir("ServiceRequest", manager, status="completed")) == []
    assert _entries(referred.fhir("ServiceRequest", manager, _lastUpdated="lt2026-03-01")) == []
    first = referred.fhir("ServiceRequest", manager, _count="1")
    assert len(_entries(first)) == 1
    assert [link["relation"] for link in first.json()["link"]] == ["self", "next"]
    second = referred.fhir("ServiceRequest", manager, _count="1", _offset="1")
    assert len(_entries(second)) == 1 and [link["relation"] for link in second.json()["link"]] == ["self",
                                                                                                  "previous"]
    unknown = referred.fhir("ServiceRequest", manager, category="loneliness")
    assert "loneliness" in _outcome(unknown, 400)


def test_referral_tasks_are_searched_by_code_focus_and_owner_beside_human_tasks(referred: Referred) -> None:
    manager, food = referred.case.manager, referred.food
    tasks = _entries(referred.fhir("Task", manager, code="fulfill"))
    assert {t["id"] for t in tasks} == {food["id"], referred.rides["id"]}
    focused = _entries(referred.fhir("Task", manager, focus=f"ServiceRequest/sr-{food['id']}"))
    assert [t["id"] for t in focused] == [food["id"]]
    owned = _entries(referred.fhir("Task", manager, owner=f"Organization/{food['organization_id']}"))
    assert food["id"] in {t["id"] for t in owned} and all(t["code"]["coding"][0]["code"] == "fulfill" for t in owned)
    humans = _entries(referred.fhir("Task", referred.case.lead))
    assert food["id"] not in {t["id"] for t in humans} and all("code" not in t for t in humans)


def test_an_organization_sees_only_its_own_referrals_and_no_human_task(referred: Referred) -> None:
    food, rides = referred.food, referred.rides
    assert [t["id"] for t in _entries(referred.fhir("Task", referred.pantry))] == [food["id"]]
    assert [r["id"] for r in _entries(referred.fhir("ServiceRequest", referred.pantry))] == [f"sr-{food['id']}"]
    assert referred.fhir(f"Task/{food['id']}", referred.pantry).status_code == 200
    _outcome(referred.fhir(f"Task/{rides['id']}", referred.pantry), 404)
    _outcome(referred.fhir(f"ServiceRequest/sr-{rides['id']}", referred.pantry), 404)
    _outcome(referred.fhir("CarePlan", referred.pantry), 403)
    stranger = referred.api.user("coordinator", "another-team")
    _outcome(referred.fhir(f"Task/{food['id']}", stranger), 404)


def test_the_owner_accepts_and_completes_by_put_and_the_pathway_moves(referred: Referred) -> None:
    food = referred.food
    task = referred.fhir(f"Task/{food['id']}", referred.pantry).json()
    accepted = referred.put(task | {"status": "accepted"}, referred.pantry, **{"If-Match": f'W/"{food["version"]}"'})
    assert accepted.status_code == 200, accepted.text
    Task.model_validate(accepted.json())
    assert accepted.json()["status"] == "accepted" and accepted.headers["ETag"] == \
        f'W/"{accepted.json()["meta"]["versionId"]}"'
    assert referred.case.referrals()["food"]["status"] == "accepted"
    done = accepted.json() | {"status": "completed", "businessStatus": {"text": "got-help"}}
    completed = referred.put(done, referred.pantry)
    assert completed.status_code == 200, completed.text
    assert completed.json()["businessStatus"]["coding"][0]["code"] == "got-help"
    assert referred.case.view()["data"]["food_outcome"] == "got-help"
    history = referred.api.get(f"/api/referrals/{food['id']}", referred.case.manager).json()["history"]
    assert [h["by"] for h in history[1:]] == [referred.pantry, referred.pantry]


def test_an_outcome_in_output_closes_the_loop_by_patch(referred: Referred) -> None:
    food = referred.food
    patch = [{"op": "replace", "path": "/status", "value": "rejected"},
             {"op": "add", "path": "/statusReason", "value": {"text": "outside our service area"}},
             {"op": "add", "path": "/output", "value": [{"type": {"text": "outcome"}, "valueCodeableConcept": {
                 "coding": [{"system": "urn:carepath:referral-outcome", "code": "not-eligible"}]}}]}]
    patched = referred.api.client.patch(f"/fhir/Task/{food['id']}", content=json.dumps(patch), headers={
        **referred.api.headers(referred.pantry), "Content-Type": "application/json-patch+json"})
    assert patched.status_code == 200, patched.text
    assert patched.json()["status"] == "rejected" and patched.json()["statusReason"]["text"] == \
        "outside our service area"
    referral = referred.api.get(f"/api/referrals/{food['id']}", referred.case.manager).json()
    assert (referral["status"], referral["outcome"]) == ("rejected", "not-eligible")
    bad = [{"op": "replace", "path": "/owner", "value": {"display": "someone else"}}]
    refused = referred.api.client.patch(f"/fhir/Task/{food['id']}", content=json.dumps(bad), headers={
        **referred.api.headers(referred.pantry), "Content-Type": "application/json-patch+json"})
    assert "owner" in _outcome(refused, 422)


def test_updates_are_refused_with_operation_outcomes_naming_the_problem(referred: Referred) -> None:
    food, pantry = referred.food, referred.pantry
    task = referred.fhir(f"Task/{food['id']}", pantry).json()
    assert "statusReason" in _outcome(referred.put(task | {"status": "rejected"}, pantry), 422)
    moved = task | {"owner": {"display": "Another pantry"}, "status": "accepted"}
    assert "Task.owner" in _outcome(referred.put(moved, pantry), 422)
    assert "maybe-later" in _outcome(referred.put(task | {"status": "completed", "businessStatus": {
        "text": "maybe-later"}}, pantry), 422)
    rides = referred.fhir(f"Task/{referred.rides['id']}", referred.other).json()
    _outcome(referred.put(rides | {"status": "accepted"}, pantry), 404)
    assert referred.put(task | {"status": "accepted"}, pantry).status_code == 200
    stale = task | {"status": "in-progress"}  # still meta.versionId of the first read
    assert "changed since version" in _outcome(referred.put(stale, pantry), 409)
    _outcome(referred.put(stale, pantry, **{"If-Match": f'W/"{food["version"]}"'}), 409)
    assert referred.case.referrals()["food"]["status"] == "accepted"


def test_the_capability_statement_lists_service_request_and_the_task_updates(api: ApiClient) -> None:
    resources = {r["type"]: r for r in api.client.get("/fhir/metadata").json()["rest"][0]["resource"]}
    assert {p["name"] for p in resources["ServiceRequest"]["searchParam"]} >= {"patient", "status", "category",
                                                                               "_lastUpdated", "_count"}
    assert {p["name"] for p in resources["Task"]["searchParam"]} >= {"code", "focus", "owner"}
    assert {i["code"] for i in resources["Task"]["interaction"]} >= {"read", "search-type", "update", "patch"}


def _screening(**changes: Any) -> dict[str, Any]:
    """An AHC HRSN QuestionnaireResponse positive for food and transportation (LOINC codes, LA answers)."""
    def item(code: str, *answers: dict[str, Any]) -> dict[str, Any]:
        return {"linkId": f"/96777-8/{code}", "code": [{"system": "http://loinc.org", "code": code}],
                "answer": list(answers)}

    def coded(code: str) -> dict[str, Any]:
        return {"valueCoding": {"system": "http://loinc.org", "code": code}}

    return {"resourceType": "QuestionnaireResponse", "id": "qr-1", "status": "completed",
            "identifier": {"system": "urn:clinic:screenings", "value": "SCREEN-77"},
            "questionnaire": "http://loinc.org/q/96777-8", "authored": "2026-03-02T10:00:00-05:00",
            "contained": [{"resourceType": "Patient", "id": "p", "name": [{"family": "Lee", "given": ["Jordan"]}],
                           "identifier": [{"system": "urn:clinic:mrn", "value": "MRN-55120"}]}],
            "subject": {"reference": "#p"},
            "item": [{"linkId": "/96777-8", "item": [
                item("71802-3", coded("LA31993-1")), item("96778-6", coded("LA9-3")),
                item("88122-7", coded("LA28397-0")), item("88123-5", {"valueString": "Never true"}),
                item("93030-5", coded("LA33-6")), item("96779-4", coded("LA32-8")),
                item("95618-5", coded("LA6270-8")), item("95617-7", coded("LA10066-1")),
                item("95616-9", {"valueInteger": 1}), item("95615-1", coded("LA6270-8"))]}]} | changes


def _post(api: ApiClient, user: str, resource: dict[str, Any]) -> Response:
    return api.client.post("/fhir/QuestionnaireResponse", content=json.dumps(resource),
                           headers={**api.headers(user), "Content-Type": FHIR_JSON})


def test_a_questionnaire_response_starts_the_screening_pathway_with_its_positive_domains(
        directory: ApiClient) -> None:  # noqa: F811
    ehr = directory.user("integration", name="clinic-ehr")
    posted = _post(directory, ehr, _screening())
    assert posted.status_code == 201, posted.text
    OperationOutcome.model_validate(posted.json())
    careplan = posted.headers["Location"].removeprefix("/fhir/")
    lead = directory.user("clinical_lead")
    episode = directory.get(f"/api/instances/{careplan.removeprefix('CarePlan/')}", lead).json()
    assert episode["business_key"] == "SCREEN-77"
    assert episode["data"]["positive_domains"] == ["food", "transportation"]
    assert episode["data"]["screening_date"] == "2026-03-02"
    assert directory.get(f"/fhir/{careplan}", lead).status_code == 200
    patient = directory.get("/fhir/Patient", lead, params={"identifier": "urn:clinic:mrn|MRN-55120"}).json()
    assert patient["entry"][0]["resource"]["name"][0]["family"] == "Lee"


def test_a_questionnaire_response_it_cannot_read_is_refused_naming_the_problem(directory: ApiClient) -> None:  # noqa: F811
    ehr = directory.user("integration", name="clinic-ehr")
    unknown_answer = _screening()
    unknown_answer["item"][0]["item"][2]["answer"] = [{"valueCoding": {"code": "LA9999-9"}}]
    assert "LA9999-9" in _outcome(_post(directory, ehr, unknown_answer), 422)
    unknown_question = _screening()
    unknown_question["item"][0]["item"].append({"linkId": "12345-6", "answer": [{"valueString": "yes"}]})
    assert "12345-6" in _outcome(_post(directory, ehr, unknown_question), 422)
    assert "subject" in _outcome(_post(directory, ehr, _screening(subject=None)), 422)
    assert "questionnaire" in _outcome(_post(directory, ehr, _screening(questionnaire="urn:other")), 422)
    assert directory.get("/api/instances", directory.user("clinical_lead")).json()["items"] == []
