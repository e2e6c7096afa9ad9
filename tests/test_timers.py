"""Timers fire from the database with the product's clock, once."""

from __future__ import annotations

from datetime import timedelta

from carepath.engine.clock import ManualClock
from carepath.engine.usecases.timers import fire_due_timers
from tests.support import diagrams as d
from tests.support.api import ApiClient


def _names(instance: dict) -> list[str]:
    return sorted(t["name"] for t in instance["open_tasks"])


def test_boundary_timers_remind_then_escalate(api: ApiClient, clock: ManualClock) -> None:
    lead = api.user("clinical_lead")
    api.deploy(lead, ("t.bpmn", d.boundary_timers("t")))
    started = api.start(lead, "t").json()
    dues = sorted(w["due_at"] for w in started["waiting"] if w["type"] == "timer")
    assert len(dues) == 2
    assert fire_due_timers(api.engine) == 0
    clock.advance(days=1, seconds=1)
    assert fire_due_timers(api.engine) == 1
    reminded = api.get(f"/api/instances/{started['id']}", lead).json()
    assert _names(reminded) == ["Call patient", "Reminder"]
    clock.advance(days=1)
    assert fire_due_timers(api.engine) == 1
    escalated = api.get(f"/api/instances/{started['id']}", lead).json()
    assert _names(escalated) == ["Escalation", "Reminder"]
    call = api.get("/api/tasks", lead, params={"instance_id": started["id"], "state": "cancelled"}).json()
    assert [t["name"] for t in call["items"]] == ["Call patient"]
    assert fire_due_timers(api.engine) == 0


def test_bare_iso_dates_and_durations_are_accepted(api: ApiClient, clock: ManualClock) -> None:
    lead = api.user("clinical_lead")
    due = (clock() + timedelta(hours=3)).isoformat()
    xml = d.boundary_timers("t", reminder="PT30M", escalation=due, escalation_kind="timeDate")
    assert api.deploy(lead, ("t.bpmn", xml)).status_code == 201
    started = api.start(lead, "t").json()
    dues = sorted(w["due_at"] for w in started["waiting"] if w["type"] == "timer")
    assert [x[:16] for x in dues] == [(clock() + timedelta(minutes=30)).isoformat()[:16], due[:16]]


def test_quoted_expression_timers_still_work(api: ApiClient, clock: ManualClock) -> None:
    lead = api.user("clinical_lead")
    api.deploy(lead, ("t.bpmn", d.boundary_timers("t", reminder="'PT2H'", escalation="\"P3D\"")))
    started = api.start(lead, "t").json()
    clock.advance(hours=2, seconds=1)
    fire_due_timers(api.engine)
    assert _names(api.get(f"/api/instances/{started['id']}", lead).json()) == ["Call patient", "Reminder"]


def test_completing_the_task_cancels_its_timers(api: ApiClient, clock: ManualClock) -> None:
    lead = api.user("clinical_lead")
    api.deploy(lead, ("t.bpmn", d.boundary_timers("t")))
    started = api.start(lead, "t").json()
    done = api.post(f"/api/tasks/{started['open_tasks'][0]['id']}/complete", lead, {"data": {}}).json()
    assert done["status"] == "completed" and done["waiting"] == []
    clock.advance(days=5)
    assert fire_due_timers(api.engine) == 0


def test_timer_history_records_lateness(api: ApiClient, clock: ManualClock) -> None:
    from sqlalchemy import select

    from carepath.engine.persistence.tables import Event

    lead = api.user("clinical_lead")
    api.deploy(lead, ("t.bpmn", d.boundary_timers("t")))
    started = api.start(lead, "t").json()
    clock.advance(days=1, hours=5)  # the process was down for five hours past the reminder
    fire_due_timers(api.engine)
    with api.engine.db.read() as session:
        fired = session.scalars(select(Event).where(Event.instance_id == started["id"],
                                                    Event.type == "timer_fired")).all()
    assert len(fired) == 1 and fired[0].data["late_by_seconds"] == 5 * 3600


def test_a_failing_timer_is_rolled_back_alone_and_the_rest_of_its_batch_fires(api: ApiClient,
                                                                             clock: ManualClock) -> None:
    """Timers fire in batches of one transaction; one whose script fails must not take the others down,
    nor leave half of its own change behind."""
    from sqlalchemy import select

    from carepath.engine.persistence.tables import Event, Timer

    lead = api.user("clinical_lead")
    api.deploy(lead, ("tb.bpmn", d.definitions(d.process(
        "tb", d.node("startEvent", "s"),
        d.node("intermediateCatchEvent", "wait", "Wait a day", body=d.timer("timeDuration", "P1D")),
        d.node("scriptTask", "calc", "Score", body="<bpmn:script>score = 10 / divisor</bpmn:script>"),
        d.node("userTask", "review", "Review"), d.node("endEvent", "e"),
        d.flow("f1", "s", "wait"), d.flow("f2", "wait", "calc"), d.flow("f3", "calc", "review"),
        d.flow("f4", "review", "e")))))
    divisors = [1, 0, 2, 0, 5]
    started = [api.start(lead, "tb", data={"divisor": n}).json()["id"] for n in divisors]
    clock.advance(days=1, seconds=1)
    assert fire_due_timers(api.engine) == len(divisors)
    for instance_id, divisor in zip(started, divisors, strict=True):
        instance = api.get(f"/api/instances/{instance_id}", lead).json()
        with api.engine.db.read() as session:
            timer = session.scalars(select(Timer).where(Timer.instance_id == instance_id)).one()
            fired = session.scalars(select(Event.type).where(Event.instance_id == instance_id,
                                                             Event.type.in_(["timer_fired", "timer_retry_scheduled"])))
            history = list(fired)
        if divisor:
            assert _names(instance) == ["Review"] and timer.state == "fired" and history == ["timer_fired"]
        else:  # nothing of the failed attempt stayed: no task, no fired event; a retry is due later
            assert _names(instance) == [] and instance["status"] == "running"
            assert (timer.state, timer.attempts, history) == ("pending", 1, ["timer_retry_scheduled"])
            assert timer.due_at > clock()
    assert fire_due_timers(api.engine) == 0
