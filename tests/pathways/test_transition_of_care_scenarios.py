"""Patients' stories through the shipped transition-of-care (CMS TCM) pathway, over the API, with a
controlled clock. Due dates are the care setting's (America/New_York, us-federal calendar) end of day,
shown in UTC: 23:59:59 EST is 04:59:59Z the next day."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from carepath.engine.clock import ManualClock
from carepath.engine.usecases.timers import fire_due_timers
from tests.support.api import ApiClient

KEY = "transition-of-care"
CONTACT = ("Contact patient", ["care-coordinator"])


def _start(api: ApiClient, lead: str, discharge_date: str, *, mdm: str = "high", lace: int = 4,
           setting: str = "inpatient") -> dict[str, Any]:
    response = api.start(lead, KEY, business_key=f"enc-{uuid.uuid4().hex[:8]}", patient_id="pat-1", data={
        "discharge_date": discharge_date, "discharge_setting": setting, "mdm_level": mdm, "lace_score": lace})
    assert response.status_code == 201, response.text
    return response.json()


def _open(api: ApiClient, user: str, instance_id: str) -> list[tuple[str, list[str], str | None]]:
    tasks = api.get(f"/api/instances/{instance_id}", user).json()["open_tasks"]
    return sorted((t["name"], t["candidate_groups"], t["due_date"]) for t in tasks)


def _complete(api: ApiClient, user: str, instance_id: str, name: str, data: dict[str, Any]) -> dict[str, Any]:
    tasks = api.get(f"/api/instances/{instance_id}", user).json()["open_tasks"]
    [task] = [t for t in tasks if t["name"] == name]
    response = api.post(f"/api/tasks/{task['id']}/complete", user, {"data": data})
    assert response.status_code == 200, response.text
    return response.json()


def _measures(api: ApiClient, user: str, instance_id: str) -> dict[str, str]:
    response = api.get(f"/api/instances/{instance_id}/measures", user)
    assert response.status_code == 200, response.text
    return {m["measure_id"]: m["status"] for m in response.json()}


def _recorded_outcomes(api: ApiClient, user: str, instance_id: str) -> dict[str, str]:
    history = api.get(f"/api/instances/{instance_id}/history", user).json()
    [recorded] = [e for e in history["items"] if e["type"] == "measure_outcomes"]
    return {m["measure_id"]: m["status"] for m in recorded["data"]["measures"]}


def _at(day: str, hour: int = 15) -> datetime:
    return datetime.fromisoformat(f"{day}T{hour:02d}:00:00").replace(tzinfo=UTC)


def _happy_path(api: ApiClient, clock: ManualClock, *, mdm: str, lace: int, visit_days_after: int) -> tuple[str, str]:
    lead = api.user("clinical_lead")
    coordinator = api.user("coordinator", "care-coordinator")
    nurse = api.user("coordinator", "nurse")
    clock.set(_at("2026-03-02"))  # Monday discharge
    instance = _start(api, lead, "2026-03-02", mdm=mdm, lace=lace)
    iid = instance["id"]
    assert _open(api, lead, iid) == [(*CONTACT, "2026-03-05T04:59:59Z")]  # end of Wednesday, EST
    clock.set(_at("2026-03-03", 13))  # Tuesday 08:00 EST, before the 09:00 reminder
    _complete(api, coordinator, iid, "Contact patient", {"contact_made": True, "attempt": 1, "contact_method": "phone"})
    window = "2026-03-10T03:59:59Z" if mdm == "high" or lace >= 10 else "2026-03-17T03:59:59Z"  # EDT from Mar 8
    assert _open(api, lead, iid) == [("Schedule face-to-face visit", ["care-coordinator"], "2026-03-06T04:59:59Z")]
    _complete(api, coordinator, iid, "Schedule face-to-face visit", {"face_to_face_scheduled_date": "2026-03-06"})
    assert _open(api, lead, iid) == [("Reconcile medications", ["nurse"], window)]
    clock.set(_at(f"2026-03-{2 + visit_days_after:02d}"))
    _complete(api, nurse, iid, "Reconcile medications", {"medication_reconciliation_date": "2026-03-05"})
    assert _open(api, lead, iid) == [("Face-to-face TCM visit", ["nurse"], window)]
    _complete(api, nurse, iid, "Face-to-face TCM visit",
              {"face_to_face_date": "2026-03-05", "mdm_level_documented": mdm})
    assert _open(api, lead, iid) == []
    waiting = api.get(f"/api/instances/{iid}", lead).json()["waiting"]
    assert [(w["element_id"], w["due_at"]) for w in waiting if w["type"] == "timer"] == [
        ("service_period_end_timer", "2026-04-01T03:59:59Z")]  # end of day 29 (Mar 31, EDT)
    clock.set(_at("2026-04-01"))
    assert fire_due_timers(api.engine) == 1
    assert _open(api, lead, iid) == [("Close TCM service period", ["care-coordinator"], "2026-04-03T03:59:59Z")]
    done = _complete(api, coordinator, iid, "Close TCM service period", {"tcm_billable": True})
    assert done["status"] == "completed" and done["open_tasks"] == [] and done["waiting"] == []
    return lead, iid


def test_high_complexity_happy_path_meets_the_7_day_visit(shipped: ApiClient, clock: ManualClock) -> None:
    lead, iid = _happy_path(shipped, clock, mdm="high", lace=4, visit_days_after=3)
    expected = {"tcm-interactive-contact": "met", "tcm-face-to-face-7": "met", "tcm-face-to-face-14": "not_applicable",
                "hedis-mrp": "met"}
    assert _measures(shipped, lead, iid) == expected
    assert _recorded_outcomes(shipped, lead, iid) == expected


def test_moderate_complexity_visit_on_day_10_meets_the_14_day_visit(shipped: ApiClient, clock: ManualClock) -> None:
    lead, iid = _happy_path(shipped, clock, mdm="moderate", lace=4, visit_days_after=10)
    expected = {"tcm-interactive-contact": "met", "tcm-face-to-face-7": "not_applicable", "tcm-face-to-face-14": "met",
                "hedis-mrp": "met"}
    assert _measures(shipped, lead, iid) == expected
    assert _recorded_outcomes(shipped, lead, iid) == expected


def test_a_high_lace_score_makes_a_moderate_discharge_high_complexity(shipped: ApiClient) -> None:
    instance = _start(shipped, shipped.user("clinical_lead"), "2026-03-02", mdm="moderate", lace=12)
    assert {k: instance["data"][k] for k in ("tcm_complexity", "tcm_cpt_code", "face_to_face_window")} == {
        "tcm_complexity": "high", "tcm_cpt_code": "99496", "face_to_face_window": "P7D"}


def test_friday_discharge_contact_is_due_by_the_end_of_tuesday(shipped: ApiClient, clock: ManualClock) -> None:
    clock.set(_at("2026-01-09"))
    instance = _start(shipped, shipped.user("clinical_lead"), "2026-01-09")  # Friday
    [task] = instance["open_tasks"]
    assert (task["name"], task["candidate_groups"], task["due_date"]) == (*CONTACT, "2026-01-14T04:59:59Z")


def test_friday_before_mlk_day_contact_is_due_by_the_end_of_wednesday(shipped: ApiClient, clock: ManualClock) -> None:
    clock.set(_at("2026-01-16"))
    lead = shipped.user("clinical_lead")
    instance = _start(shipped, lead, "2026-01-16")  # Friday; Monday 2026-01-19 is Martin Luther King Jr. Day
    [task] = instance["open_tasks"]
    assert (task["name"], task["candidate_groups"], task["due_date"]) == (*CONTACT, "2026-01-22T04:59:59Z")
    timers = {w["element_id"]: w["due_at"] for w in instance["waiting"] if w["type"] == "timer"}
    assert timers == {"contact_reminder_timer": "2026-01-20T14:00:00Z",  # 09:00 Tuesday
                      "contact_escalation_timer": "2026-01-21T14:00:00Z",  # 09:00 Wednesday
                      "contact_deadline_timer": "2026-01-22T04:59:59Z"}
    deadline = {m["measure_id"]: m["deadline"] for m in shipped.get(f"/api/instances/{instance['id']}/measures",
                                                                    lead).json()}
    assert deadline["tcm-interactive-contact"] == "2026-01-22T04:59:59Z"


def test_missed_contact_reminds_then_escalates_then_is_not_met(shipped: ApiClient, clock: ManualClock) -> None:
    lead = shipped.user("clinical_lead")
    supervisor = shipped.user("coordinator", "care-team-supervisor")
    clock.set(_at("2026-01-09"))
    iid = _start(shipped, lead, "2026-01-09")["id"]
    due = "2026-01-14T04:59:59Z"
    clock.set(datetime(2026, 1, 12, 14, 1, tzinfo=UTC))  # Monday 09:01 EST
    fire_due_timers(shipped.engine)
    reminder = ("Reminder: TCM contact due by end of next business day", ["care-coordinator"], due)
    assert _open(shipped, lead, iid) == [CONTACT + (due,), reminder]
    clock.set(datetime(2026, 1, 13, 14, 1, tzinfo=UTC))  # Tuesday 09:01 EST
    fire_due_timers(shipped.engine)
    escalation = ("Escalation: TCM contact due today", ["care-team-supervisor"], due)
    assert _open(shipped, lead, iid) == [CONTACT + (due,), escalation, reminder]
    assert _measures(shipped, lead, iid)["tcm-interactive-contact"] == "open"
    clock.set(datetime(2026, 1, 14, 5, 0, tzinfo=UTC))  # just after the end of Tuesday EST
    fire_due_timers(shipped.engine)
    review = ("Review missed TCM contact", ["care-team-supervisor"], "2026-01-16T04:59:59Z")  # end of Thursday
    assert _open(shipped, lead, iid) == [escalation, reminder, review]  # the contact itself is stopped
    assert _measures(shipped, lead, iid)["tcm-interactive-contact"] == "not_met"
    ended = _complete(shipped, supervisor, iid, "Review missed TCM contact", {"continue_follow_up": False})
    assert ended["status"] == "completed" and ended["open_tasks"] == []  # terminate end: no stray reminders
    assert _recorded_outcomes(shipped, lead, iid) == {
        "tcm-interactive-contact": "not_met", "tcm-face-to-face-7": "open", "tcm-face-to-face-14": "not_applicable",
        "hedis-mrp": "open"}


def test_two_unsuccessful_attempts_in_time_meet_the_contact_measure(shipped: ApiClient, clock: ManualClock) -> None:
    lead = shipped.user("clinical_lead")
    coordinator = shipped.user("coordinator", "care-coordinator")
    clock.set(_at("2026-01-09"))
    iid = _start(shipped, lead, "2026-01-09", setting="snf")["id"]
    _complete(shipped, coordinator, iid, "Contact patient", {"contact_made": False, "attempt": 1})
    assert _open(shipped, lead, iid) == [CONTACT + ("2026-01-14T04:59:59Z",)]  # the loop: a second attempt
    assert _measures(shipped, lead, iid)["tcm-interactive-contact"] == "open"  # one attempt is not enough
    clock.set(_at("2026-01-12", 13))  # Monday 08:00 EST, before the reminder
    _complete(shipped, coordinator, iid, "Contact patient", {"contact_made": False, "attempt": 2})
    assert _measures(shipped, lead, iid)["tcm-interactive-contact"] == "met"
    # SNF-related discharge: the coordinator confirms the qualifying inpatient stay; the days are counted.
    assert _open(shipped, lead, iid) == [("Confirm qualifying inpatient stay", ["care-coordinator"],
                                          "2026-01-15T04:59:59Z")]
    after = _complete(shipped, coordinator, iid, "Confirm qualifying inpatient stay", {
        "inpatient_admission_date": "2026-01-02", "inpatient_discharge_date": "2026-01-05",
        "qualifying_stay_confirmed": True})
    assert (after["data"]["qualifying_inpatient_days"], after["data"]["qualifying_stay_met"]) == (3, True)
    assert [t["name"] for t in after["open_tasks"]] == ["Schedule face-to-face visit"]


def test_readmission_mid_period_ends_the_episode_and_the_measures_do_not_count(
        shipped: ApiClient, clock: ManualClock) -> None:
    lead = shipped.user("clinical_lead")
    coordinator = shipped.user("coordinator", "care-coordinator")
    clock.set(_at("2026-03-02"))
    instance = _start(shipped, lead, "2026-03-02", mdm="moderate")
    iid = instance["id"]
    _complete(shipped, coordinator, iid, "Contact patient", {"contact_made": True, "attempt": 1})
    _complete(shipped, coordinator, iid, "Schedule face-to-face visit", {"face_to_face_scheduled_date": "2026-03-12"})
    assert [t[0] for t in _open(shipped, lead, iid)] == ["Reconcile medications"]
    clock.set(_at("2026-03-08"))
    message = {"name": "readmission", "correlation_key": instance["business_key"],
               "data": {"readmission_date": "2026-03-08"}, "message_id": f"adt-{iid}"}
    sent = shipped.post("/api/messages", coordinator, message)
    assert sent.json()["outcome"] == "delivered" and sent.json()["instance_ids"] == [iid]
    after = shipped.get(f"/api/instances/{iid}", lead).json()
    assert (after["status"], after["open_tasks"], after["waiting"]) == ("completed", [], [])
    assert after["data"]["readmitted"] is True
    assert after["data"]["readmission_reported_Response"] == {"readmission_date": "2026-03-08"}
    expected = dict.fromkeys(("tcm-interactive-contact", "tcm-face-to-face-7", "tcm-face-to-face-14", "hedis-mrp"),
                             "not_applicable")
    assert _measures(shipped, lead, iid) == expected
    assert _recorded_outcomes(shipped, lead, iid) == expected
    again = shipped.post("/api/messages", coordinator, message)
    assert again.json()["outcome"] == "duplicate"


def test_a_readmission_message_sent_twice_is_delivered_once(shipped: ApiClient, clock: ManualClock) -> None:
    lead = shipped.user("clinical_lead")
    coordinator = shipped.user("coordinator", "care-coordinator")
    clock.set(_at("2026-03-02"))
    instance = _start(shipped, lead, "2026-03-02")
    message = {"name": "readmission", "correlation_key": instance["business_key"], "data": {}, "message_id": "adt-77"}
    first = shipped.post("/api/messages", coordinator, message)
    second = shipped.post("/api/messages", coordinator, message)
    assert (first.json()["outcome"], second.json()["outcome"]) == ("delivered", "duplicate")
    history = shipped.get(f"/api/instances/{instance['id']}/history", lead).json()
    assert [e["data"]["message_id"] for e in history["items"] if e["type"] == "message_received"] == ["adt-77"]
