"""A referral's story through the shipped 'specialist-referral' pathway, over the API, with a controlled clock.

Dates are in the pathway's zone (America/New_York, us-federal calendar). The stories start on Friday
16 January 2026, the business day before Martin Luther King Jr. Day (Monday 19 January), and some run
over Presidents' Day (Monday 16 February), so every business-day deadline skips a weekend and a holiday.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from carepath.engine.clock import ManualClock
from carepath.engine.usecases.timers import fire_due_timers
from tests.support.api import ApiClient

KEY = "specialist-referral"
NY = ZoneInfo("America/New_York")
COORDINATOR, SUPERVISOR, PCP = "Care Coordinator", "Care Team Supervisor", "Primary Care Physician"
SEND, CONFIRM = "Send referral to specialist", "Confirm specialist received referral"
RECORD_APPOINTMENT, RECORD_OUTCOME = "Record appointment", "Record visit outcome"
OBTAIN_REPORT, REVIEW = "Obtain specialist report", "Review specialist report"
SCHEDULE_REMINDER = "Reminder: appointment not yet scheduled"
SCHEDULE_ESCALATION = "Escalation: appointment not scheduled"
REPORT_REMINDER, DECIDE = "Reminder: chase specialist report", "Referral not completed: decide next step"


def ny(month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, second, tzinfo=NY)


def end_of(month: int, day: int) -> datetime:
    return ny(month, day, 23, 59, 59)


class Referral:
    """One patient's referral: the people working it, and one-line steps over the public API."""

    def __init__(self, api: ApiClient, clock: ManualClock, **data: Any) -> None:
        self.api, self.clock = api, clock
        self.lead = api.user("clinical_lead")
        self.coordinator = api.user("coordinator", "care-coordinator")
        self.supervisor = api.user("supervisor", "care-team-supervisor")
        self.pcp = api.user("coordinator", "primary-care-physician", name=f"dr-{uuid.uuid4().hex[:6]}")
        self.referral_id = f"REF-{uuid.uuid4().hex[:8]}"
        clock.set(ny(1, 16, 14, 0).astimezone(UTC))
        started = api.start(self.lead, KEY, business_key=self.referral_id, patient_id="pat-77", data={
            "referral_id": self.referral_id, "patient": {"name": "Alex Rivera", "mrn": "MRN-40312"},
            "specialty": "cardiology", "reason": "exertional chest pain", "referral_date": "2026-01-16",
            "urgency": "routine", "referring_pcp": self.pcp, **data})
        assert started.status_code == 201, started.text
        self.id = started.json()["id"]

    def at(self, when: datetime) -> None:
        self.clock.set(when.astimezone(UTC))
        fire_due_timers(self.api.engine)

    def view(self) -> dict[str, Any]:
        return self.api.get(f"/api/instances/{self.id}", self.lead).json()

    def open_tasks(self) -> list[str]:
        return sorted(t["name"] for t in self.view()["open_tasks"])

    def task(self, name: str) -> dict[str, Any]:
        [task] = [t for t in self.view()["open_tasks"] if t["name"] == name]
        return task

    def complete(self, name: str, user: str, **data: Any) -> dict[str, Any]:
        response = self.api.post(f"/api/tasks/{self.task(name)['id']}/complete", user, {"data": data})
        assert response.status_code == 200, response.text
        return response.json()

    def message(self, name: str, message_id: str | None = None, **data: Any) -> str:
        body: dict[str, Any] = {"name": name, "correlation_key": self.referral_id, "data": data}
        if message_id:
            body["message_id"] = message_id
        response = self.api.post("/api/messages", self.coordinator, body)
        assert response.status_code == 200, response.text
        return str(response.json()["outcome"])

    def completed_tasks(self) -> list[str]:
        events = self.api.get(f"/api/instances/{self.id}/history", self.lead).json()["items"]
        return [e["data"]["element_id"] for e in events if e["type"] == "task_completed"]

    def measures(self) -> dict[str, str]:
        results = self.api.get(f"/api/instances/{self.id}/measures", self.lead).json()
        return {m["measure_id"]: m["status"] for m in results}

    def recorded_outcomes(self) -> dict[str, Any]:
        events = self.api.get(f"/api/instances/{self.id}/history", self.lead).json()["items"]
        [recorded] = [e["data"] for e in events if e["type"] == "measure_outcomes"]
        return {"status": recorded["status"], **{m["measure_id"]: m["status"] for m in recorded["measures"]}}

    def send_and_confirm(self) -> None:
        self.complete(SEND, self.coordinator, sent_date="2026-01-16", sent_via="Direct")
        self.complete(CONFIRM, self.coordinator, specialist_received=True)

    def attend_visit(self, appointment_date: str = "2026-02-02") -> None:
        self.send_and_confirm()
        booked = self.message("appointment_scheduled", appointment_date=appointment_date, provider="Dr Chen")
        assert booked == "delivered"
        assert self.message("visit_outcome", attended=True) == "delivered"


def due(task: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(task["due_date"])


def routing(task: dict[str, Any]) -> tuple[str | None, list[str], str | None]:
    return task["lane"], task["candidate_groups"], task["assignee"]


def test_happy_path_the_report_arrives_and_the_pcp_closes_the_loop(shipped: ApiClient, clock: ManualClock) -> None:
    referral = Referral(shipped, clock)
    send = referral.task(SEND)
    assert routing(send) == (COORDINATOR, ["care-coordinator"], None)
    assert due(send) == end_of(1, 20)  # 1 business day after Friday 16 January: Tuesday, MLK day is skipped
    assert referral.measures() == {"cms50-loop-closed": "not_applicable", "referral-report-reviewed": "not_applicable",
                                   "referral-sent-1bd": "open"}
    referral.complete(SEND, referral.coordinator, sent_date="2026-01-16", sent_via="fax")
    assert referral.open_tasks() == [CONFIRM] and due(referral.task(CONFIRM)) == end_of(1, 21)

    referral.at(ny(1, 20, 10))  # Tuesday: the specialist's office has not got it; send it again
    referral.complete(CONFIRM, referral.coordinator, specialist_received=False, receipt_notes="fax not received")
    assert referral.open_tasks() == [SEND] and due(referral.task(SEND)) == end_of(1, 20)
    referral.complete(SEND, referral.coordinator, sent_date="2026-01-20", sent_via="Direct")
    assert due(referral.task(CONFIRM)) == end_of(1, 22)
    referral.complete(CONFIRM, referral.coordinator, specialist_received=True)
    record = referral.task(RECORD_APPOINTMENT)
    assert routing(record) == (COORDINATOR, ["care-coordinator"], None)
    assert due(record) == ny(2, 3, 10)  # schedule_within P10BD from Tuesday 20 January 10:00

    assert referral.message("appointment_scheduled", "sched-1", appointment_date="2026-02-02", provider="Dr Chen") \
        == "delivered"
    assert referral.open_tasks() == [RECORD_OUTCOME] and due(referral.task(RECORD_OUTCOME)) == end_of(2, 3)
    referral.at(ny(2, 2, 17))
    assert referral.message("visit_outcome", "ehr-1", attended=True, visit_date="2026-02-02") == "delivered"
    obtain = referral.task(OBTAIN_REPORT)
    assert routing(obtain) == (COORDINATOR, ["care-coordinator"], None)
    assert due(obtain) == end_of(3, 4)  # loop_closure_within P30D after the visit, local policy
    [cms50] = [m for m in shipped.get(f"/api/instances/{referral.id}/measures", referral.lead).json()
               if m["measure_id"] == "cms50-loop-closed"]
    assert cms50["status"] == "open" and datetime.fromisoformat(cms50["deadline"]) == end_of(3, 4)

    referral.at(ny(2, 10, 11))
    assert referral.message("consult_report_received", "hie-1", report_date="2026-02-10") == "delivered"
    review = referral.task(REVIEW)
    assert routing(review) == (PCP, ["primary-care-physician"], referral.pcp)
    assert due(review) == end_of(2, 12)
    done = referral.complete(REVIEW, referral.pcp, report_reviewed=True, follow_up_actions="start statin")

    assert done["status"] == "completed" and done["open_tasks"] == [] and done["waiting"] == []
    assert done["data"]["report_received_date"] == "2026-02-10" and done["data"]["visit_date"] == "2026-02-02"
    assert referral.completed_tasks() == ["send_referral", "confirm_receipt", "send_referral", "confirm_receipt",
                                          "review_specialist_report"]
    expected = {"cms50-loop-closed": "met", "referral-report-reviewed": "met", "referral-sent-1bd": "met"}
    assert referral.measures() == expected
    assert referral.recorded_outcomes() == {"status": "completed", **expected}


def test_appointment_not_scheduled_reminds_then_escalates_to_the_supervisor(shipped: ApiClient,
                                                                             clock: ManualClock) -> None:
    referral = Referral(shipped, clock)
    referral.send_and_confirm()  # Friday 16 January 14:00
    assert due(referral.task(RECORD_APPOINTMENT)) == ny(2, 2, 14)  # P10BD: MLK day and two weekends skipped

    referral.at(ny(2, 2, 13, 59))
    assert referral.open_tasks() == [RECORD_APPOINTMENT]
    referral.at(ny(2, 2, 14, 1))
    assert referral.open_tasks() == [RECORD_APPOINTMENT, SCHEDULE_REMINDER]
    reminder = referral.task(SCHEDULE_REMINDER)
    assert routing(reminder) == (COORDINATOR, ["care-coordinator"], None) and due(reminder) == end_of(2, 3)

    referral.at(ny(2, 9, 13, 59))
    assert referral.open_tasks() == [RECORD_APPOINTMENT, SCHEDULE_REMINDER]
    referral.at(ny(2, 9, 14, 1))  # escalate_within P15BD from Friday 16 January 14:00
    assert referral.open_tasks() == [SCHEDULE_ESCALATION, SCHEDULE_REMINDER]
    escalation = referral.task(SCHEDULE_ESCALATION)
    assert routing(escalation) == (SUPERVISOR, ["care-team-supervisor"], None) and due(escalation) == end_of(2, 10)

    referral.complete(SCHEDULE_ESCALATION, referral.supervisor, keep_trying=True, escalation_notes="short-staffed")
    assert referral.open_tasks() == [RECORD_APPOINTMENT, SCHEDULE_REMINDER]
    assert due(referral.task(RECORD_APPOINTMENT)) == ny(2, 24, 14, 1)  # P10BD again, Presidents' Day skipped
    # Late: scheduling books the patient after both windows; the message still closes the task.
    referral.at(ny(2, 12, 9))
    assert referral.message("appointment_scheduled", "sched-9", appointment_date="2026-02-19") == "delivered"
    assert referral.open_tasks() == [RECORD_OUTCOME, SCHEDULE_REMINDER]
    assert due(referral.task(RECORD_OUTCOME)) == end_of(2, 20)
    referral.complete(SCHEDULE_REMINDER, referral.coordinator, reminder_notes="called the clinic")
    assert referral.open_tasks() == [RECORD_OUTCOME]
    assert referral.completed_tasks() == ["send_referral", "confirm_receipt", "escalate_scheduling",
                                          "remind_schedule"]


def test_the_supervisor_stops_scheduling_and_the_pcp_decides(shipped: ApiClient, clock: ManualClock) -> None:
    referral = Referral(shipped, clock)
    referral.send_and_confirm()
    referral.at(ny(2, 9, 14, 1))
    referral.complete(SCHEDULE_ESCALATION, referral.supervisor, keep_trying=False)
    decide = referral.task(DECIDE)
    assert routing(decide) == (PCP, ["primary-care-physician"], referral.pcp) and due(decide) == end_of(2, 11)
    done = referral.complete(DECIDE, referral.pcp, next_step="refer to another cardiology group")

    assert done["status"] == "completed" and done["open_tasks"] == []  # the open reminder ends with the episode
    assert referral.completed_tasks() == ["send_referral", "confirm_receipt", "escalate_scheduling",
                                          "decide_next_step"]
    assert referral.recorded_outcomes() == {"status": "completed", "cms50-loop-closed": "not_applicable",
                                            "referral-report-reviewed": "not_applicable", "referral-sent-1bd": "met"}


def test_an_early_message_is_buffered_and_a_repeated_one_is_a_duplicate(shipped: ApiClient,
                                                                       clock: ManualClock) -> None:
    referral = Referral(shipped, clock)
    referral.complete(SEND, referral.coordinator, sent_date="2026-01-16")
    # Scheduling books the patient before the coordinator has confirmed receipt: nothing waits for it yet.
    assert referral.message("appointment_scheduled", "sched-7", appointment_date="2026-01-29") == "buffered"
    assert referral.message("appointment_scheduled", "sched-7", appointment_date="2026-01-29") == "duplicate"
    assert referral.open_tasks() == [CONFIRM]

    referral.complete(CONFIRM, referral.coordinator, specialist_received=True)
    assert referral.open_tasks() == [RECORD_OUTCOME]  # the buffered message was handed over on arrival
    outcome = referral.task(RECORD_OUTCOME)
    assert routing(outcome) == (COORDINATOR, ["care-coordinator"], None) and due(outcome) == end_of(1, 30)
    assert referral.view()["data"]["appointment_date"] == "2026-01-29"
    assert referral.message("appointment_scheduled", "sched-7", appointment_date="2026-01-29") == "duplicate"
    assert referral.open_tasks() == [RECORD_OUTCOME]

    referral.at(ny(1, 29, 16))
    assert referral.message("visit_outcome", "ehr-7", attended=True) == "delivered"
    assert referral.message("visit_outcome", "ehr-7", attended=True) == "duplicate"
    assert referral.open_tasks() == [OBTAIN_REPORT]
    assert referral.view()["data"]["visit_date"] == "2026-01-29"  # the appointment date, as none was given
    assert referral.completed_tasks() == ["send_referral", "confirm_receipt"]


def test_no_shows_are_rescheduled_up_to_the_maximum_then_the_pcp_decides(shipped: ApiClient,
                                                                         clock: ManualClock) -> None:
    referral = Referral(shipped, clock)
    referral.send_and_confirm()
    referral.complete(RECORD_APPOINTMENT, referral.coordinator, appointment_date="2026-01-27")
    assert due(referral.task(RECORD_OUTCOME)) == end_of(1, 28)
    assert referral.message("visit_outcome", "ehr-1", attended=False) == "delivered"  # no-show 1: reschedule
    assert referral.open_tasks() == [RECORD_APPOINTMENT]
    assert referral.message("appointment_scheduled", "sched-2", appointment_date="2026-02-03") == "delivered"
    referral.complete(RECORD_OUTCOME, referral.coordinator, attended=False)  # no-show 2: reschedule (the last)
    assert referral.open_tasks() == [RECORD_APPOINTMENT]
    referral.complete(RECORD_APPOINTMENT, referral.coordinator, appointment_date="2026-02-13")
    assert due(referral.task(RECORD_OUTCOME)) == end_of(2, 17)  # Presidents' Day skipped
    assert referral.message("visit_outcome", "ehr-3", attended=False) == "delivered"  # no-show 3: back to the PCP

    decide = referral.task(DECIDE)
    assert routing(decide) == (PCP, ["primary-care-physician"], referral.pcp) and due(decide) == end_of(1, 21)
    assert referral.view()["data"]["no_show_count"] == 3
    done = referral.complete(DECIDE, referral.pcp, next_step="manage in primary care")
    assert done["status"] == "completed"
    assert referral.completed_tasks() == ["send_referral", "confirm_receipt", "record_appointment",
                                          "record_visit_outcome", "record_appointment", "decide_next_step"]
    assert referral.recorded_outcomes() == {"status": "completed", "cms50-loop-closed": "not_applicable",
                                            "referral-report-reviewed": "not_applicable", "referral-sent-1bd": "met"}


def test_a_late_booking_message_for_a_missed_appointment_does_not_reschedule(shipped: ApiClient,
                                                                           clock: ManualClock) -> None:
    referral = Referral(shipped, clock)
    referral.send_and_confirm()
    referral.complete(RECORD_APPOINTMENT, referral.coordinator, appointment_date="2026-01-21")
    # Scheduling reports the same booking after the coordinator recorded it: nothing waits for it, it is kept.
    assert referral.message("appointment_scheduled", "sched-4", appointment_date="2026-01-21") == "buffered"
    referral.at(ny(1, 21, 17))  # within the message's 7-day time-to-live
    referral.complete(RECORD_OUTCOME, referral.coordinator, attended=False)
    # The kept message reaches the new Record appointment, but it is for the missed date: ask again.
    assert referral.open_tasks() == [RECORD_APPOINTMENT]
    assert due(referral.task(RECORD_APPOINTMENT)) == ny(2, 4, 17)  # a fresh P10BD from Wednesday 21 January
    data = referral.view()["data"]
    assert data["missed_appointment_dates"] == ["2026-01-21"] and data["appointment_is_new"] is False
    assert referral.message("appointment_scheduled", "sched-5", appointment_date="2026-02-05") == "delivered"
    assert referral.open_tasks() == [RECORD_OUTCOME] and due(referral.task(RECORD_OUTCOME)) == end_of(2, 6)
    assert referral.completed_tasks() == ["send_referral", "confirm_receipt", "record_appointment",
                                          "record_visit_outcome"]


def test_start_data_overrides_the_parameters(shipped: ApiClient, clock: ManualClock) -> None:
    referral = Referral(shipped, clock, schedule_within="P3BD", max_reschedules=0)
    referral.send_and_confirm()
    assert due(referral.task(RECORD_APPOINTMENT)) == ny(1, 22, 14)  # P3BD from Friday: Tue, Wed, Thu
    referral.at(ny(1, 22, 14, 1))
    assert referral.open_tasks() == [RECORD_APPOINTMENT, SCHEDULE_REMINDER]
    referral.complete(RECORD_APPOINTMENT, referral.coordinator, appointment_date="2026-01-26")
    referral.complete(RECORD_OUTCOME, referral.coordinator, attended=False)
    assert DECIDE in referral.open_tasks()  # no reschedule allowed


def test_a_patient_who_declines_is_cancelled_and_excluded(shipped: ApiClient, clock: ManualClock) -> None:
    referral = Referral(shipped, clock)
    cancelled = shipped.post(f"/api/instances/{referral.id}/cancel", referral.coordinator,
                             {"reason": "patient declined the referral"})
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled" and cancelled.json()["open_tasks"] == []
    assert referral.completed_tasks() == []
    expected = {"cms50-loop-closed": "not_applicable", "referral-report-reviewed": "not_applicable",
                "referral-sent-1bd": "excluded"}
    assert referral.measures() == expected
    assert referral.recorded_outcomes() == {"status": "cancelled", **expected}


def test_a_report_never_received_is_chased_then_not_met_and_back_to_the_pcp(shipped: ApiClient,
                                                                          clock: ManualClock) -> None:
    referral = Referral(shipped, clock)
    referral.attend_visit("2026-02-02")
    referral.at(ny(2, 16, 23, 59))  # report_chase_within P14D after the visit: due at the end of 16 February
    assert referral.open_tasks() == [OBTAIN_REPORT]
    referral.at(ny(2, 17, 0, 0, 30))
    assert referral.open_tasks() == [OBTAIN_REPORT, REPORT_REMINDER]
    chase = referral.task(REPORT_REMINDER)
    assert routing(chase) == (COORDINATOR, ["care-coordinator"], None) and due(chase) == end_of(2, 19)
    assert referral.measures()["cms50-loop-closed"] == "open"

    referral.at(ny(3, 4, 23, 59))
    assert referral.measures()["cms50-loop-closed"] == "open"
    referral.at(ny(3, 5, 0, 0, 30))  # the loop-closure window has closed
    assert referral.open_tasks() == [DECIDE, REPORT_REMINDER]
    assert referral.measures() == {"cms50-loop-closed": "not_met", "referral-report-reviewed": "not_met",
                                   "referral-sent-1bd": "met"}
    # A report after the window no longer has a catch to go to: it is kept, not delivered.
    assert referral.message("consult_report_received", "hie-late", report_date="2026-03-05") == "buffered"
    done = referral.complete(DECIDE, referral.pcp, next_step="request the report from the specialist again")

    assert done["status"] == "completed" and done["open_tasks"] == []
    assert referral.completed_tasks() == ["send_referral", "confirm_receipt", "decide_next_step"]
    assert referral.recorded_outcomes() == {"status": "completed", "cms50-loop-closed": "not_met",
                                            "referral-report-reviewed": "not_met", "referral-sent-1bd": "met"}


def test_finishing_a_reminder_late_keeps_the_instance_data_of_the_main_path(shipped: ApiClient,
                                                                           clock: ManualClock) -> None:
    referral = Referral(shipped, clock)
    referral.send_and_confirm()
    referral.at(ny(2, 2, 14, 1))
    assert referral.message("appointment_scheduled", appointment_date="2026-02-19") == "delivered"
    assert referral.view()["data"]["appointment_date"] == "2026-02-19"
    referral.complete(SCHEDULE_REMINDER, referral.coordinator, reminder_notes="done late")
    assert referral.view()["data"]["appointment_date"] == "2026-02-19"
