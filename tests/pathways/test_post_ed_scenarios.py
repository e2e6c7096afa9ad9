"""A patient's story through the shipped post-ED pathway, over the API, with a controlled clock."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from carepath.api.app import create_app
from carepath.api.settings import Settings
from carepath.engine.application import CarePath
from carepath.engine.clock import ManualClock
from carepath.engine.usecases.timers import fire_due_timers
from tests.support.api import ApiClient

KEY = "post-ed-follow-up"


def _start(api: ApiClient, lead: str, diagnosis: str, chronic: int = 0) -> dict:
    response = api.start(lead, KEY, patient_id="pat-1", data={
        "ed_visit_date": "2026-01-05", "diagnosis_category": diagnosis, "high_risk_chronic_conditions": chronic})
    assert response.status_code == 201, response.text
    return response.json()


def _task(instance: dict, name: str) -> str:
    return next(t["id"] for t in instance["open_tasks"] if t["name"] == name)


def _names(api: ApiClient, user: str, instance_id: str) -> list[str]:
    return sorted(t["name"] for t in api.get(f"/api/instances/{instance_id}", user).json()["open_tasks"])


def test_shipped_pathway_is_deployed_at_start_up_once(shipped: ApiClient, engine: CarePath,
                                                      database_url: str) -> None:
    lead = shipped.user("clinical_lead")
    [pathway] = [p for p in shipped.get("/api/pathways", lead).json() if p["key"] == KEY]
    assert pathway["version"] == 1 and pathway["family"] == "camunda"
    settings = Settings(database_url=database_url, deploy_shipped_pathways=True, scheduler_enabled=False)
    with TestClient(create_app(settings, engine)):  # a restart deploys nothing new
        pass
    assert [v["version"] for v in shipped.get(f"/api/pathways/{KEY}", lead).json()["versions"]] == [1]


@pytest.mark.parametrize(("diagnosis", "chronic", "measure"), [
    ("mental_illness", 0, "FUM"), ("substance_use", 0, "FUA"), ("injury", 2, "FMC"), ("injury", 0, "general")])
def test_the_decision_classifies_the_visit(shipped: ApiClient, diagnosis: str, chronic: int, measure: str) -> None:
    lead = shipped.user("clinical_lead")
    instance = _start(shipped, lead, diagnosis, chronic)
    assert instance["data"]["measure"] == measure
    assert [t["name"] for t in instance["open_tasks"]] == ["Call patient"]


def test_reached_patient_visit_reported_episode_closed(shipped: ApiClient, clock: ManualClock) -> None:
    lead = shipped.user("clinical_lead")
    coordinator = shipped.user("coordinator", "care-coordinator")
    instance = _start(shipped, lead, "mental_illness")
    clock.advance(days=1, minutes=1)
    fire_due_timers(shipped.engine)
    assert _names(shipped, lead, instance["id"]) == ["Call patient", "Reminder: call patient not yet done"]
    current = shipped.get(f"/api/instances/{instance['id']}", lead).json()
    called = shipped.post(f"/api/tasks/{_task(current, 'Call patient')}/complete", coordinator,
                          {"data": {"reached": True, "call_notes": "spoke with patient"}}).json()
    assert "Schedule follow-up visit" in [t["name"] for t in called["open_tasks"]]
    scheduled = shipped.post(f"/api/tasks/{_task(called, 'Schedule follow-up visit')}/complete", coordinator,
                             {"data": {"follow_up_date": "2026-01-09", "follow_up_provider": "Dr Lee"}}).json()
    waits = {(w["type"], w.get("message_name")) for w in scheduled["waiting"]}
    assert ("message", "visit_completed") in waits and ("timer", None) in waits
    sent = shipped.post("/api/messages", coordinator, {"name": "visit_completed", "correlation_key":
                                                       instance["business_key"], "data": {"visit_date": "2026-01-09"}})
    assert sent.json()["outcome"] == "delivered"
    after = shipped.get(f"/api/instances/{instance['id']}", lead).json()
    assert "Close episode" in [t["name"] for t in after["open_tasks"]]
    assert not [w for w in after["waiting"] if w["type"] == "timer"]  # the 7-day race is over


def test_unreached_patient_escalates_to_the_supervisor_after_two_days(shipped: ApiClient,
                                                                     clock: ManualClock) -> None:
    lead = shipped.user("clinical_lead")
    supervisor = shipped.user("coordinator", "care-team-supervisor")
    instance = _start(shipped, lead, "substance_use")
    clock.advance(days=2, minutes=1)
    fire_due_timers(shipped.engine)
    current = shipped.get(f"/api/instances/{instance['id']}", lead).json()
    escalation = next(t for t in current["open_tasks"] if t["name"] == "Escalation: patient not reached")
    assert escalation["lane"] == "Care Team Supervisor"
    assert "Call patient" not in [t["name"] for t in current["open_tasks"]]
    closed = shipped.post(f"/api/tasks/{escalation['id']}/complete", supervisor,
                          {"data": {"follow_up_possible": False}}).json()
    assert "Escalation: patient not reached" not in [t["name"] for t in closed["open_tasks"]]


def test_no_visit_within_seven_days_asks_the_coordinator_to_confirm(shipped: ApiClient, clock: ManualClock) -> None:
    lead = shipped.user("clinical_lead")
    coordinator = shipped.user("coordinator", "care-coordinator")
    instance = _start(shipped, lead, "mental_illness")
    called = shipped.post(f"/api/tasks/{_task(instance, 'Call patient')}/complete", coordinator,
                          {"data": {"reached": True}}).json()
    shipped.post(f"/api/tasks/{_task(called, 'Schedule follow-up visit')}/complete", coordinator, {"data": {}})
    clock.advance(days=7, minutes=1)
    fire_due_timers(shipped.engine)
    assert "Follow-up window closing: confirm visit" in _names(shipped, lead, instance["id"])


def test_completion_is_checked_against_the_form_field_by_field(shipped: ApiClient) -> None:
    lead = shipped.user("clinical_lead")
    coordinator = shipped.user("coordinator", "care-coordinator")
    instance = _start(shipped, lead, "mental_illness")
    task_id = _task(instance, "Call patient")
    form = shipped.get(f"/api/tasks/{task_id}/form", coordinator).json()
    assert form["schema"]["properties"]["reached"]["type"] == "boolean"
    bad = shipped.post(f"/api/tasks/{task_id}/complete", coordinator,
                       {"data": {"reached": "true", "notes": "typo in the field name"}})
    assert bad.status_code == 422
    errors = bad.json()["errors"]
    assert {e.get("field") for e in errors} >= {"reached"}
    assert any("notes" in e["message"] for e in errors)
    missing = shipped.post(f"/api/tasks/{task_id}/complete", coordinator, {"data": {"call_notes": "no answer"}})
    assert missing.status_code == 422  # `reached` is required (a constraint with no config attribute)
    assert any("reached" in e["message"] for e in missing.json()["errors"])
    # Nothing was stored: the task is still ready and the instance did not move.
    assert shipped.get(f"/api/tasks/{task_id}", coordinator).json()["state"] == "ready"
    good = shipped.post(f"/api/tasks/{task_id}/complete", coordinator, {"data": {"reached": True}})
    assert good.status_code == 200
