"""BPMN constructs real pathways use: inclusive gateways, embedded subprocesses, multi-instance
tasks, boundary message and error events, cycle timers, and timer retries before an incident."""

from __future__ import annotations

from sqlalchemy import select

from carepath.engine.clock import ManualClock
from carepath.engine.persistence.tables import Event, Timer
from carepath.engine.usecases.timers import fire_due_timers
from tests.support import diagrams as d
from tests.support.api import ApiClient


def _deploy_and_start(api: ApiClient, xml: str, **start: object) -> tuple[str, dict]:
    lead = api.user("admin")
    response = api.deploy(lead, ("p.bpmn", xml))
    assert response.status_code in (200, 201), response.text  # 200: the same diagram again
    key = response.json()["processes"][0]["key"]
    started = api.start(lead, key, **start)
    assert started.status_code == 201, started.text
    return lead, started.json()


def _complete(api: ApiClient, user: str, instance: dict, name: str, data: dict | None = None) -> dict:
    task = next(t for t in instance["open_tasks"] if t["name"] == name)
    response = api.post(f"/api/tasks/{task['id']}/complete", user, {"data": data or {}})
    assert response.status_code == 200, response.text
    return response.json()


def _names(instance: dict) -> list[str]:
    return sorted(t["name"] for t in instance["open_tasks"])


def test_inclusive_gateway_opens_every_branch_whose_condition_holds(api: ApiClient) -> None:
    xml = d.definitions(d.process(
        "incl", d.node("startEvent", "s"), d.node("inclusiveGateway", "split", default="f_none"),
        d.node("userTask", "pharm", "Pharmacy review"), d.node("userTask", "sw", "Social work"),
        d.node("userTask", "none", "Nothing needed"), d.node("inclusiveGateway", "join"), d.node("endEvent", "e"),
        d.flow("f0", "s", "split"), d.flow("f_p", "split", "pharm", "meds > 5"),
        d.flow("f_s", "split", "sw", "lives_alone == True"), d.flow("f_none", "split", "none"),
        d.flow("f1", "pharm", "join"), d.flow("f2", "sw", "join"), d.flow("f3", "none", "join"),
        d.flow("f4", "join", "e")))
    user, both = _deploy_and_start(api, xml, data={"meds": 8, "lives_alone": True})
    assert _names(both) == ["Pharmacy review", "Social work"]
    _, one = _deploy_and_start(api, xml, data={"meds": 8, "lives_alone": False})
    assert _names(one) == ["Pharmacy review"]
    done = _complete(api, user, _complete(api, user, both, "Pharmacy review"), "Social work")
    assert done["status"] == "completed"


def test_embedded_subprocess_and_multi_instance_tasks(api: ApiClient) -> None:
    inner = (d.node("startEvent", "ss") + d.node("userTask", "rec", "Reconcile medications")
             + d.node("endEvent", "se") + d.flow("sf1", "ss", "rec") + d.flow("sf2", "rec", "se"))
    mi = ('<bpmn:multiInstanceLoopCharacteristics><bpmn:loopCardinality>3</bpmn:loopCardinality>'
          '</bpmn:multiInstanceLoopCharacteristics>')
    xml = d.definitions(d.process(
        "sub", d.node("startEvent", "s"), d.node("subProcess", "sp", "Medication review", body=inner),
        d.node("userTask", "calls", "Follow-up call", body=mi), d.node("endEvent", "e"),
        d.flow("f1", "s", "sp"), d.flow("f2", "sp", "calls"), d.flow("f3", "calls", "e")))
    user, started = _deploy_and_start(api, xml)
    assert _names(started) == ["Reconcile medications"]
    after_sub = _complete(api, user, started, "Reconcile medications")
    assert _names(after_sub) == ["Follow-up call"] * 3  # parallel multi-instance: all three at once
    current = after_sub
    for _ in range(3):
        current = _complete(api, user, current, "Follow-up call")
    assert current["status"] == "completed"


def test_boundary_message_interrupts_the_task(api: ApiClient) -> None:
    xml = d.definitions(d.process(
        "bm", d.node("startEvent", "s"), d.node("userTask", "wait", "Chase specialist report"),
        d.node("boundaryEvent", "arrived", "Report arrived", body=d.message_ref("report"), attachedToRef="wait"),
        d.node("userTask", "review", "PCP reviews report"), d.node("endEvent", "e1"), d.node("endEvent", "e2"),
        d.flow("f1", "s", "wait"), d.flow("f2", "wait", "e1"), d.flow("f3", "arrived", "review"),
        d.flow("f4", "review", "e2")), messages=("report",))
    user, started = _deploy_and_start(api, xml, business_key="ref-1")
    sent = api.post("/api/messages", user, {"name": "report", "correlation_key": "ref-1", "data": {"a1c": 7.1}})
    assert sent.json()["outcome"] == "delivered"
    after = api.get(f"/api/instances/{started['id']}", user).json()
    assert _names(after) == ["PCP reviews report"] and after["data"]["a1c"] == 7.1


def test_error_end_event_is_caught_by_a_boundary_error_event(api: ApiClient) -> None:
    inner = (d.node("startEvent", "ss") + d.node("userTask", "book", "Book SNF bed")
             + d.node("exclusiveGateway", "gw", default="sf_ok")
             + d.node("endEvent", "fail", body='<bpmn:errorEventDefinition errorRef="Err_nobed"/>')
             + d.node("endEvent", "ok") + d.flow("sf1", "ss", "book") + d.flow("sf2", "book", "gw")
             + d.flow("sf_fail", "gw", "fail", "bed_found == False") + d.flow("sf_ok", "gw", "ok"))
    xml = d.definitions(d.process(
        "err", d.node("startEvent", "s"), d.node("subProcess", "sp", "Find a bed", body=inner),
        d.node("boundaryEvent", "nobed", "No bed", body='<bpmn:errorEventDefinition errorRef="Err_nobed"/>',
               attachedToRef="sp"),
        d.node("userTask", "alt", "Arrange home health"), d.node("userTask", "admit", "Admit to SNF"),
        d.node("endEvent", "e1"), d.node("endEvent", "e2"),
        d.flow("f1", "s", "sp"), d.flow("f2", "sp", "admit"), d.flow("f3", "admit", "e1"),
        d.flow("f4", "nobed", "alt"), d.flow("f5", "alt", "e2")),
        extra='<bpmn:error id="Err_nobed" name="No bed" errorCode="NO_BED"/>')
    user, started = _deploy_and_start(api, xml)
    after = _complete(api, user, started, "Book SNF bed", {"bed_found": False})
    assert _names(after) == ["Arrange home health"]


def test_cycle_timer_fires_each_repetition_once(api: ApiClient, clock: ManualClock) -> None:
    xml = d.boundary_timers("cyc", reminder="R2/PT1H", reminder_kind="timeCycle", escalation="P30D")
    user, started = _deploy_and_start(api, xml)
    for _ in range(3):
        clock.advance(hours=1, seconds=1)
        fire_due_timers(api.engine)
    after = api.get(f"/api/instances/{started['id']}", user).json()
    assert _names(after) == ["Call patient", "Reminder", "Reminder"]
    with api.engine.db.read() as session:
        fired = session.scalars(select(Event).where(Event.type == "timer_fired",
                                                    Event.instance_id == started["id"])).all()
    assert len(fired) == 2


def test_failing_timer_is_retried_with_backoff_then_becomes_an_incident(api: ApiClient, clock: ManualClock) -> None:
    xml = d.definitions(d.process(
        "tf", d.node("startEvent", "s"),
        d.node("intermediateCatchEvent", "wait", "Wait a day", body=d.timer("timeDuration", "P1D")),
        d.node("scriptTask", "calc", "Score", body="<bpmn:script>score = 10 / divisor</bpmn:script>"),
        d.node("userTask", "review", "Review"), d.node("endEvent", "e"),
        d.flow("f1", "s", "wait"), d.flow("f2", "wait", "calc"), d.flow("f3", "calc", "review"),
        d.flow("f4", "review", "e")))
    user, started = _deploy_and_start(api, xml, data={"divisor": 0})
    clock.advance(days=1, seconds=1)
    attempts = api.engine.config.timer_max_attempts
    for _ in range(attempts - 1):
        fire_due_timers(api.engine)
        assert api.get(f"/api/instances/{started['id']}", user).json()["status"] == "running"
        clock.advance(hours=12)
    with api.engine.db.read() as session:
        timer = session.scalars(select(Timer).where(Timer.instance_id == started["id"])).one()
        assert timer.attempts == attempts - 1 and "division" in (timer.last_error or "").lower()
    fire_due_timers(api.engine)
    after = api.get(f"/api/instances/{started['id']}", user).json()
    assert after["status"] == "incident" and after["incident"]["element_id"] == "calc"
