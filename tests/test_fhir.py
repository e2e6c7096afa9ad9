"""/fhir: tasks, episodes and pathway versions as FHIR R4 resources, read and searched with the JSON API's
visibility and audit, every answer validated with the fhir.resources R4B models."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.routing import APIRoute
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.careplan import CarePlan
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.plandefinition import PlanDefinition
from fhir.resources.R4B.task import Task
from httpx import Response
from sqlalchemy import select

from carepath.api.fhir.inbound import router as fhir_inbound_router
from carepath.api.fhir.reads import RESOURCES
from carepath.api.fhir.referral_updates import router as fhir_referral_updates_router
from carepath.api.fhir.routes import router as fhir_router
from carepath.engine.application import CarePath
from carepath.engine.clock import ManualClock
from carepath.engine.identity import Principal, Role
from carepath.engine.patients import Demographics
from carepath.engine.persistence.tables import Event, Instance
from carepath.engine.persistence.tables import Patient as PatientRow
from carepath.engine.persistence.unit_of_work import UnitOfWork
from carepath.engine.usecases.patients import merge_patients, unmerge_patient, update_demographics
from tests.support import diagrams as d
from tests.support.api import ApiClient

MODELS: dict[str, Any] = {"Task": Task, "CarePlan": CarePlan, "PlanDefinition": PlanDefinition, "Patient": Patient}


@dataclass
class Ward:
    lead: str
    nurse: str  # coordinator of ward A, whose tasks these are
    stranger: str  # coordinator of ward B
    episodes: list[dict[str, Any]]  # pat-1, pat-2, pat-3
    engine: CarePath

    def task_of(self, index: int) -> str:
        return str(self.episodes[index]["open_tasks"][0]["id"])

    def patient_of(self, index: int) -> str:
        """The Patient id of the episode's patient (its free-text id is pat-1, pat-2, pat-3)."""
        with self.engine.db.read() as session:
            return str(session.scalar(select(Instance.patient_ref).where(Instance.id == self.episodes[index]["id"])))


@pytest.fixture
def ward(api: ApiClient) -> Ward:
    lead = api.user("clinical_lead")
    diagram = d.linear_user_tasks("fu", "Call patient", "Book visit", lane="Ward A")
    assert api.deploy(lead, ("fu.bpmn", diagram)).status_code == 201
    episodes = [api.start(lead, "fu", business_key=f"enc-{n}", patient_id=f"pat-{n}").json() for n in (1, 2, 3)]
    return Ward(lead, api.user("coordinator", "ward-a"), api.user("coordinator", "ward-b"), episodes, api.engine)


def fhir(api: ApiClient, path: str, user: str | None, **params: Any) -> Response:
    headers = api.headers(user) if user else {}
    return api.client.get(f"/fhir/{path}", headers=headers, params=params)


def resource(response: Response, kind: str) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    body = dict(response.json())
    MODELS[kind].model_validate(body)
    return body


def searchset(response: Response, kind: str) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The resources of a searchset (each validated) and its links by relation."""
    assert response.status_code == 200, response.text
    body = response.json()
    Bundle.model_validate(body)
    assert body["type"] == "searchset"
    entries = body.get("entry", [])
    for entry in entries:
        MODELS[kind].model_validate(entry["resource"])
        assert entry["fullUrl"].endswith(f"/fhir/{kind}/{entry['resource']['id']}")
    return [e["resource"] for e in entries], {link["relation"]: link["url"] for link in body["link"]}


def ids(resources: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for r in resources]


def outcome(response: Response, status: int, *words: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    body = response.json()
    OperationOutcome.model_validate(body)
    text = str(body["issue"][0]["diagnostics"])
    for word in words:
        assert word in text, text
    return text


def follow(api: ApiClient, url: str, user: str) -> Response:
    parts = urlsplit(url)
    return api.client.get(f"{parts.path}?{parts.query}", headers=api.headers(user))


# --- metadata ---------------------------------------------------------------------------------------------

def test_metadata_lists_exactly_the_routes_and_their_parameters(api: ApiClient, ward: Ward) -> None:
    response = api.client.get("/fhir/metadata")
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/fhir+json")
    statement = response.json()
    CapabilityStatement.model_validate(statement)
    assert statement["fhirVersion"] == "4.0.1"
    declared = {(r["type"], i["code"]) for r in statement["rest"][0]["resource"] for i in r["interaction"]
                if i["code"] not in ("create", "update", "patch")}
    updated = {(r["type"], i["code"]) for r in statement["rest"][0]["resource"] for i in r["interaction"]
               if i["code"] in ("update", "patch")}  # referral Tasks (tests/test_fhir_referrals.py)
    assert updated == {("Task", "update"), ("Task", "patch")} == {
        (route.path.split("/")[2], "update" if "PUT" in route.methods else "patch")
        for route in fhir_referral_updates_router.routes if isinstance(route, APIRoute) and "POST" not in route.methods}
    created = {(r["type"], i["code"]) for r in statement["rest"][0]["resource"] for i in r["interaction"]
               if i["code"] == "create"}  # encounter notifications taken in (tests/test_fhir_inbound.py)
    assert created == {("Encounter", "create"), ("QuestionnaireResponse", "create")}
    assert {"/fhir/Encounter", "/fhir/$process-message", "/fhir/$subscription-notification"} == {
        getattr(route, "path", "") for route in fhir_inbound_router.routes}
    assert [o["name"] for o in statement["rest"][0]["operation"]] == ["process-message"]
    routed = set()
    for route in fhir_router.routes:  # what the app includes under /fhir
        path = getattr(route, "path", "")
        if path.startswith("/fhir/") and path != "/fhir/metadata":
            parts = path.split("/")
            routed.add((parts[2], "read" if len(parts) == 4 else "search-type"))
    served = ("Patient", "Task", "CarePlan", "PlanDefinition", "ServiceRequest")
    assert declared == routed == {(k, i) for k in served for i in ("read", "search-type")}
    # every declared search parameter is taken (no 400), and a name not declared is refused
    for kind in statement["rest"][0]["resource"]:
        if kind["interaction"][0]["code"] == "create":
            continue
        names = [p["name"] for p in kind["searchParam"]]
        assert names == [p.name for r in RESOURCES if r.name == kind["type"] for p in r.params]
        samples = {"patient": ward.patient_of(0), "identifier": "urn:carepath:patient-id|pat-1", "birthdate": "1950",
                   "status": "active" if kind["type"] != "Task" else "ready",
                   "owner": ward.nurse, "business-status": "task_1", "_lastUpdated": "ge2020-01-01",
                   "_count": "5", "_offset": "0", "instantiates-canonical": "urn:carepath:pathway:fu",
                   "name": "f", "version": "1", "url": "urn:carepath:pathway:fu", "category": "food-insecurity",
                   "code": "fulfill", "focus": "ServiceRequest/sr-1"}
        for name in names:
            assert fhir(api, kind["type"], ward.lead, **{name: samples[name]}).status_code == 200, name
        outcome(fhir(api, kind["type"], ward.lead, colour="blue"), 400, "colour", *names)


# --- Task -------------------------------------------------------------------------------------------------

def test_a_task_reads_as_a_fhir_workflow_task_and_the_read_is_audited(api: ApiClient, ward: Ward) -> None:
    task_id, episode = ward.task_of(0), ward.episodes[0]
    task = resource(fhir(api, f"Task/{task_id}", ward.nurse), "Task")
    assert task["status"] == "ready" and task["intent"] == "order" and task["priority"] == "routine"
    assert task["businessStatus"]["text"] == "Call patient"
    assert task["for"] == {"reference": f"Patient/{ward.patient_of(0)}", "type": "Patient",
                           "identifier": {"system": "urn:carepath:patient-id", "value": "pat-1"}}
    assert task["basedOn"] == [{"reference": f"CarePlan/{episode['id']}", "display": "Episode enc-1"}]
    assert task["focus"]["reference"] == f"CarePlan/{episode['id']}"
    assert task["performerType"][0]["coding"][0] == {"system": "urn:carepath:group", "code": "ward-a"}
    assert task["meta"]["lastUpdated"] == task["authoredOn"] == task["lastModified"]
    assert "owner" not in task and "end" not in task["executionPeriod"]
    with api.engine.db.read() as session:
        reads = session.scalars(select(Event).where(Event.type == "record_viewed", Event.task_id == task_id)).all()
    assert [(e.actor, e.data["what"]) for e in reads] == [(ward.nurse, "task")]


def test_claiming_a_task_makes_it_owned_and_changed_later(api: ApiClient, ward: Ward, clock: ManualClock) -> None:
    before = clock()
    clock.advance(timedelta(hours=2))
    claimed = ward.task_of(1)
    assert api.post(f"/api/tasks/{claimed}/claim", ward.nurse).status_code == 200
    task = resource(fhir(api, f"Task/{claimed}", ward.nurse), "Task")
    assert task["owner"]["display"] == ward.nurse and task["meta"]["lastUpdated"] > task["authoredOn"]
    since = (before + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    found, _ = searchset(fhir(api, "Task", ward.nurse, _lastUpdated=f"ge{since}"), "Task")
    assert ids(found) == [claimed]
    found, _ = searchset(api.client.get("/fhir/Task", headers=api.headers(ward.nurse),
                                        params=[("_lastUpdated", f"lt{since}"), ("_lastUpdated", "ge2000")]), "Task")
    assert sorted(ids(found)) == sorted([ward.task_of(0), ward.task_of(2)])
    found, _ = searchset(fhir(api, "Task", ward.nurse, owner=f"Practitioner/{ward.nurse}"), "Task")
    assert ids(found) == [claimed]
    found, _ = searchset(fhir(api, "Task", ward.nurse, status="in-progress,on-hold"), "Task")
    assert found == []
    held = api.post(f"/api/tasks/{claimed}/hold", ward.nurse, {"reason": "patient in hospital"})
    assert held.status_code == 200, held.text
    found, _ = searchset(fhir(api, "Task", ward.nurse, status="on-hold"), "Task")
    assert ids(found) == [claimed] and found[0]["statusReason"] == {"text": "patient in hospital"}


def test_tasks_are_searched_by_patient_status_and_step(api: ApiClient, ward: Ward) -> None:
    found, _ = searchset(fhir(api, "Task", ward.nurse, patient=f"Patient/{ward.patient_of(1)}"), "Task")
    assert ids(found) == [ward.task_of(1)]
    found, _ = searchset(fhir(api, "Task", ward.nurse, status="ready", **{"business-status": "task_0"}), "Task")
    assert sorted(ids(found)) == sorted(ward.task_of(i) for i in range(3))
    found, _ = searchset(fhir(api, "Task", ward.nurse, **{"business-status": "urn:carepath:step:other|task_0"}),
                         "Task")
    assert found == []
    found, _ = searchset(fhir(api, "Task", ward.nurse, **{"business-status": "urn:carepath:step:fu|task_0"}), "Task")
    assert len(found) == 3
    found, _ = searchset(fhir(api, "Task", ward.nurse, status="failed"), "Task")
    assert found == []  # a valid code no CarePath state maps to


def test_paging_links_are_followable_both_ways(api: ApiClient, ward: Ward) -> None:
    first, links = searchset(fhir(api, "Task", ward.nurse, _count=2), "Task")
    assert len(first) == 2 and "previous" not in links and "_count=2" in links["self"]
    second, back = searchset(follow(api, links["next"], ward.nurse), "Task")
    assert len(second) == 1 and "next" not in back
    again, _ = searchset(follow(api, back["previous"], ward.nurse), "Task")
    assert ids(again) == ids(first)
    assert sorted(ids(first) + ids(second)) == sorted(ward.task_of(i) for i in range(3))
    narrowed, links = searchset(fhir(api, "Task", ward.nurse, _count=1, status="ready"), "Task")
    assert "status=ready" in links["next"] and len(narrowed) == 1


# --- visibility -------------------------------------------------------------------------------------------

def test_a_coordinator_of_another_team_sees_nothing(api: ApiClient, ward: Ward) -> None:
    for kind in ("Task", "CarePlan", "Patient"):
        found, _ = searchset(fhir(api, kind, ward.stranger), kind)
        assert found == []
    outcome(fhir(api, f"Patient/{ward.patient_of(0)}", ward.stranger), 404, "does not exist")
    outcome(fhir(api, f"Task/{ward.task_of(0)}", ward.stranger), 404, "does not exist")
    outcome(fhir(api, f"CarePlan/{ward.episodes[0]['id']}", ward.stranger), 404, "does not exist")
    with api.engine.db.read() as session:
        viewed = select(Event).where(Event.type == "record_viewed", Event.actor == ward.stranger)
        assert session.scalars(viewed).all() == []
    found, _ = searchset(fhir(api, "Task", ward.nurse), "Task")
    assert len(found) == 3


# --- CarePlan ---------------------------------------------------------------------------------------------

def test_an_episode_reads_as_a_care_plan_with_its_tasks(api: ApiClient, ward: Ward) -> None:
    episode = ward.episodes[0]
    plan = resource(fhir(api, f"CarePlan/{episode['id']}", ward.nurse), "CarePlan")
    assert plan["status"] == "active" and plan["intent"] == "plan"
    assert plan["instantiatesCanonical"] == ["urn:carepath:pathway:fu|1"]
    assert plan["identifier"] == [{"system": "urn:carepath:business-key", "value": "enc-1"}]
    assert plan["activity"] == [{"reference": {"reference": f"Task/{ward.task_of(0)}"}}]
    assert plan["subject"]["reference"] == f"Patient/{ward.patient_of(0)}" and "end" not in plan["period"]
    with api.engine.db.read() as session:
        reads = session.scalars(select(Event).where(Event.type == "record_viewed",
                                                    Event.instance_id == episode["id"])).all()
    assert [(e.actor, e.data["what"]) for e in reads] == [(ward.nurse, "instance")]


def test_care_plans_are_searched_by_patient_status_and_pathway(api: ApiClient, ward: Ward) -> None:
    cancelled = ward.episodes[2]["id"]
    assert api.post(f"/api/instances/{cancelled}/cancel", ward.lead, {"reason": "moved away"}).status_code == 200
    found, _ = searchset(fhir(api, "CarePlan", ward.lead, status="revoked"), "CarePlan")
    assert ids(found) == [cancelled] and found[0]["period"]["end"]
    found, _ = searchset(fhir(api, "CarePlan", ward.lead, patient=ward.patient_of(1)), "CarePlan")
    assert ids(found) == [ward.episodes[1]["id"]]
    for canonical, count in (("urn:carepath:pathway:fu", 3), ("urn:carepath:pathway:fu|1", 3),
                             ("urn:carepath:pathway:fu|2", 0), ("http://elsewhere.example/PlanDefinition/fu", 0)):
        found, _ = searchset(fhir(api, "CarePlan", ward.lead, **{"instantiates-canonical": canonical}), "CarePlan")
        assert len(found) == count, canonical
    found, _ = searchset(fhir(api, "CarePlan", ward.nurse, status="active,on-hold"), "CarePlan")
    assert sorted(ids(found)) == sorted(e["id"] for e in ward.episodes[:2])


# --- Patient ----------------------------------------------------------------------------------------------

def _describe(engine: CarePath, patient: str, demographics: Demographics) -> None:
    with UnitOfWork(engine) as uow:
        row = uow.session.get(PatientRow, patient)
        assert row is not None
        update_demographics(uow, Principal("adt-feed", Role.INTEGRATION), row, demographics)
        uow.commit()


def test_a_patient_reads_with_identifiers_and_demographics_and_the_read_is_audited(api: ApiClient,
                                                                                   ward: Ward) -> None:
    patient = ward.patient_of(0)
    _describe(ward.engine, patient, Demographics("Núñez", "José", date(1950, 3, 2), "555-0100", "1 Main St"))
    found = resource(fhir(api, f"Patient/{patient}", ward.nurse), "Patient")
    assert found["identifier"] == [{"system": "urn:carepath:patient-id", "value": "pat-1"}]
    assert (found["name"], found["birthDate"], found["active"]) == ([{"family": "Núñez", "given": ["José"]}],
                                                                    "1950-03-02", True)
    assert found["telecom"] == [{"system": "phone", "value": "555-0100"}]
    assert found["address"] == [{"text": "1 Main St"}]
    with api.engine.db.read() as session:
        reads = session.scalars(select(Event).where(Event.type == "record_viewed", Event.actor == ward.nurse)).all()
    assert [(e.data["what"], e.data["patient"]) for e in reads] == [("patient", patient)]


def test_patients_are_searched_by_identifier_name_and_birth_date(api: ApiClient, ward: Ward) -> None:
    _describe(ward.engine, ward.patient_of(0), Demographics("Núñez", "José", date(1950, 3, 2)))
    _describe(ward.engine, ward.patient_of(1), Demographics("Nash", "Ann", date(1962, 7, 1)))
    for params, expected in (({"identifier": "urn:carepath:patient-id|pat-2"}, [1]), ({"identifier": "pat-3"}, [2]),
                             ({"identifier": "urn:other|pat-2"}, []), ({"name": "n"}, [1, 0]),
                             ({"name": "JOS"}, [0]), ({"birthdate": "1950-03-02"}, [0]),
                             ({"birthdate": "ge1960"}, [1]), ({"name": "na", "birthdate": "lt1960"}, [])):
        found, _ = searchset(fhir(api, "Patient", ward.nurse, **params), "Patient")
        assert ids(found) == [ward.patient_of(i) for i in expected], params
    outcome(fhir(api, "Patient", ward.nurse, birthdate="1950-03-02T10:00Z"), 400, "birthdate")


def test_a_merged_patient_is_found_as_its_survivor_everywhere(api: ApiClient, ward: Ward) -> None:
    survivor, merged = ward.patient_of(0), ward.patient_of(1)
    admin = Principal("admin", Role.ADMIN)
    merge_patients(ward.engine, admin, survivor, merged, "same person registered twice")
    found, _ = searchset(fhir(api, "Patient", ward.nurse, identifier="urn:carepath:patient-id|pat-2"), "Patient")
    assert ids(found) == [survivor]
    assert found[0]["link"] == [{"other": {"reference": f"Patient/{merged}"}, "type": "replaces"}]
    old = resource(fhir(api, f"Patient/{merged}", ward.nurse), "Patient")
    assert old["active"] is False and old["link"] == [{"other": {"reference": f"Patient/{survivor}"},
                                                       "type": "replaced-by"}]
    task = resource(fhir(api, f"Task/{ward.task_of(1)}", ward.nurse), "Task")
    assert task["for"]["reference"] == f"Patient/{survivor}" and task["for"]["identifier"]["value"] == "pat-2"
    for by in (survivor, merged):
        tasks, _ = searchset(fhir(api, "Task", ward.nurse, patient=by), "Task")
        assert sorted(ids(tasks)) == sorted([ward.task_of(0), ward.task_of(1)])
        plans, _ = searchset(fhir(api, "CarePlan", ward.nurse, patient=f"Patient/{by}"), "CarePlan")
        assert len(plans) == 2 and {p["subject"]["reference"] for p in plans} == {f"Patient/{survivor}"}
    unmerge_patient(ward.engine, admin, merged, "two people after all")
    tasks, _ = searchset(fhir(api, "Task", ward.nurse, patient=merged), "Task")
    assert ids(tasks) == [ward.task_of(1)]


# --- PlanDefinition ---------------------------------------------------------------------------------------

def test_pathway_versions_read_and_search_as_plan_definitions(api: ApiClient, ward: Ward) -> None:
    found, _ = searchset(fhir(api, "PlanDefinition", ward.nurse, name="F"), "PlanDefinition")
    assert len(found) == 1
    plan = resource(fhir(api, f"PlanDefinition/{found[0]['id']}", ward.nurse), "PlanDefinition")
    assert (plan["url"], plan["version"], plan["status"]) == ("urn:carepath:pathway:fu", "1", "active")
    assert api.post("/api/pathways/fu/versions/1/retire", ward.lead).status_code == 204
    for params, count in (({"status": "retired"}, 1), ({"status": "active"}, 0), ({"version": "2"}, 0),
                          ({"url": "urn:carepath:pathway:fu", "version": "1"}, 1), ({"name": "x"}, 0)):
        found, _ = searchset(fhir(api, "PlanDefinition", ward.nurse, **params), "PlanDefinition")
        assert len(found) == count, params
    outcome(fhir(api, "PlanDefinition/999", ward.nurse), 404, "PlanDefinition/999")


# --- errors -----------------------------------------------------------------------------------------------

def test_errors_are_operation_outcomes_with_the_right_status(api: ApiClient, ward: Ward) -> None:
    response = fhir(api, "Task", None)
    outcome(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"
    outcome(fhir(api, "Task/nope", ward.nurse), 404, "Task/nope")
    outcome(fhir(api, "Task", ward.nurse, status="done"), 400, "status", "done")
    outcome(fhir(api, "Task", ward.nurse, _lastUpdated="yesterday"), 400, "_lastUpdated")
    outcome(fhir(api, "Task", ward.nurse, _count="0"), 400, "_count")
    for odd in ("2026-02-30", "9999-12-31", "le9999-12", "2026-01-05T10:00"):  # no such day, no end, no offset
        outcome(fhir(api, "Task", ward.nurse, _lastUpdated=odd), 400, "_lastUpdated")
    outcome(fhir(api, "PlanDefinition/99999999999", ward.nurse), 404, "PlanDefinition/99999999999")
    outcome(fhir(api, "Task", ward.nurse, _offset="10001"), 400, "_offset")
    outcome(fhir(api, "Task", ward.nurse, **{"status:not": "ready"}), 400, "modifiers")
    outcome(fhir(api, "Task", ward.nurse, owner="Patient/x"), 400, "Practitioner")
    outcome(api.client.get("/fhir/Task", headers=api.headers(ward.nurse), params=[("status", "ready")] * 2),
            400, "twice")
    outcome(fhir(api, "Task", ward.nurse, _format="xml"), 406, "_format=xml")
    outcome(api.client.get("/fhir/Task", headers={**api.headers(ward.nurse), "Accept": "application/fhir+xml"}),
            406, "Accept")
    assert fhir(api, "Task", ward.nurse, _format="application/fhir+json").status_code == 200
    outcome(fhir(api, "Observation", ward.nurse), 404, "metadata")
    outcome(api.client.post("/fhir/Task", headers=api.headers(ward.nurse), json={}), 405, "GET")
    outcome(api.client.get("/fhir/Task?status=re%00ady", headers=api.headers(ward.nurse)), 422, "status")
    sender = api.user("integration")
    outcome(fhir(api, "CarePlan", sender), 403, "integration")  # it reads only its referrals' Tasks
    assert fhir(api, "Task", sender).json().get("entry") is None
    # the JSON API keeps its own error shape
    assert api.get("/api/tasks/nope", ward.nurse).json()["error"] == "NotFound"


def test_odd_values_of_every_parameter_answer_200_or_400_never_500(api: ApiClient, ward: Ward) -> None:
    odd = ("Ñúñez", "a|b|c", ",", "Patient/", "/x", "ge", "-1", "1e9", "eq2026-13", "x" * 300, "%00", "'; drop")
    for kind in RESOURCES:
        for param in kind.params:
            for value in odd:
                response = fhir(api, kind.name, ward.lead, **{param.name: value})
                assert response.status_code in (200, 400), (kind.name, param.name, value, response.text)
                if response.status_code == 400:
                    outcome(response, 400, param.name)
                else:
                    searchset(response, kind.name)


def test_a_patient_is_readable_through_its_merge_links_but_tasks_stay_with_their_teams(api: ApiClient,
                                                                                        ward: Ward) -> None:
    assert api.deploy(ward.lead, ("gx.bpmn", d.linear_user_tasks("gx", "Visit", lane="Ward B"))).status_code == 201
    theirs = api.start(ward.lead, "gx", patient_id="pat-9").json()
    with api.engine.db.read() as session:
        survivor = str(session.scalar(select(Instance.patient_ref).where(Instance.id == theirs["id"])))
    merged = ward.patient_of(0)
    outcome(fhir(api, f"Patient/{merged}", ward.stranger), 404)
    merge_patients(ward.engine, Principal("admin", Role.ADMIN), survivor, merged, "same person")
    assert resource(fhir(api, f"Patient/{merged}", ward.stranger), "Patient")["active"] is False
    found, _ = searchset(fhir(api, "Patient", ward.stranger, identifier="pat-1"), "Patient")
    assert ids(found) == [survivor]
    tasks, _ = searchset(fhir(api, "Task", ward.stranger, patient=survivor), "Task")
    assert ids(tasks) == [theirs["open_tasks"][0]["id"]]  # ward A's task of pat-1 stays ward A's
    outcome(fhir(api, f"Patient/{ward.patient_of(1)}", ward.stranger), 404)


def test_a_break_glass_grant_opens_the_patient_in_fhir_too_and_each_read_names_it(api: ApiClient,
                                                                                   ward: Ward) -> None:
    patient, task = ward.patient_of(0), ward.task_of(0)
    outcome(fhir(api, f"Patient/{patient}", ward.stranger), 404)
    granted = api.post("/api/break-glass", ward.stranger, {"patient_id": "pat-1", "minutes": 30,
                                                          "reason": "patient arrived in the ED, team unreachable"})
    assert granted.status_code == 201, granted.text
    resource(fhir(api, f"Patient/{patient}", ward.stranger), "Patient")
    resource(fhir(api, f"Task/{task}", ward.stranger), "Task")
    found, _ = searchset(fhir(api, "Task", ward.stranger), "Task")
    assert ids(found) == [task]  # that patient's only, not the other patients of ward A
    with api.engine.db.read() as session:
        reads = session.scalars(select(Event).where(Event.type == "record_viewed", Event.actor == ward.stranger)
                                .order_by(Event.id)).all()
    assert [(e.data["what"], e.data.get("break_glass")) for e in reads] == [("patient", granted.json()["id"]),
                                                                            ("task", granted.json()["id"])]
