"""Break-glass access: a coordinator outside a patient's teams reads that patient's record for a limited
time after giving a reason; the grant and every read under it are in the audit trail for the auditors."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from carepath.engine.application import CarePath
from carepath.engine.clock import ManualClock
from carepath.engine.errors import PermissionDenied, ValidationFailed
from carepath.engine.identity import Principal, Role
from carepath.engine.usecases.break_glass import break_glass, with_break_glass
from carepath.engine.usecases.instances import get_instance_view
from carepath.engine.usecases.tasks import claim_task
from tests.support import diagrams as d
from tests.support.api import ApiClient

REASON = "patient arrived in the emergency room, their team is unreachable"


@dataclass
class Ward:
    lead: str
    nurse: str  # a coordinator of another team
    colleague: str  # another coordinator of that other team
    mine: dict  # the instance of pat-1 (ward A)
    other: dict  # the instance of pat-2 (ward A)

    @property
    def task_id(self) -> str:
        return str(self.mine["open_tasks"][0]["id"])


@pytest.fixture
def ward(api: ApiClient) -> Ward:
    lead = api.user("clinical_lead")
    assert api.deploy(lead, ("fu.bpmn", d.linear_user_tasks("fu", "Call patient", lane="Ward A"))).status_code == 201
    mine = api.start(lead, "fu", patient_id="pat-1").json()
    other = api.start(lead, "fu", patient_id="pat-2").json()
    return Ward(lead, api.user("coordinator", "ward-b"), api.user("coordinator", "ward-b"), mine, other)


def _grant(api: ApiClient, user: str, patient_id: str = "pat-1", minutes: int = 30) -> dict:
    response = api.post("/api/break-glass", user, {"patient_id": patient_id, "reason": REASON, "minutes": minutes})
    assert response.status_code == 201, response.text
    return dict(response.json())


def _ready_tasks_of(api: ApiClient, user: str, patient_id: str) -> list[dict]:
    return list(api.get("/api/tasks", user, params={"patient_id": patient_id}).json()["items"])


def test_a_grant_lets_that_user_read_that_patient_until_it_expires(api: ApiClient, ward: Ward,
                                                                    clock: ManualClock) -> None:
    instance = f"/api/instances/{ward.mine['id']}"
    assert api.get(instance, ward.nurse).status_code == 404
    assert _ready_tasks_of(api, ward.nurse, "pat-1") == []

    grant = _grant(api, ward.nurse, minutes=30)
    assert grant["active"] and grant["user"] == ward.nurse and grant["patient_id"] == "pat-1"

    assert api.get(instance, ward.nurse).status_code == 200
    assert api.get(f"{instance}/history", ward.nurse).status_code == 200
    assert api.get(f"/api/tasks/{ward.task_id}", ward.nurse).status_code == 200
    assert [t["id"] for t in _ready_tasks_of(api, ward.nurse, "pat-1")] == [ward.task_id]
    listed = api.get("/api/instances", ward.nurse, params={"patient_id": "pat-1"}).json()["items"]
    assert [i["id"] for i in listed] == [ward.mine["id"]]
    # only that patient, only that user
    assert api.get(f"/api/instances/{ward.other['id']}", ward.nurse).status_code == 404
    assert api.get(instance, ward.colleague).status_code == 404

    clock.advance(minutes=29)
    assert api.get(instance, ward.nurse).status_code == 200
    clock.advance(minutes=1)
    assert api.get(instance, ward.nurse).status_code == 404
    assert _ready_tasks_of(api, ward.nurse, "pat-1") == []
    assert api.get("/api/break-glass", ward.nurse).json() == []


def test_a_grant_reads_and_does_not_act(api: ApiClient, ward: Ward) -> None:
    _grant(api, ward.nurse)
    task = api.get(f"/api/tasks/{ward.task_id}", ward.nurse).json()
    assert task["actions"] == []
    assert api.get(f"/api/instances/{ward.mine['id']}", ward.nurse).json()["actions"] == []
    claim = api.post(f"/api/tasks/{ward.task_id}/claim", ward.nurse)
    assert claim.status_code == 403 and "break-glass" in claim.json()["message"]
    cancel = api.post(f"/api/instances/{ward.mine['id']}/cancel", ward.nurse, {"reason": "no"})
    assert cancel.status_code == 403 and "break-glass" in cancel.json()["message"]
    # another patient's task is still simply not found
    other_task = ward.other["open_tasks"][0]["id"]
    assert api.post(f"/api/tasks/{other_task}/claim", ward.nurse).status_code == 404


def test_the_reason_is_required_and_bounded_and_so_is_the_time(api: ApiClient, ward: Ward) -> None:
    def asked(**body: object) -> tuple[int, list[str]]:
        response = api.post("/api/break-glass", ward.nurse, {"patient_id": "pat-1", "reason": REASON, **body})
        return response.status_code, [str(e.get("loc", e.get("field"))) for e in response.json().get("errors") or []]

    assert asked(reason="")[0] == 422
    status, fields = asked(reason="   urgent  ")
    assert status == 422 and any("reason" in f for f in fields)
    assert asked(reason="x" * 1001)[0] == 422
    assert asked(minutes=0)[0] == 422 and asked(minutes=241)[0] == 422
    assert api.post("/api/break-glass", ward.nurse, {"reason": REASON}).status_code == 422
    assert api.get("/api/break-glass", ward.nurse).json() == []
    assert api.get(f"/api/instances/{ward.mine['id']}", ward.nurse).status_code == 404


@pytest.mark.parametrize("role", ["clinical_lead", "auditor"])
def test_roles_outside_the_rule_are_refused(api: ApiClient, ward: Ward, role: str) -> None:
    user = api.user(role)
    response = api.post("/api/break-glass", user, {"patient_id": "pat-1", "reason": REASON})
    assert response.status_code == 403 and "coordinator, supervisor" in response.json()["message"]


def test_supervisors_may_break_the_glass(api: ApiClient, ward: Ward) -> None:
    supervisor = api.user("supervisor", "ward-c")
    assert api.get(f"/api/instances/{ward.mine['id']}", supervisor).status_code == 404
    _grant(api, supervisor)
    assert api.get(f"/api/instances/{ward.mine['id']}", supervisor).status_code == 200


def _reads(api: ApiClient, auditor: str, user: str) -> list[dict]:
    events = api.get("/api/audit/events", auditor, params={"type": "record_viewed", "user": user}).json()["items"]
    return list(events)


def test_reads_under_a_grant_are_marked_and_listed_for_the_auditors(api: ApiClient, ward: Ward,
                                                                     clock: ManualClock) -> None:
    auditor = api.user("auditor")
    api.get(f"/api/tasks/{ward.task_id}", ward.nurse)  # refused: not recorded
    grant = _grant(api, ward.nurse)
    api.get(f"/api/instances/{ward.mine['id']}", ward.nurse)
    api.get(f"/api/tasks/{ward.task_id}", ward.nurse)
    api.get(f"/api/instances/{ward.mine['id']}", ward.lead)  # the lead reads everything: no grant
    reads = _reads(api, auditor, ward.nurse)
    assert sorted(r["data"]["what"] for r in reads) == ["instance", "task"]
    assert {r["data"]["break_glass"] for r in reads} == {grant["id"]}
    assert all("break_glass" not in r["data"] for r in _reads(api, auditor, ward.lead))

    assert api.get("/api/audit/break-glass", ward.nurse).status_code == 403
    [review] = api.get("/api/audit/break-glass", auditor).json()
    assert review["grant"]["id"] == grant["id"] and review["grant"]["reason"] == REASON
    assert review["grant"]["user"] == ward.nurse and review["grant"]["patient_id"] == "pat-1"
    assert review["reads_total"] == 2 and {r["what"] for r in review["reads"]} == {"instance", "task"}
    assert api.get("/api/audit/break-glass", auditor, params={"limit": 0}).status_code == 422

    clock.advance(hours=2)
    [review] = api.get("/api/audit/break-glass", auditor).json()
    assert review["grant"]["active"] is False
    granted = api.get("/api/audit/events", auditor, params={"type": "break_glass_granted"}).json()["items"]
    assert [(e["actor"], e["data"]["patient_id"], e["data"]["reason"]) for e in granted] == [
        (ward.nurse, "pat-1", REASON)]


def test_the_fhir_export_says_emergency_treatment(api: ApiClient, ward: Ward) -> None:
    auditor = api.user("auditor")
    _grant(api, ward.nurse)
    api.get(f"/api/instances/{ward.mine['id']}", ward.nurse)
    exported = api.get("/api/audit/export", auditor, params={"format": "fhir", "user": ward.nurse})
    resources = [json.loads(line) for line in exported.text.splitlines()]
    purposes = {r["subtype"][-1]["code"]: r.get("purposeOfEvent") for r in resources}
    assert purposes["break_glass_granted"][0]["coding"][0]["code"] == "ETREAT"
    assert purposes["record_viewed"][0]["coding"][0]["code"] == "ETREAT"
    granted = next(r for r in resources if r["subtype"][-1]["code"] == "break_glass_granted")
    assert {"urn:carepath:patient-id"} <= {e["what"]["identifier"]["system"] for e in granted["entity"] if "what" in e}


def test_the_engine_widens_its_own_visibility(engine: CarePath, api: ApiClient, ward: Ward,
                                              clock: ManualClock) -> None:
    nurse = Principal(ward.nurse, Role.COORDINATOR, frozenset({"ward-b"}))
    with pytest.raises(ValidationFailed):
        break_glass(engine, nurse, "pat-1", "  ")
    with pytest.raises(PermissionDenied):
        break_glass(engine, Principal("a", Role.AUDITOR), "pat-1", REASON)
    grant = break_glass(engine, nurse, "pat-1", REASON, minutes=5)
    assert (grant.expires_at - grant.granted_at).total_seconds() == 300
    now_nurse = with_break_glass(engine, nurse)
    assert now_nurse.break_glass == (("pat-1", grant.id),)
    assert get_instance_view(engine, ward.mine["id"], now_nurse).patient_id == "pat-1"
    with pytest.raises(PermissionDenied):
        claim_task(engine, now_nurse, ward.task_id)
    clock.advance(minutes=5)
    assert with_break_glass(engine, nurse).break_glass == ()


def test_the_holder_ends_their_grant_early_and_it_widens_nothing_from_then(api: ApiClient, ward: Ward,
                                                                           clock: ManualClock) -> None:
    grant = _grant(api, ward.nurse, minutes=60)
    assert grant["actions"] == ["end"]
    instance = f"/api/instances/{ward.mine['id']}"
    assert api.get(instance, ward.nurse).status_code == 200
    clock.advance(minutes=5)
    ended = api.post(f"/api/break-glass/{grant['id']}/end", ward.nurse)
    assert ended.status_code == 200, ended.text
    assert ended.json()["ended_at"] is not None and not ended.json()["active"] and ended.json()["actions"] == []
    assert api.get(instance, ward.nurse).status_code == 404
    assert api.get("/api/break-glass", ward.nurse).json() == []
    again = api.post(f"/api/break-glass/{grant['id']}/end", ward.nurse)
    assert again.status_code == 409 and "ended" in again.json()["message"]
    auditor = api.user("auditor")
    history = api.get("/api/audit/events", auditor, params={"type": "break_glass_ended"}).json()["items"]
    assert [(e["actor"], e["data"]["grant"], e["data"]["user"]) for e in history] == [
        (ward.nurse, grant["id"], ward.nurse)]
    [review] = api.get("/api/audit/break-glass", auditor).json()
    assert review["grant"]["ended_at"] == ended.json()["ended_at"]


def test_an_auditor_or_admin_ends_anyones_grant_and_nobody_else_may(api: ApiClient, ward: Ward,
                                                                    clock: ManualClock) -> None:
    first, second = _grant(api, ward.nurse), _grant(api, ward.nurse, patient_id="pat-2")
    supervisor = api.user("supervisor", "ward-b")
    # another coordinator or supervisor: someone else's grant does not exist for them
    assert api.post(f"/api/break-glass/{first['id']}/end", ward.colleague).status_code == 404
    assert api.post(f"/api/break-glass/{first['id']}/end", supervisor).status_code == 404
    assert api.post("/api/break-glass/999999/end", ward.nurse).status_code == 404
    # roles outside the rule: refused before anything is read
    assert api.post(f"/api/break-glass/{first['id']}/end", ward.lead).status_code == 403
    auditor, admin = api.user("auditor"), api.user("admin")
    reviews = {r["grant"]["id"]: r["grant"] for r in api.get("/api/audit/break-glass", auditor).json()}
    assert reviews[first["id"]]["actions"] == ["end"]
    assert api.post(f"/api/break-glass/{first['id']}/end", auditor).status_code == 200
    assert api.post(f"/api/break-glass/{second['id']}/end", admin).status_code == 200
    assert api.get("/api/break-glass", ward.nurse).json() == []
    history = api.get("/api/audit/events", auditor, params={"type": "break_glass_ended"}).json()["items"]
    assert sorted(e["data"]["ended_by"] for e in history) == sorted([auditor, admin])
    clock.advance(minutes=31)  # an expired grant cannot be ended
    third = _grant(api, ward.nurse, minutes=1)
    clock.advance(minutes=1)
    assert api.post(f"/api/break-glass/{third['id']}/end", ward.nurse).status_code == 409
