"""Every state change is in the history with what changed: old and new values for assignment, status
and form data, and the reason when the pathway or the scheduler ended work nobody finished."""

from __future__ import annotations

from typing import Any

from carepath.engine.clock import ManualClock
from carepath.engine.usecases.timers import fire_due_timers
from tests.support import diagrams as d
from tests.support.api import ApiClient


def _history(api: ApiClient, user: str, instance_id: str) -> dict[str, Any]:
    response = api.get(f"/api/instances/{instance_id}/history", user)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _of(history: dict[str, Any], *types: str) -> list[dict[str, Any]]:
    return [e for e in history["items"] if e["type"] in types]


def test_saving_drafts_records_the_claim_and_each_values_old_and_new(api: ApiClient, clock: ManualClock) -> None:
    lead = api.user("clinical_lead")
    coordinator = api.user("coordinator", name="sam")
    api.deploy(lead, ("fu.bpmn", d.linear_user_tasks("fu", "Call patient", "Book visit")))
    started = api.start(lead, "fu").json()
    task = started["open_tasks"][0]["id"]
    clock.advance(minutes=5)
    first = api.client.put(f"/api/tasks/{task}/draft", headers=api.headers(coordinator),
                           json={"data": {"provider": "Dr A", "note": "left voicemail"}})
    assert first.status_code == 200, first.text
    clock.advance(minutes=5)
    api.client.put(f"/api/tasks/{task}/draft", headers=api.headers(coordinator), json={"data": {"provider": "Dr B"}})
    history = _history(api, lead, started["id"])
    claimed, saved, again = _of(history, "task_claimed", "task_draft_saved")
    assert (claimed["actor"], claimed["data"]) == ("sam", {"field": "assignee", "old": None, "new": "sam",
                                                           "name": "Call patient",
                                                           "reason": "claimed by saving a draft"})
    assert saved["data"] == {"name": "Call patient", "fields": ["note", "provider"], "field": "state",
                             "old": "ready", "new": "in-progress",
                             "changes": {"note": {"old": None, "new": "left voicemail"},
                                         "provider": {"old": None, "new": "Dr A"}}}
    assert again["data"] == {"name": "Call patient", "fields": ["provider"],
                             "changes": {"note": {"old": "left voicemail", "new": None},
                                         "provider": {"old": "Dr A", "new": "Dr B"}}}
    [timeline] = [t for t in history["tasks"] if t["task_id"] == task]
    assert (timeline["claimed_by"], timeline["claimed_at"]) == ("sam", claimed["at"])
    assert timeline["claimed_at"] != timeline["created_at"]


def test_completing_records_the_claim_the_state_and_what_the_data_replaced(api: ApiClient,
                                                                          clock: ManualClock) -> None:
    lead = api.user("clinical_lead")
    api.deploy(lead, ("fu.bpmn", d.linear_user_tasks("fu", "Call patient", "Book visit")))
    started = api.start(lead, "fu", data={"phone": "555-0100"}).json()
    clock.advance(hours=1)
    call = started["open_tasks"][0]["id"]
    done = api.post(f"/api/tasks/{call}/complete", lead, {"data": {"phone": "555-0199", "reached": True}}).json()
    clock.advance(hours=1)
    api.post(f"/api/tasks/{done['open_tasks'][0]['id']}/complete", lead, {"data": {"reached": False}})
    history = _history(api, lead, started["id"])
    claims = _of(history, "task_claimed")
    assert [c["data"]["reason"] for c in claims] == ["claimed by completing"] * 2
    first, second = _of(history, "task_completed")
    assert first["data"]["changes"] == {"phone": {"old": "555-0100", "new": "555-0199"},
                                        "reached": {"old": None, "new": True}}
    assert (first["data"]["field"], first["data"]["old"], first["data"]["new"]) == ("state", "ready", "completed")
    assert second["data"]["changes"] == {"reached": {"old": True, "new": False}}
    [ended] = _of(history, "completed")
    assert ended["data"] == {"field": "status", "old": "running", "new": "completed"}
    [timeline, _] = history["tasks"]
    assert (timeline["claimed_by"], timeline["claimed_at"]) == (lead, first["at"])


def test_work_the_pathway_ends_says_why_and_timers_are_the_schedulers(api: ApiClient, clock: ManualClock) -> None:
    lead = api.user("clinical_lead")
    api.deploy(lead, ("t.bpmn", d.boundary_timers("t", reminder="PT1H", escalation="PT2H")))
    interrupted = api.start(lead, "t").json()
    finished = api.start(lead, "t").json()
    clock.advance(minutes=30)
    api.post(f"/api/tasks/{finished['open_tasks'][0]['id']}/complete", lead, {"data": {}})
    clock.advance(minutes=30, seconds=1)
    assert fire_due_timers(api.engine) == 1  # the first episode's reminder (not interrupting)
    clock.advance(hours=1)
    assert fire_due_timers(api.engine) == 1  # its escalation, which interrupts the call
    history = _history(api, lead, interrupted["id"])
    [call_cancelled] = [e for e in _of(history, "task_cancelled") if e["data"]["element_id"] == "call"]
    assert call_cancelled["actor"] == "scheduler"
    assert call_cancelled["data"] == {"element_id": "call", "name": "Call patient", "field": "state",
                                      "old": "ready", "new": "cancelled", "reason": "timer escalate fired"}
    assert {e["actor"] for e in _of(history, "timer_fired")} == {"scheduler"}
    [call] = [t for t in history["tasks"] if t["element_id"] == "call"]
    assert (call["state"], call["completed_at"], call["completed_by"], call["cancelled_at"]) == (
        "cancelled", None, None, call_cancelled["at"])
    report = api.get(f"/api/instances/{interrupted['id']}/report.html", lead).text
    assert "<th>Ended</th>" in report and "cancelled 05 Jan 2026" in report
    other = _history(api, lead, finished["id"])
    cancelled = _of(other, "timer_cancelled")
    assert sorted(e["data"]["element_id"] for e in cancelled) == ["escalate", "remind"]
    assert {e["data"]["reason"] for e in cancelled} == {"task call was completed"}
    assert {(e["data"]["old"], e["data"]["new"]) for e in cancelled} == {("pending", "cancelled")}


def test_a_timer_that_comes_due_during_a_users_change_is_still_the_schedulers(api: ApiClient,
                                                                             clock: ManualClock) -> None:
    """A timer on a parallel branch, due while no worker ran, fires with the user's next change."""
    lead = api.user("clinical_lead")
    xml = d.definitions(d.process(
        "par", d.node("startEvent", "start"), d.node("parallelGateway", "split"),
        d.node("userTask", "call", "Call patient"), d.node("endEvent", "end1"),
        d.node("intermediateCatchEvent", "wait", "An hour later", body=d.timer("timeDuration", "PT1H")),
        d.node("userTask", "check", "Check chart"), d.node("endEvent", "end2"),
        d.flow("f1", "start", "split"), d.flow("f2", "split", "call"), d.flow("f3", "call", "end1"),
        d.flow("f4", "split", "wait"), d.flow("f5", "wait", "check"), d.flow("f6", "check", "end2")))
    api.deploy(lead, ("par.bpmn", xml))
    started = api.start(lead, "par").json()
    clock.advance(hours=1, seconds=5)
    done = api.post(f"/api/tasks/{started['open_tasks'][0]['id']}/complete", lead, {"data": {}}).json()
    assert [t["name"] for t in done["open_tasks"]] == ["Check chart"]
    history = _history(api, lead, started["id"])
    [fired] = _of(history, "timer_fired")
    assert fired["actor"] == "scheduler"
    assert fired["data"]["element_id"] == "wait" and fired["data"]["during_change_by"] == lead
    assert _of(history, "timer_cancelled") == []


def test_a_timer_that_came_due_but_lost_to_the_user_did_not_fire(api: ApiClient, clock: ManualClock) -> None:
    """Reminder and escalation both overdue (no worker ran), then the call is completed: the workflow
    ends the call first, so neither timer fired; both are cancelled because of the completion."""
    lead = api.user("clinical_lead")
    api.deploy(lead, ("t.bpmn", d.boundary_timers("t", reminder="PT1H", escalation="PT2H")))
    started = api.start(lead, "t").json()
    clock.advance(hours=3)
    done = api.post(f"/api/tasks/{started['open_tasks'][0]['id']}/complete", lead, {"data": {}}).json()
    assert done["status"] == "completed" and done["open_tasks"] == []
    history = _history(api, lead, started["id"])
    assert _of(history, "timer_fired") == []
    cancelled = _of(history, "timer_cancelled")
    assert [(e["data"]["element_id"], e["data"]["reason"]) for e in cancelled] == [
        ("remind", "task call was completed"), ("escalate", "task call was completed")]


def test_cancelling_an_episode_records_every_wait_it_ends(api: ApiClient) -> None:
    lead = api.user("clinical_lead")
    api.deploy(lead, ("ref.bpmn", d.task_then_message("ref", "report_received")))
    started = api.start(lead, "ref", business_key="ref-1").json()
    api.post(f"/api/tasks/{started['open_tasks'][0]['id']}/complete", lead, {"data": {}})
    cancelled = api.post(f"/api/instances/{started['id']}/cancel", lead, {"reason": "patient moved away"})
    assert cancelled.status_code == 200, cancelled.text
    history = _history(api, lead, started["id"])
    [awaited] = _of(history, "message_awaited")
    assert awaited["data"] == {"element_id": "wait", "message": "report_received"}
    [episode] = _of(history, "cancelled")
    assert episode["data"] == {"reason": "patient moved away", "field": "status", "old": "running",
                               "new": "cancelled"}
    [wait] = _of(history, "message_wait_cancelled")
    assert wait["data"] == {"element_id": "wait", "message": "report_received",
                            "reason": "the episode was cancelled"}


def test_a_received_message_ends_its_wait_without_a_cancellation(api: ApiClient) -> None:
    lead = api.user("clinical_lead")
    api.deploy(lead, ("ref.bpmn", d.task_then_message("ref", "report_received")))
    started = api.start(lead, "ref", business_key="ref-2").json()
    api.post(f"/api/tasks/{started['open_tasks'][0]['id']}/complete", lead, {"data": {}})
    delivered = api.post("/api/messages", lead, {"name": "report_received", "correlation_key": "ref-2"}).json()
    assert delivered["outcome"] != "buffered", delivered
    history = _history(api, lead, started["id"])
    assert _of(history, "message_wait_cancelled") == []
    [received] = _of(history, "message_received")
    [awaited] = _of(history, "message_awaited")
    assert received["task_id"] == awaited["task_id"]  # the catch that waited is the one that received


def test_retrying_an_incident_records_the_corrected_values(api: ApiClient) -> None:
    lead = api.user("clinical_lead")
    xml = d.dose_per_weight("inc")
    api.deploy(lead, ("inc.bpmn", xml))
    started = api.start(lead, "inc").json()
    failed = api.post(f"/api/tasks/{started['open_tasks'][0]['id']}/complete", lead,
                      {"data": {"dose": 10, "weight": 0}}).json()
    assert failed["status"] == "incident"
    retried = api.post(f"/api/instances/{started['id']}/retry", lead, {"data": {"weight": 5}})
    assert retried.status_code == 200, retried.text
    history = _history(api, lead, started["id"])
    [incident] = _of(history, "incident")
    assert (incident["data"]["field"], incident["data"]["old"], incident["data"]["new"]) == (
        "status", "running", "incident")
    [retry] = _of(history, "retried")
    assert retry["data"]["changes"] == {"weight": {"old": 0, "new": 5}}
    [resolved] = _of(history, "incident_resolved")
    assert resolved["data"] == {"field": "status", "old": "incident", "new": "running"}


def test_draft_form_data_is_answered_only_by_reads_that_are_recorded(api: ApiClient) -> None:
    lead = api.user("clinical_lead")
    coordinator = api.user("coordinator", name="kim")
    api.deploy(lead, ("fu.bpmn", d.linear_user_tasks("fu", "Call patient")))
    started = api.start(lead, "fu").json()
    task = started["open_tasks"][0]["id"]
    api.client.put(f"/api/tasks/{task}/draft", headers=api.headers(coordinator), json={"data": {"note": "x"}})
    for query in ("state=in-progress&assignee=me", f"instance_id={started['id']}&state=in-progress"):
        [item] = api.get(f"/api/tasks?{query}", coordinator).json()["items"]
        assert item["id"] == task and "draft" not in item
    assert api.get(f"/api/tasks/{task}", coordinator).json()["draft"] == {"note": "x"}
    events = api.get(f"/api/audit/events?instance_id={started['id']}&type=record_viewed",
                     api.user("auditor")).json()["items"]
    assert [(e["actor"], e["data"]["what"]) for e in events] == [("kim", "task")]  # the lists left no trace
