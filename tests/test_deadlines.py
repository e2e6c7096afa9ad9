"""Due and follow-up dates on human tasks from the diagram, in the pathway's calendar and time zone;
supervisors moving them; timers counted in business days; what fires and what does not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from carepath.engine.clock import ManualClock
from carepath.engine.persistence.unit_of_work import UnitOfWork
from carepath.engine.usecases.store import load_workflow, lock_instance
from carepath.engine.usecases.timers import fire_due_timers
from tests.support import diagrams as d
from tests.support.api import ApiClient

NY = ZoneInfo("America/New_York")
CAMUNDA = 'xmlns:camunda="http://camunda.org/schema/1.0/bpmn"'
SPIFF = 'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"'


def _properties(prefix: str, values: dict[str, str]) -> str:
    props = "".join(f'<{prefix}:property name="{k}" value="{v}"/>' for k, v in values.items())
    return f"<bpmn:extensionElements><{prefix}:properties>{props}</{prefix}:properties></bpmn:extensionElements>"


def _with_process_properties(xml: str, pid: str, prefix: str, values: dict[str, str]) -> str:
    opening = f'<bpmn:process id="{pid}" isExecutable="true">'
    return xml.replace(opening, opening + _properties(prefix, values), 1)


def camunda_dated(pid: str, time_settings: dict[str, str] | None = None, **attributes: str) -> str:
    attrs = " ".join(f'camunda:{k}="{v}"' for k, v in attributes.items())
    xml = d.definitions(d.process(
        pid, d.node("startEvent", "s"), f'<bpmn:userTask id="call" name="Call patient" {attrs}/>',
        d.node("endEvent", "e"), d.flow("f1", "s", "call"), d.flow("f2", "call", "e")))
    xml = xml.replace("<bpmn:definitions ", f"<bpmn:definitions {CAMUNDA} ", 1)
    return _with_process_properties(xml, pid, "camunda", time_settings) if time_settings else xml


def spiff_dated(pid: str, time_settings: dict[str, str], **properties: str) -> str:
    xml = d.definitions(d.process(
        pid, d.node("startEvent", "s"), d.node("userTask", "call", "Call patient", body=_properties(
            "spiffworkflow", properties)),
        d.node("endEvent", "e"), d.flow("f1", "s", "call"), d.flow("f2", "call", "e")))
    xml = xml.replace("<bpmn:definitions ", f"<bpmn:definitions {SPIFF} ", 1)
    return _with_process_properties(xml, pid, "spiffworkflow", time_settings)


def _start(api: ApiClient, user: str, xml: str, **start: object) -> dict:
    deployed = api.deploy(user, ("p.bpmn", xml))
    assert deployed.status_code in (200, 201), deployed.text
    started = api.start(user, deployed.json()["processes"][0]["key"], **start)
    assert started.status_code == 201, started.text
    return started.json()


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_camunda_due_and_follow_up_dates_count_business_days_in_the_pathway_zone(
        api: ApiClient, clock: ManualClock) -> None:
    admin = api.user("admin")
    clock.set(datetime(2026, 11, 20, 22, 0, tzinfo=NY))  # Friday 22:00 in New York (Saturday in UTC)
    started = _start(api, admin, camunda_dated("tcm", {"timezone": "America/New_York", "calendar": "us-federal"},
                                                dueDate="P2BD end of day", followUpDate="PT4H"))
    task = started["open_tasks"][0]
    assert _at(task["due_date"]) == datetime(2026, 11, 24, 23, 59, 59, tzinfo=NY)  # end of Tuesday
    assert _at(task["follow_up_date"]) == datetime(2026, 11, 21, 2, 0, tzinfo=NY)
    assert task["due_in_seconds"] == int((_at(task["due_date"]) - clock()).total_seconds())
    assert task["overdue"] is False
    clock.set(datetime(2026, 11, 25, 0, 0, 30, tzinfo=NY))  # 31 seconds late
    late = api.get(f"/api/tasks/{task['id']}", admin).json()
    assert (late["overdue"], late["due_in_seconds"]) == (True, -31)
    assert [t["id"] for t in api.get("/api/tasks", admin, params={"overdue": True}).json()["items"]] == [task["id"]]
    history = api.get(f"/api/instances/{started['id']}/history", admin).json()
    ready = next(e for e in history["items"] if e["type"] == "task_ready")
    assert _at(ready["data"]["due_date"]) == _at(task["due_date"])


def test_spiff_properties_count_from_an_instance_variable(api: ApiClient, clock: ManualClock) -> None:
    admin = api.user("admin")
    clock.set(datetime(2026, 1, 20, 15, 0, tzinfo=UTC))
    xml = spiff_dated("fum", {"timezone": "America/Chicago"}, dueDate="P7D after ed_visit_at end of day",
                      followUpDate="${follow_up}")
    task = _start(api, admin, xml, data={"ed_visit_at": "2026-01-16T23:30:00-06:00",
                                         "follow_up": "2026-01-21T09:00:00"})["open_tasks"][0]
    chicago = ZoneInfo("America/Chicago")
    assert _at(task["due_date"]) == datetime(2026, 1, 23, 23, 59, 59, tzinfo=chicago)
    assert _at(task["follow_up_date"]) == datetime(2026, 1, 21, 9, 0, tzinfo=chicago)  # naive: the pathway's zone


def test_the_due_date_is_fixed_when_the_task_appears(api: ApiClient, clock: ManualClock) -> None:
    """Kept with the task in the workflow: read back from the database hours later (as after a restart,
    or in another process) and looked at again, the engine still says the date worked out at creation."""
    admin = api.user("admin")
    started = _start(api, admin, camunda_dated("fixed", dueDate="P1D"))
    task = started["open_tasks"][0]
    clock.advance(hours=5)
    api.post(f"/api/tasks/{task['id']}/claim", admin)
    engine = api.engine
    engine.workflows.clear()
    with UnitOfWork(engine) as uow:
        snapshot = load_workflow(uow, lock_instance(uow, started["id"])).snapshot(engine.now())
    assert [t.due_date for t in snapshot.open_tasks] == [_at(task["due_date"])]
    assert api.get(f"/api/tasks/{task['id']}", admin).json()["due_date"] == task["due_date"]


def test_a_date_that_cannot_be_worked_out_leaves_the_task_undated_and_says_why(api: ApiClient) -> None:
    admin = api.user("admin")
    started = _start(api, admin, camunda_dated("nodate", dueDate="P2BD after discharge_at"))
    assert started["open_tasks"][0]["due_date"] is None
    history = api.get(f"/api/instances/{started['id']}/history", admin).json()
    ready = next(e for e in history["items"] if e["type"] == "task_ready")
    assert "no variable 'discharge_at'" in ready["data"]["assignment_errors"][0]


def test_deploy_refuses_unknown_calendars_zones_and_bad_dates(api: ApiClient) -> None:
    lead = api.user("clinical_lead")
    for settings, attrs, expected in [
        ({"calendar": "clinic-7"}, {"dueDate": "P2BD"}, "calendar 'clinic-7' is not configured"),
        ({"timezone": "Mars/Olympus"}, {"dueDate": "P2BD"}, "'Mars/Olympus' is not an IANA time zone"),
        (None, {"dueDate": "soon"}, "due date 'soon' is not an ISO 8601 date-time"),
        (None, {"followUpDate": "P2XD"}, "follow up date 'P2XD' is not a duration"),
        ({"timezone": "America"}, {"dueDate": "P2BD"}, "'America' is not an IANA time zone"),  # a tzdata folder
        (None, {"dueDate": "P99999Y"}, "beyond the dates this calendar can count"),
        (None, {"dueDate": "P999999BD"}, "more than the 10,000 a deadline may span"),
    ]:
        response = api.deploy(lead, ("bad.bpmn", camunda_dated("bad", settings, **attrs)))
        assert response.status_code == 422, response.text
        problems = response.json()["errors"]
        assert any(expected in p["message"] for p in problems), problems
    assert api.deploy(lead, ("ok.bpmn", camunda_dated("ok", dueDate="${deadline}"))).status_code == 201
    dotted = camunda_dated("dotted", dueDate="P2BD after patient.discharge_at end of day")
    assert api.deploy(lead, ("d.bpmn", dotted)).status_code == 201


def test_supervisors_move_due_dates_with_a_reason(api: ApiClient, clock: ManualClock) -> None:
    admin = api.user("admin")
    xml = d.linear_user_tasks("move", "Call patient", lane="Care Coordinator")
    api.deploy(admin, ("m.bpmn", xml))
    started = api.start(admin, "move", data={"discharge_at": "2026-01-09T16:00:00Z"}).json()  # a Friday
    url = f"/api/tasks/{started['open_tasks'][0]['id']}/due-date"
    boss, ana = api.user("supervisor", "care-coordinator"), api.user("coordinator", "care-coordinator")
    other_boss = api.user("supervisor", "pharmacy")
    body = {"due_date": "P2BD after discharge_at end of day", "reason": "TCM window"}
    assert api.post(url, ana, body).status_code == 403
    assert api.post(url, other_boss, body).status_code in (403, 404)
    assert api.post(url, boss, {"due_date": "P2BD"}).status_code == 422  # no reason
    for value in ("whenever", "P99999Y", "9999-12-31", "P99999999BD"):
        bad = api.post(url, boss, {"due_date": value, "reason": "x"})
        assert bad.status_code == 422 and "due_date" in bad.json()["message"], (value, bad.text)
    moved = api.post(url, boss, body)
    assert moved.status_code == 200, moved.text
    assert _at(moved.json()["due_date"]) == datetime(2026, 1, 13, 23, 59, 59, tzinfo=NY)  # us-federal default
    cleared = api.post(url, boss, {"due_date": None, "reason": "patient readmitted"}).json()
    assert cleared["due_date"] is None
    history = api.get(f"/api/instances/{started['id']}/history", admin).json()["items"]
    changes = [e["data"] for e in history if e["type"] == "task_due_date_changed"]
    assert [(c["old"] is None, c["new"] is None, c["reason"]) for c in changes] == [
        (True, False, "TCM window"), (False, True, "patient readmitted")]
    assert all(e["actor"] == boss for e in history if e["type"] == "task_due_date_changed")


def _reminder_diagram(pid: str, *, reminder: str, escalation: str) -> str:
    """"Call patient" with a repeating, non-interrupting reminder and an interrupting escalation to
    the supervisor's lane."""
    xml = d.definitions(d.process(
        pid, d.node("startEvent", "start"), d.node("userTask", "call", "Call patient"),
        d.node("boundaryEvent", "remind", "Reminder due", body=d.timer("timeCycle", reminder),
               attachedToRef="call", cancelActivity="false"),
        d.node("scriptTask", "count", "Count reminder",
               body="<bpmn:script>reminders = reminders + 1</bpmn:script>"),
        d.node("boundaryEvent", "escalate", "Escalate", body=d.timer("timeDuration", escalation),
               attachedToRef="call"),
        d.node("userTask", "review", "Supervisor review"),
        d.node("endEvent", "end"), d.node("endEvent", "end_r"), d.node("endEvent", "end_e"),
        d.flow("f1", "start", "call"), d.flow("f2", "call", "end"), d.flow("f3", "remind", "count"),
        d.flow("f4", "count", "end_r"), d.flow("f5", "escalate", "review"), d.flow("f6", "review", "end_e"),
        lanes={"Care Coordinator": ["call", "count"], "Care Team Supervisor": ["review"]}))
    return _with_process_properties(xml, pid, "camunda", {"timezone": "America/New_York"}).replace(
        "<bpmn:definitions ", f"<bpmn:definitions {CAMUNDA} ", 1)


def _fire_until(api: ApiClient, clock: ManualClock, until: datetime, step: timedelta) -> list[datetime]:
    fired = []
    while clock() < until:
        clock.advance(step)
        if fire_due_timers(api.engine):
            fired.append(clock().astimezone(NY))
    return fired


def test_a_business_day_reminder_repeats_and_an_escalation_interrupts_after_two(
        api: ApiClient, clock: ManualClock) -> None:
    admin = api.user("admin")
    clock.set(datetime(2026, 11, 25, 10, 0, tzinfo=NY))  # Wednesday before Thanksgiving
    started = _start(api, admin, _reminder_diagram("remind", reminder="R/P1BD", escalation="P3BD"),
                     data={"reminders": 0})
    fired = _fire_until(api, clock, datetime(2026, 12, 3, 12, 0, tzinfo=NY), timedelta(hours=1))
    # Reminders each business day at 10:00: Friday (Thursday is Thanksgiving), Monday; on Tuesday the
    # escalation (3 business days) and that day's reminder come due together, and the escalation
    # interrupts the call, which ends the reminders.
    assert [f.strftime("%a %d %H:%M") for f in fired] == ["Fri 27 10:00", "Mon 30 10:00", "Tue 01 10:00"]
    instance = api.get(f"/api/instances/{started['id']}", admin).json()
    assert [t["name"] for t in instance["open_tasks"]] == ["Supervisor review"]
    assert instance["open_tasks"][0]["candidate_groups"] == ["care-team-supervisor"]
    history = api.get(f"/api/instances/{started['id']}/history", admin).json()["items"]
    fired_events = [(e["data"]["element_id"], _at(e["data"]["due_at"]).astimezone(NY).strftime("%a %H:%M"))
                    for e in history if e["type"] == "timer_fired"]
    assert ("escalate", "Tue 10:00") in fired_events
    assert [f for f in fired_events if f[0] == "remind"][:2] == [("remind", "Fri 10:00"), ("remind", "Mon 10:00")]
    assert not [w for w in instance["waiting"] if w["type"] == "timer"]


def test_an_escalation_does_not_fire_for_a_task_completed_one_second_before(
        api: ApiClient, clock: ManualClock) -> None:
    admin = api.user("admin")
    clock.set(datetime(2026, 11, 23, 9, 0, tzinfo=NY))  # Monday
    started = _start(api, admin, _reminder_diagram("race", reminder="R/P1BD", escalation="P2BD"),
                     data={"reminders": 0})
    waiting = {w["element_id"]: _at(w["due_at"]) for w in started["waiting"] if w["type"] == "timer"}
    assert waiting["escalate"] == datetime(2026, 11, 25, 9, 0, tzinfo=NY)
    clock.set(datetime(2026, 11, 24, 9, 0, 1, tzinfo=NY))
    fire_due_timers(api.engine)  # Tuesday's reminder
    clock.set(waiting["escalate"] - timedelta(seconds=1))
    call = next(t for t in api.get(f"/api/instances/{started['id']}", admin).json()["open_tasks"]
                if t["name"] == "Call patient")
    assert api.post(f"/api/tasks/{call['id']}/complete", admin, {"data": {}}).status_code == 200
    clock.set(waiting["escalate"] + timedelta(days=3))
    assert fire_due_timers(api.engine) == 0
    instance = api.get(f"/api/instances/{started['id']}", admin).json()
    assert instance["status"] == "completed" and instance["open_tasks"] == []


def test_the_escalation_fires_for_a_task_still_open_one_second_after(api: ApiClient, clock: ManualClock) -> None:
    admin = api.user("admin")
    clock.set(datetime(2026, 11, 23, 9, 0, tzinfo=NY))
    started = _start(api, admin, _reminder_diagram("late", reminder="R/P1BD", escalation="P2BD"),
                     data={"reminders": 0})
    clock.set(datetime(2026, 11, 25, 9, 0, 1, tzinfo=NY))
    assert fire_due_timers(api.engine) >= 1
    names = [t["name"] for t in api.get(f"/api/instances/{started['id']}", admin).json()["open_tasks"]]
    assert names == ["Supervisor review"]


def test_an_appointment_message_races_a_fourteen_day_timer(api: ApiClient, clock: ManualClock) -> None:
    admin = api.user("admin")

    def race(pid: str) -> str:
        return d.definitions(d.process(
            pid, d.node("startEvent", "start"), d.node("eventBasedGateway", "gw", "Booked in time?"),
            d.node("intermediateCatchEvent", "booked", "Appointment booked", body=d.message_ref("appointment_booked")),
            d.node("intermediateCatchEvent", "deadline", "14 days", body=d.timer("timeDuration", "P14D")),
            d.node("userTask", "confirm", "Confirm appointment"), d.node("userTask", "chase", "Chase booking"),
            d.node("endEvent", "e1"), d.node("endEvent", "e2"),
            d.flow("f1", "start", "gw"), d.flow("f2", "gw", "booked"), d.flow("f3", "gw", "deadline"),
            d.flow("f4", "booked", "confirm"), d.flow("f5", "deadline", "chase"), d.flow("f6", "confirm", "e1"),
            d.flow("f7", "chase", "e2")), messages=("appointment_booked",))

    api.deploy(admin, ("r.bpmn", race("race14")))
    booked = api.start(admin, "race14", business_key="enc-1").json()
    unbooked = api.start(admin, "race14", business_key="enc-2").json()
    clock.advance(days=13, hours=23)
    sent = api.post("/api/messages", admin, {"name": "appointment_booked", "correlation_key": "enc-1"})
    assert sent.status_code in (200, 202), sent.text
    clock.advance(hours=1, seconds=1)
    assert fire_due_timers(api.engine) == 1
    names = {i["business_key"]: [t["name"] for t in api.get(f"/api/instances/{i['id']}", admin).json()["open_tasks"]]
             for i in (booked, unbooked)}
    assert names == {"enc-1": ["Confirm appointment"], "enc-2": ["Chase booking"]}


def test_an_escalation_event_in_the_diagram_notifies_the_supervisor(api: ApiClient) -> None:
    """A BPMN escalation (thrown inside the outreach subprocess when the patient cannot be reached)
    caught by a non-interrupting boundary event: a "Notify supervisor" task in the supervisor's lane."""
    admin = api.user("admin")
    inner = "".join([
        d.node("startEvent", "s_start"), d.node("userTask", "call", "Call patient"),
        d.node("exclusiveGateway", "reached_gw", "Reached?", default="f_yes"),
        d.node("intermediateThrowEvent", "raise", "Patient unreachable",
               body='<bpmn:escalationEventDefinition escalationRef="esc_unreachable"/>'),
        d.node("endEvent", "s_end"), d.node("endEvent", "s_end2"),
        d.flow("s1", "s_start", "call"), d.flow("s2", "call", "reached_gw"),
        d.flow("f_no", "reached_gw", "raise", "reached == False"), d.flow("f_yes", "reached_gw", "s_end"),
        d.flow("s3", "raise", "s_end2")])
    xml = d.definitions(d.process(
        "esc", d.node("startEvent", "start"), d.node("subProcess", "outreach", "Outreach", body=inner),
        d.node("boundaryEvent", "escalated", "Unreachable", attachedToRef="outreach", cancelActivity="false",
               body='<bpmn:escalationEventDefinition escalationRef="esc_unreachable"/>'),
        d.node("userTask", "notify", "Notify supervisor"), d.node("endEvent", "end"), d.node("endEvent", "end_b"),
        d.flow("f1", "start", "outreach"), d.flow("f2", "outreach", "end"), d.flow("f3", "escalated", "notify"),
        d.flow("f4", "notify", "end_b"),
        lanes={"Care Coordinator": ["call"], "Care Team Supervisor": ["notify"]}),
        extra='<bpmn:escalation id="esc_unreachable" name="Unreachable" escalationCode="unreachable"/>')
    assert api.deploy(admin, ("esc.bpmn", xml)).status_code == 201
    for reached, expected in ((False, ["Notify supervisor"]), (True, [])):
        started = api.start(admin, "esc").json()
        call = started["open_tasks"][0]
        done = api.post(f"/api/tasks/{call['id']}/complete", admin, {"data": {"reached": reached}})
        assert done.status_code == 200, done.text
        instance = done.json()
        assert [t["name"] for t in instance["open_tasks"]] == expected
        if expected:
            assert instance["open_tasks"][0]["candidate_groups"] == ["care-team-supervisor"]
        else:
            assert instance["status"] == "completed"
