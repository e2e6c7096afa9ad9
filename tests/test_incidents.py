"""A failing script or condition puts the instance into incident; retry runs it again."""

from __future__ import annotations

from tests.support import diagrams as d
from tests.support.api import ApiClient


def test_failing_script_is_an_incident_and_retry_recovers(api: ApiClient) -> None:
    lead = api.user("clinical_lead")
    xml = d.dose_per_weight("inc")
    assert api.deploy(lead, ("inc.bpmn", xml)).status_code == 201
    started = api.start(lead, "inc").json()
    task_id = started["open_tasks"][0]["id"]
    failed = api.post(f"/api/tasks/{task_id}/complete", lead, {"data": {"dose": 10, "weight": 0}})
    assert failed.status_code == 200, failed.text
    body = failed.json()
    assert body["status"] == "incident" and body["incident"]["element_id"] == "compute"
    assert "division" in (body["incident"]["message"] + (body["incident"]["detail"] or "")).lower()
    # The coordinator's completion is kept: the task is completed, not lost.
    assert api.get(f"/api/tasks/{task_id}", lead).json()["state"] == "completed"
    assert api.post(f"/api/instances/{started['id']}/retry", lead).json()["status"] == "incident"
    from carepath.engine.persistence.tables import Instance

    with api.engine.db.write_sessions() as session:  # fix the data the way an admin tool would
        row = session.get(Instance, started["id"])
        assert row is not None
        row.state = row.state.replace('"weight":0', '"weight":5')
        session.commit()
    api.engine.workflows.clear()
    recovered = api.post(f"/api/instances/{started['id']}/retry", lead).json()
    assert recovered["status"] == "running" and recovered["incident"] is None
    assert [t["name"] for t in recovered["open_tasks"]] == ["Review"]
    assert recovered["data"]["per_kg"] == 2


def test_runaway_script_is_stopped_and_becomes_an_incident(api: ApiClient) -> None:
    lead = api.user("clinical_lead")
    api.deploy(lead, ("loop.bpmn", d.script_then_task("loop", "while True:\n    pass")))
    started = api.start(lead, "loop").json()
    assert started["status"] == "incident" and started["incident"]["element_id"] == "script"


def test_retry_without_incident_is_409(api: ApiClient) -> None:
    lead = api.user("clinical_lead")
    api.deploy(lead, ("fu.bpmn", d.linear_user_tasks("fu", "Call patient")))
    started = api.start(lead, "fu").json()
    assert api.post(f"/api/instances/{started['id']}/retry", lead).status_code == 409


def test_self_recursive_call_activity_becomes_an_incident(api: ApiClient) -> None:
    lead = api.user("clinical_lead")
    xml = d.call_activity("selfcall", "selfcall")
    response = api.deploy(lead, ("selfcall.bpmn", xml))
    if response.status_code == 422:  # refusing it at deploy time is the better answer
        assert "selfcall" in response.text
        return
    started = api.start(lead, "selfcall").json()
    assert started["status"] == "incident"


def test_retry_with_corrected_data_recovers_a_failed_start(api: ApiClient) -> None:
    lead = api.user("clinical_lead")
    api.deploy(lead, ("g.bpmn", d.definitions(d.process(
        "g", d.node("startEvent", "s"), d.node("exclusiveGateway", "gw", default="f_low"),
        d.node("userTask", "hi", "Urgent"), d.node("userTask", "lo", "Routine"), d.node("endEvent", "e1"),
        d.node("endEvent", "e2"), d.flow("f0", "s", "gw"), d.flow("f_hi", "gw", "hi", "risk_score > 5"),
        d.flow("f_low", "gw", "lo"), d.flow("f1", "hi", "e1"), d.flow("f2", "lo", "e2")))))
    started = api.start(lead, "g").json()  # no risk_score: the condition cannot be evaluated
    assert started["status"] == "incident" and "risk_score" in started["incident"]["message"] + str(
        started["incident"]["detail"])
    fixed = api.post(f"/api/instances/{started['id']}/retry", lead, {"data": {"risk_score": 9}}).json()
    assert fixed["status"] == "running" and [t["name"] for t in fixed["open_tasks"]] == ["Urgent"]


def test_a_retried_step_that_runs_to_the_end_completes_the_episode_from_incident(api: ApiClient) -> None:
    """incident -> completed is a row of the instance table (engine_complete), recorded as `completed`."""
    lead = api.user("clinical_lead")
    api.deploy(lead, ("last.bpmn", d.definitions(d.process(
        "last", d.node("startEvent", "s"),
        d.node("scriptTask", "script", "Compute", body="<bpmn:script>per_kg = dose / weight</bpmn:script>"),
        d.node("endEvent", "e"), d.flow("f1", "s", "script"), d.flow("f2", "script", "e")))))
    started = api.start(lead, "last", data={"dose": 10, "weight": 0}).json()
    assert started["status"] == "incident" and started["actions"] == ["cancel", "retry"]  # the starter's
    done = api.post(f"/api/instances/{started['id']}/retry", lead, {"data": {"weight": 5}}).json()
    assert done["status"] == "completed" and done["data"]["per_kg"] == 2 and done["actions"] == []
    history = api.get(f"/api/instances/{started['id']}/history", lead).json()["items"]
    changes = [(e["type"], e["data"].get("old"), e["data"].get("new")) for e in history
               if e["data"].get("field") == "status"]
    assert changes == [("incident", "running", "incident"), ("completed", "incident", "completed")]
