"""Running instances over HTTP: start, tasks, completion, cancel, lists."""

from __future__ import annotations

from datetime import UTC, datetime

from carepath.engine.clock import ManualClock
from tests.support import diagrams as d
from tests.support.api import ApiClient


def _deploy(api: ApiClient, xml: str, name: str = "p.bpmn") -> str:
    lead = api.user("clinical_lead")
    response = api.deploy(lead, (name, xml))
    assert response.status_code == 201, response.text
    return lead


def test_start_returns_201_with_open_tasks(api: ApiClient) -> None:
    lead = _deploy(api, d.linear_user_tasks("fu", "Call patient", lane="Care Coordinator"))
    response = api.start(lead, "fu", business_key="enc-1", patient_id="pat-1", data={"age": 70})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "running" and body["business_key"] == "enc-1" and body["patient_id"] == "pat-1"
    assert body["data"]["age"] == 70
    [task] = body["open_tasks"]
    assert (task["name"], task["lane"], task["state"]) == ("Call patient", "Care Coordinator", "ready")
    assert body["created_at"].endswith(("Z", "+00:00"))


def test_same_business_key_twice_is_409_until_the_first_ends(api: ApiClient) -> None:
    lead = _deploy(api, d.linear_user_tasks("fu", "Call patient"))
    first = api.start(lead, "fu", business_key="enc-9").json()
    assert api.start(lead, "fu", business_key="enc-9").status_code == 409
    api.post(f"/api/instances/{first['id']}/cancel", lead, {"reason": "entered in error"})
    assert api.start(lead, "fu", business_key="enc-9").status_code == 201


def test_complete_runs_on_and_second_completion_is_409(api: ApiClient) -> None:
    lead = _deploy(api, d.linear_user_tasks("fu", "Call patient", "Book visit"))
    coordinator = api.user("coordinator")
    started = api.start(lead, "fu").json()
    task_id = started["open_tasks"][0]["id"]
    done = api.post(f"/api/tasks/{task_id}/complete", coordinator, {"data": {"reached": True}})
    assert done.status_code == 200, done.text
    assert [t["name"] for t in done.json()["open_tasks"]] == ["Book visit"]
    assert done.json()["data"]["reached"] is True
    again = api.post(f"/api/tasks/{task_id}/complete", coordinator, {"data": {}})
    assert again.status_code == 409
    task = api.get(f"/api/tasks/{task_id}", coordinator).json()
    assert (task["state"], task["completed_by"]) == ("completed", coordinator)


def test_completing_the_last_task_completes_the_instance(api: ApiClient) -> None:
    lead = _deploy(api, d.linear_user_tasks("fu", "Call patient"))
    started = api.start(lead, "fu").json()
    done = api.post(f"/api/tasks/{started['open_tasks'][0]['id']}/complete", lead, {"data": {}}).json()
    assert done["status"] == "completed" and done["open_tasks"] == [] and done["ended_at"]


def test_gateway_condition_routes_on_task_data(api: ApiClient) -> None:
    lead = _deploy(api, d.gateway_on("risk", "risk_score >= 7"))
    for score, expected in ((9, "Urgent visit"), (2, "Routine visit")):
        started = api.start(lead, "risk").json()
        done = api.post(f"/api/tasks/{started['open_tasks'][0]['id']}/complete", lead,
                        {"data": {"risk_score": score}}).json()
        assert [t["name"] for t in done["open_tasks"]] == [expected]


def test_cancel_needs_reason_and_cancels_open_tasks(api: ApiClient) -> None:
    lead = _deploy(api, d.linear_user_tasks("fu", "Call patient"))
    started = api.start(lead, "fu").json()
    assert api.post(f"/api/instances/{started['id']}/cancel", lead, {}).status_code == 422
    cancelled = api.post(f"/api/instances/{started['id']}/cancel", lead, {"reason": "patient moved"})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    task = api.get(f"/api/tasks/{started['open_tasks'][0]['id']}", lead).json()
    assert task["state"] == "cancelled"
    assert api.post(f"/api/tasks/{task['id']}/complete", lead, {"data": {}}).status_code == 409
    assert api.post(f"/api/instances/{started['id']}/cancel", lead, {"reason": "again"}).status_code == 409


def test_lists_filter_and_page(api: ApiClient) -> None:
    lead = _deploy(api, d.linear_user_tasks("fu", "Call patient", lane="Care Coordinator"))
    ids = [api.start(lead, "fu", patient_id=f"pat-{i % 2}").json()["id"] for i in range(5)]
    page = api.get("/api/instances", lead, params={"patient_id": "pat-0", "limit": 2}).json()
    assert page["total"] == 3 and len(page["items"]) == 2
    assert "open_tasks" not in page["items"][0]  # the list is a summary; the instance has the details
    rest = api.get("/api/instances", lead, params={"patient_id": "pat-0", "limit": 2, "offset": 2}).json()
    assert {i["id"] for i in page["items"] + rest["items"]} <= set(ids) and len(rest["items"]) == 1
    auditor = api.user("auditor")
    tasks = api.get("/api/tasks", auditor, params={"lane": "Care Coordinator", "state": "ready"}).json()
    assert tasks["total"] == 5
    assert api.get("/api/tasks", lead).json()["total"] == 0  # offered to care-coordinator, not to the lead
    one = api.get("/api/tasks", auditor, params={"instance_id": ids[0]}).json()
    assert [t["instance_id"] for t in one["items"]] == [ids[0]]
    assert api.get("/api/instances", lead, params={"status": "bogus"}).status_code == 422


def test_auditor_reads_but_cannot_start(api: ApiClient) -> None:
    lead = _deploy(api, d.linear_user_tasks("fu", "Call patient"))
    auditor = api.user("auditor")
    started = api.start(lead, "fu").json()
    assert api.get(f"/api/instances/{started['id']}", auditor).status_code == 200
    assert api.start(auditor, "fu").status_code == 403


def test_bad_bodies_are_422_with_a_message(api: ApiClient) -> None:
    lead = _deploy(api, d.linear_user_tasks("fu", "Call patient"))
    response = api.post("/api/pathways/fu/instances", lead, {"patient_id": "p"})
    assert response.status_code == 422 and "business_key" in response.text
    assert api.post("/api/pathways/fu/instances", lead, {"business_key": "b", "data": [1]}).status_code == 422
    assert api.get("/api/instances/does-not-exist", lead).status_code == 404
    assert api.post("/api/tasks/nope/complete", lead, {"data": {}}).status_code == 404


def test_instance_data_drops_a_variable_a_script_deleted(api: ApiClient) -> None:
    lead = api.user("clinical_lead")
    xml = d.script_then_task("dl", "temporary = 1\nkept = 2\ndel temporary")
    assert api.deploy(lead, ("dl.bpmn", xml)).status_code == 201
    started = api.start(lead, "dl", data={"temporary": 0, "start": "yes"}).json()
    assert started["data"].get("kept") == 2 and started["data"].get("start") == "yes"
    assert "temporary" not in started["data"]


def test_lists_filter_by_the_day_or_instant_they_started(api: ApiClient, clock: ManualClock) -> None:
    lead = _deploy(api, d.linear_user_tasks("fu", "Call patient"))
    zone = api.engine.time_context().tz
    started = {}
    for day in (1, 2, 3):
        clock.set(datetime(2026, 11, day, 23, 30, tzinfo=zone))  # late in the care setting's day
        started[day] = api.start(lead, "fu").json()["id"]

    def ids(**period: str) -> list[str]:
        answer = api.get("/api/instances", lead, params=period)
        assert answer.status_code == 200, answer.text
        return [item["id"] for item in answer.json()["items"]]

    assert ids(started_from="2026-11-02") == [started[3], started[2]]  # the day in the pathway's zone
    assert ids(started_to="2026-11-02") == [started[2], started[1]]  # the day `to` names is included
    assert ids(started_from="2026-11-02", started_to="2026-11-02") == [started[2]]
    instant = datetime(2026, 11, 2, 23, 30, tzinfo=zone).astimezone(UTC)
    assert ids(started_from=instant.isoformat()) == [started[3], started[2]]  # an instant: at or after
    assert ids(started_to=instant.isoformat()) == [started[1]]  # before
    for bad in ("2026-13-01", "yesterday", "2026-11-02T10:00"):  # the last has no offset
        refused = api.get("/api/instances", lead, params={"started_from": bad})
        assert refused.status_code == 422 and "started_from" in refused.text, bad
    backwards = api.get("/api/instances", lead, params={"started_from": "2026-11-03", "started_to": "2026-11-01"})
    assert backwards.status_code == 422
    assert backwards.json()["errors"] == [{**backwards.json()["errors"][0], "field": "started_to"}]
    assert "'started_to' must be after 'started_from'" in backwards.json()["message"]
