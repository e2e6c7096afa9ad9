"""A patient's story through the shipped post-ED pathway, over the API, with a controlled clock.

The ED visit is on Thursday 8 January 2026 and the episode starts on Friday 9 January at 10:00 in New
York (the pathway's zone, calendar us-federal), so the call's business days skip the weekend and every
HEDIS window is counted from the ED visit: the 7-day window closes at the end of Thursday 15 January,
the 30-day window at the end of Saturday 7 February.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from carepath.api.app import create_app
from carepath.api.settings import Settings
from carepath.engine.application import CarePath
from carepath.engine.clock import ManualClock
from carepath.engine.usecases.timers import fire_due_timers
from tests.support.api import ApiClient

KEY = "post-ed-follow-up"
NY = ZoneInfo("America/New_York")
ED_VISIT = "2026-01-08"
FRIDAY_10AM = datetime(2026, 1, 9, 10, 0, tzinfo=NY)
COORDINATOR, SUPERVISOR = ["care-coordinator"], ["care-team-supervisor"]
SEVEN_DAY_CHECK = datetime(2026, 1, 13, 23, 59, 59, tzinfo=NY)  # P5D after ed_visit_date
SEVEN_DAY_WINDOW_ENDS = datetime(2026, 1, 15, 23, 59, 59, tzinfo=NY)  # P7D after ed_visit_date end of day
THIRTY_DAY_CHECK = datetime(2026, 2, 5, 23, 59, 59, tzinfo=NY)  # P28D after ed_visit_date
THIRTY_DAY_WINDOW_ENDS = datetime(2026, 2, 7, 23, 59, 59, tzinfo=NY)  # P30D after ed_visit_date end of day
# Until the episode ends it also waits for an ED visit that became an admission (ed_visit_admitted).
ADMISSION_WATCH = ("message", "ed_visit_admitted", None)
NOT_APPLICABLE = dict.fromkeys(("fum-7", "fum-30", "fua-7", "fua-30", "fmc-7"), "not_applicable")


def ny(month: int, day: int, hour: int = 23, minute: int = 59, second: int = 59) -> datetime:
    return datetime(2026, month, day, hour, minute, second, tzinfo=NY)


class Story:
    """One episode told through the API: who acts, the clock, and short steps."""

    def __init__(self, api: ApiClient, clock: ManualClock, diagnosis: str, chronic: int = 0) -> None:
        clock.set(FRIDAY_10AM.astimezone(UTC))
        self.api, self.clock = api, clock
        self.lead = api.user("clinical_lead")
        self.coordinator = api.user("coordinator", "care-coordinator")
        self.supervisor = api.user("coordinator", "care-team-supervisor")
        response = api.start(self.lead, KEY, patient_id="pat-1", data={
            "ed_visit_date": ED_VISIT, "diagnosis_category": diagnosis, "high_risk_chronic_conditions": chronic})
        assert response.status_code == 201, response.text
        self.instance: dict[str, Any] = response.json()
        self.id, self.key = self.instance["id"], self.instance["business_key"]

    def refresh(self) -> dict[str, Any]:
        self.instance = self.api.get(f"/api/instances/{self.id}", self.lead).json()
        return self.instance

    def open_tasks(self) -> list[tuple[str, list[str], datetime | None]]:
        """(element id, candidate groups, due date) of every open task, by element id."""
        return sorted((t["element_id"], t["candidate_groups"],
                       datetime.fromisoformat(t["due_date"]) if t["due_date"] else None)
                      for t in self.refresh()["open_tasks"])

    def complete(self, element_id: str, user: str | None = None, **data: Any) -> dict[str, Any]:
        [task] = [t for t in self.refresh()["open_tasks"] if t["element_id"] == element_id]
        response = self.api.post(f"/api/tasks/{task['id']}/complete", user or self.coordinator, {"data": data})
        assert response.status_code == 200, response.text
        self.instance = response.json()
        return self.instance

    def at(self, moment: datetime) -> None:
        """Move the clock to `moment` and fire whatever timers are due by then."""
        self.clock.set(moment.astimezone(UTC))
        fire_due_timers(self.api.engine)

    def visit_completed(self, visit_date: str, message_id: str | None = None) -> str:
        body: dict[str, Any] = {"name": "visit_completed", "correlation_key": self.key,
                                "data": {"visit_date": visit_date}}
        if message_id:
            body["message_id"] = message_id
        response = self.api.post("/api/messages", self.coordinator, body)
        assert response.status_code == 200, response.text
        return str(response.json()["outcome"])

    def reach_and_schedule(self, visit_on: str = "2026-01-12") -> None:
        self.complete("call_patient", reached=True, call_notes="spoke with patient")
        self.complete("schedule_follow_up", follow_up_provider="Riverside Behavioral Health", follow_up_date=visit_on)

    def waiting(self) -> list[tuple[str, str | None, datetime | None]]:
        return sorted((w["type"], w.get("message_name"),
                       datetime.fromisoformat(w["due_at"]) if w.get("due_at") else None)
                      for w in self.refresh()["waiting"])

    def measures(self) -> dict[str, str]:
        return {m["measure_id"]: m["status"]
                for m in self.api.get(f"/api/instances/{self.id}/measures", self.lead).json()}

    def recorded_outcomes(self) -> dict[str, str]:
        history = self.api.get(f"/api/instances/{self.id}/history", self.lead, params={"limit": 500}).json()
        [event] = [e for e in history["items"] if e["type"] == "measure_outcomes"]
        return {m["measure_id"]: m["status"] for m in event["data"]["measures"]}


def test_shipped_pathway_is_deployed_at_start_up_once(shipped: ApiClient, engine: CarePath,
                                                      database_url: str) -> None:
    lead = shipped.user("clinical_lead")
    [pathway] = [p for p in shipped.get("/api/pathways", lead).json() if p["key"] == KEY]
    assert pathway["version"] == 1 and pathway["family"] == "camunda"
    assert [m["id"] for m in pathway["measures"]] == ["fum-7", "fum-30", "fua-7", "fua-30", "fmc-7"]
    settings = Settings(database_url=database_url, deploy_shipped_pathways=True, scheduler_enabled=False)
    with TestClient(create_app(settings, engine)):  # a restart deploys nothing new
        pass
    assert [v["version"] for v in shipped.get(f"/api/pathways/{KEY}", lead).json()["versions"]] == [1]


@pytest.mark.parametrize(("diagnosis", "chronic", "measure", "met"), [
    ("mental_illness", 0, "FUM", {"fum-7": "met", "fum-30": "met"}),
    ("substance_use", 0, "FUA", {"fua-7": "met", "fua-30": "met"}),
    ("other", 2, "FMC", {"fmc-7": "met"}),
    ("other", 0, "general", {}),
])
def test_happy_path_the_visit_is_reported_within_seven_days_and_the_episode_closes(
        shipped: ApiClient, clock: ManualClock, diagnosis: str, chronic: int, measure: str,
        met: dict[str, str]) -> None:
    story = Story(shipped, clock, diagnosis, chronic)
    assert story.instance["data"]["measure"] == measure
    assert story.open_tasks() == [("call_patient", COORDINATOR, ny(1, 12, 10, 0, 0))]  # P1BD: Monday 10:00
    story.complete("call_patient", reached=True, call_notes="spoke with patient")
    assert story.open_tasks() == [("schedule_follow_up", COORDINATOR, ny(1, 12))]  # P1BD end of day
    story.complete("schedule_follow_up", follow_up_provider="Dr Lee", follow_up_date="2026-01-12")
    assert story.open_tasks() == []
    assert story.waiting() == [ADMISSION_WATCH, ("message", "visit_completed", None), ("timer", None, SEVEN_DAY_CHECK)]

    story.at(ny(1, 12, 15, 0, 0))
    assert story.visit_completed("2026-01-12") == "delivered"
    assert story.open_tasks() == [("close_episode", COORDINATOR, ny(1, 13))]
    assert story.waiting() == [ADMISSION_WATCH]  # the 5-day check is cancelled
    assert story.instance["data"]["follow_up_visit_date"] == "2026-01-12"
    story.complete("close_episode", closing_notes="seen on day 4")
    assert story.refresh()["status"] == "completed"
    assert story.measures() == story.recorded_outcomes() == {**NOT_APPLICABLE, **met}


def test_the_call_reminds_after_one_business_day_and_escalates_after_two(shipped: ApiClient,
                                                                        clock: ManualClock) -> None:
    story = Story(shipped, clock, "substance_use")
    story.at(ny(1, 12, 9, 59, 0))  # Monday morning: the weekend does not count
    assert story.open_tasks() == [("call_patient", COORDINATOR, ny(1, 12, 10, 0, 0))]
    story.at(ny(1, 12, 10, 0, 0))
    assert story.open_tasks() == [("call_patient", COORDINATOR, ny(1, 12, 10, 0, 0)),
                                  ("remind_call_patient", COORDINATOR, ny(1, 13, 10, 0, 0))]
    story.at(ny(1, 13, 9, 59, 0))
    assert [t[0] for t in story.open_tasks()] == ["call_patient", "remind_call_patient"]
    story.at(ny(1, 13, 10, 0, 0))  # 2 business days: the call is taken away and escalated
    assert story.open_tasks() == [("escalate_not_reached", SUPERVISOR, ny(1, 14)),
                                  ("remind_call_patient", COORDINATOR, ny(1, 13, 10, 0, 0))]
    [escalation] = [t for t in story.instance["open_tasks"] if t["element_id"] == "escalate_not_reached"]
    assert escalation["lane"] == "Care Team Supervisor"
    story.complete("escalate_not_reached", story.supervisor, follow_up_possible=False,
                   escalation_notes="no working number")
    # The terminate end event closes the episode and the reminder nobody answered with it.
    assert story.refresh()["status"] == "completed"
    assert story.open_tasks() == []


def test_the_supervisor_can_send_an_escalated_patient_back_to_scheduling(shipped: ApiClient,
                                                                        clock: ManualClock) -> None:
    story = Story(shipped, clock, "mental_illness")
    story.complete("call_patient", reached=False, call_notes="no answer twice")
    assert story.open_tasks() == [("escalate_not_reached", SUPERVISOR, ny(1, 12))]
    story.complete("escalate_not_reached", story.supervisor, follow_up_possible=True)
    assert story.open_tasks() == [("schedule_follow_up", COORDINATOR, ny(1, 12))]


def test_a_reminder_left_open_closes_with_the_episode(shipped: ApiClient, clock: ManualClock) -> None:
    story = Story(shipped, clock, "other", 3)
    story.at(ny(1, 12, 10, 0, 0))
    story.reach_and_schedule()
    assert [t[0] for t in story.open_tasks()] == ["remind_call_patient"]
    assert story.visit_completed("2026-01-12") == "delivered"
    story.complete("close_episode")
    assert story.refresh()["status"] == "completed" and story.open_tasks() == []


def test_a_visit_reported_before_the_pathway_waits_is_buffered_then_delivered(shipped: ApiClient,
                                                                            clock: ManualClock) -> None:
    story = Story(shipped, clock, "mental_illness")
    story.complete("call_patient", reached=True)
    assert story.visit_completed("2026-01-09") == "buffered"  # seen the same day, before the booking was entered
    assert story.open_tasks() == [("schedule_follow_up", COORDINATOR, ny(1, 12))]
    story.complete("schedule_follow_up", follow_up_provider="Dr Lee", follow_up_date="2026-01-09")
    assert story.open_tasks() == [("close_episode", COORDINATOR, ny(1, 12))]
    assert story.waiting() == [ADMISSION_WATCH]
    assert story.instance["data"]["follow_up_visit_date"] == "2026-01-09"
    assert story.measures()["fum-7"] == "met"


def test_a_visit_reported_after_the_confirm_task_appeared_closes_that_task(shipped: ApiClient,
                                                                          clock: ManualClock) -> None:
    story = Story(shipped, clock, "mental_illness")
    story.reach_and_schedule()
    story.at(ny(1, 14, 8, 0, 0))
    assert story.open_tasks() == [("confirm_visit", COORDINATOR, SEVEN_DAY_WINDOW_ENDS)]
    assert story.visit_completed("2026-01-13") == "delivered"  # caught by the confirm task's boundary event
    assert story.open_tasks() == [("close_episode", COORDINATOR, ny(1, 15))]
    assert story.instance["data"]["follow_up_visit_date"] == "2026-01-13"
    assert story.measures()["fum-7"] == "met"


def test_the_same_visit_message_twice_is_a_duplicate(shipped: ApiClient, clock: ManualClock) -> None:
    story = Story(shipped, clock, "other", 2)
    story.reach_and_schedule()
    assert story.visit_completed("2026-01-12", message_id="ehr-visit-77") == "delivered"
    assert story.visit_completed("2026-01-12", message_id="ehr-visit-77") == "duplicate"
    assert story.open_tasks() == [("close_episode", COORDINATOR, ny(1, 12))]
    story.complete("close_episode")
    assert story.refresh()["status"] == "completed"


def test_a_missed_seven_day_window_brings_the_confirm_task_before_the_window_closes(
        shipped: ApiClient, clock: ManualClock) -> None:
    story = Story(shipped, clock, "other", 2)
    story.reach_and_schedule(visit_on="2026-01-13")
    story.at(ny(1, 13, 23, 59, 58))
    assert story.open_tasks() == []
    story.at(ny(1, 13, 23, 59, 59))  # 5 days after the ED visit, two days before the window closes
    assert story.open_tasks() == [("confirm_visit", COORDINATOR, SEVEN_DAY_WINDOW_ENDS)]
    [fmc] = [m for m in shipped.get(f"/api/instances/{story.id}/measures", story.lead).json()
             if m["measure_id"] == "fmc-7"]
    assert fmc["status"] == "open" and datetime.fromisoformat(fmc["deadline"]) == SEVEN_DAY_WINDOW_ENDS
    story.at(ny(1, 14, 9, 0, 0))
    story.complete("confirm_visit", visit_attended=True)  # attended, but no date: the task comes back
    assert story.open_tasks() == [("confirm_visit", COORDINATOR, SEVEN_DAY_WINDOW_ENDS)]
    story.complete("confirm_visit", visit_attended=False, confirm_notes="patient did not show")
    assert story.open_tasks() == [("close_episode", COORDINATOR, ny(1, 15))]  # FMC has no 30-day round
    story.complete("close_episode")
    assert story.recorded_outcomes()["fmc-7"] == "open"  # recorded at the end; the window was still open
    story.at(ny(1, 16, 0, 0, 0))
    assert story.measures() == {**NOT_APPLICABLE, "fmc-7": "not_met"}


def test_fum_missed_at_seven_days_but_met_at_thirty(shipped: ApiClient, clock: ManualClock) -> None:
    story = Story(shipped, clock, "mental_illness")
    story.reach_and_schedule(visit_on="2026-01-13")
    story.at(ny(1, 14, 0, 0, 0))
    story.complete("confirm_visit", visit_attended=False, confirm_notes="no-show")
    assert story.open_tasks() == [("schedule_follow_up_30", COORDINATOR, ny(1, 15))]
    story.complete("schedule_follow_up_30", follow_up_provider="Riverside Behavioral Health",
                   follow_up_date="2026-01-22")
    assert story.waiting() == [ADMISSION_WATCH, ("message", "visit_completed", None),
                               ("timer", None, THIRTY_DAY_CHECK)]
    story.at(ny(1, 22, 16, 0, 0))
    assert story.visit_completed("2026-01-22") == "delivered"
    assert story.open_tasks() == [("close_episode", COORDINATOR, ny(1, 23))]
    story.complete("close_episode")
    assert story.refresh()["status"] == "completed"
    expected = {**NOT_APPLICABLE, "fum-7": "not_met", "fum-30": "met"}
    assert story.measures() == story.recorded_outcomes() == expected


def test_fua_missed_at_seven_and_thirty_days(shipped: ApiClient, clock: ManualClock) -> None:
    story = Story(shipped, clock, "substance_use")
    story.reach_and_schedule(visit_on="2026-01-13")
    story.at(ny(1, 14, 0, 0, 0))
    story.complete("confirm_visit", visit_attended=False)
    story.complete("schedule_follow_up_30", follow_up_provider="Harbor Recovery Clinic", follow_up_date="2026-02-02")
    story.at(ny(2, 5, 23, 59, 58))
    assert story.open_tasks() == []
    story.at(THIRTY_DAY_CHECK)
    assert story.open_tasks() == [("confirm_visit_30", COORDINATOR, THIRTY_DAY_WINDOW_ENDS)]
    story.complete("confirm_visit_30", visit_attended=False)
    assert story.open_tasks() == [("close_episode", COORDINATOR, ny(2, 6))]
    story.complete("close_episode")
    story.at(ny(2, 8, 0, 0, 0))
    assert story.measures() == {**NOT_APPLICABLE, "fua-7": "not_met", "fua-30": "not_met"}


def test_a_patient_who_declines_is_cancelled_and_the_measures_are_excluded(shipped: ApiClient,
                                                                          clock: ManualClock) -> None:
    story = Story(shipped, clock, "mental_illness")
    story.complete("call_patient", reached=True, call_notes="declines any follow-up")
    cancelled = shipped.post(f"/api/instances/{story.id}/cancel", story.lead, {"reason": "patient declined"})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert story.open_tasks() == []
    story.at(ny(2, 9, 0, 0, 0))
    assert story.measures() == {**NOT_APPLICABLE, "fum-7": "excluded", "fum-30": "excluded"}


def test_completion_is_checked_against_the_form_field_by_field(shipped: ApiClient, clock: ManualClock) -> None:
    story = Story(shipped, clock, "mental_illness")
    [task] = story.instance["open_tasks"]
    form = shipped.get(f"/api/tasks/{task['id']}/form", story.coordinator).json()
    assert form["schema"]["properties"]["reached"]["type"] == "boolean"
    bad = shipped.post(f"/api/tasks/{task['id']}/complete", story.coordinator,
                       {"data": {"reached": "true", "notes": "typo in the field name"}})
    assert bad.status_code == 422
    errors = bad.json()["errors"]
    assert {e.get("field") for e in errors} >= {"reached"}
    assert any("notes" in e["message"] for e in errors)
    missing = shipped.post(f"/api/tasks/{task['id']}/complete", story.coordinator, {"data": {"call_notes": "no"}})
    assert missing.status_code == 422 and any("reached" in e["message"] for e in missing.json()["errors"])
    assert shipped.get(f"/api/tasks/{task['id']}", story.coordinator).json()["state"] == "ready"
    story.complete("call_patient", reached=True)
    [schedule] = story.instance["open_tasks"]
    unscheduled = shipped.post(f"/api/tasks/{schedule['id']}/complete", story.coordinator,
                               {"data": {"follow_up_provider": "Dr Lee"}})
    assert unscheduled.status_code == 422 and any("follow_up_date" in e["message"]
                                                  for e in unscheduled.json()["errors"])
