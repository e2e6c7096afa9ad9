"""Buffered messages are delivered after engine steps on every path, and each message is received once.

Saving only saves (`store.save_workflow`); `after_steps.after_engine_steps` saves and then hands over the
buffered messages the instance now waits for. Every use case that runs engine steps must end with it:
a test lists them from the source, and one test per path drives it with a message that arrived early.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from carepath.engine import usecases
from carepath.engine.clock import ManualClock
from carepath.engine.usecases.timers import fire_due_timers
from tests.support import diagrams as d
from tests.support.api import ApiClient

USECASES = Path(usecases.__file__).parent
ENGINE_STEPS = {"run", "complete_task", "deliver_message", "retry", "cancel", "hand_over"}
# Every use case that runs engine steps, and the test below that drives it with a buffered message.
PATHS_THAT_RUN_ENGINE_STEPS = {
    ("instances", "begin_instance"): "start",
    ("tasks", "complete_task"): "complete",
    ("timers", "_fire"): "timer",
    ("instances", "retry_instance"): "retry",
    ("messages", "_deliver_to_subscribers"): "message",
    ("instances", "end_cancelled"): None,  # a cancelled episode waits for nothing: nothing to deliver
}
NOT_A_PATH = {("after_steps", "hand_over"), ("after_steps", "deliver_buffered"),  # the delivery itself
              ("connector_calls", "_complete")}  # an external task's completion (external_tasks.complete_task)
SIMULATION = {"simulate"}  # no database, nothing buffered


def _top_level_functions() -> list[tuple[str, ast.FunctionDef]]:
    found = []
    for path in sorted(USECASES.glob("*.py")):
        if path.stem in SIMULATION:
            continue
        tree = ast.parse(path.read_text(), str(path))
        found += [(path.stem, node) for node in tree.body if isinstance(node, ast.FunctionDef)]
    return found


def _calls(function: ast.FunctionDef) -> set[str]:
    """Names called in the function and the functions nested in it: `f(...)`, and `workflow.f(...)`."""
    names = set()
    for node in ast.walk(function):
        if not isinstance(node, ast.Call):
            continue
        if isinstance(node.func, ast.Name):
            names.add(node.func.id)
        elif isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name) \
                and node.func.value.id == "workflow":
            names.add(node.func.attr)
    return names


def test_every_use_case_that_runs_engine_steps_delivers_buffered_messages_after_them() -> None:
    callers = {(module, fn.name): _calls(fn) for module, fn in _top_level_functions()
               if _calls(fn) & ENGINE_STEPS and (module, fn.name) not in NOT_A_PATH}
    assert set(callers) == set(PATHS_THAT_RUN_ENGINE_STEPS), (
        "a use case runs engine steps: end it with after_engine_steps and drive it in this file")
    missing = sorted(path for path, calls in callers.items() if "after_engine_steps" not in calls)
    assert missing == [], f"these run engine steps but never call after_engine_steps: {missing}"


def test_saving_only_saves() -> None:
    savers = sorted((module, fn.name) for module, fn in _top_level_functions() if "save_workflow" in _calls(fn))
    assert savers == [("after_steps", "after_engine_steps")]


def test_the_use_cases_import_one_another_without_a_cycle() -> None:
    graph = {}
    for path in USECASES.glob("*.py"):
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):  # function-local imports too
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
                imported.add(node.module.split(".")[0])
        graph[path.stem] = imported
    done: set[str] = set()

    def visit(module: str, trail: tuple[str, ...]) -> None:
        assert module not in trail, f"import cycle: {' -> '.join((*trail, module))}"
        if module in done:
            return
        for target in sorted(graph.get(module, ())):
            visit(target, (*trail, module))
        done.add(module)

    for module in sorted(graph):
        visit(module, ())


# -- each path, driven: the message arrives before the catch is reached ---------------------------------

def _before_the_wait(pid: str, *before: str) -> str:
    """start -> the given elements (ids b0, b1, ...) -> wait for "report" -> user task "Close" -> end."""
    chain = ["start", *(f"b{i}" for i in range(len(before))), "wait", "close", "end"]
    return d.definitions(d.process(
        pid, d.node("startEvent", "start"), *before,
        d.node("intermediateCatchEvent", "wait", "Report received", body=d.message_ref("report")),
        d.node("userTask", "close", "Close"), d.node("endEvent", "end"),
        *(d.flow(f"f{i}", a, b) for i, (a, b) in enumerate(zip(chain, chain[1:], strict=False)))),
        messages=("report", "first"))


def _history(api: ApiClient, user: str, instance_id: str) -> list[dict[str, Any]]:
    return list(api.get(f"/api/instances/{instance_id}/history", user, params={"limit": 500}).json()["items"])


def _delivered_once(api: ApiClient, lead: str, instance_id: str) -> None:
    instance = api.get(f"/api/instances/{instance_id}", lead).json()
    assert [t["name"] for t in instance["open_tasks"]] == ["Close"], instance
    assert instance["data"]["report"] == "early"
    received = [e for e in _history(api, lead, instance_id) if e["type"] == "message_received"
                and e["data"]["name"] == "report"]
    assert [e["actor"] for e in received] == ["system"]


def _buffer_report(api: ApiClient, lead: str, key: str) -> None:
    sent = api.post("/api/messages", lead, {"name": "report", "correlation_key": key, "data": {"report": "early"}})
    assert sent.json()["outcome"] == "buffered", sent.text


def _path_start(api: ApiClient, lead: str, clock: ManualClock) -> str:
    api.deploy(lead, ("p.bpmn", _before_the_wait("p")))
    _buffer_report(api, lead, "enc-1")
    return str(api.start(lead, "p", business_key="enc-1").json()["id"])


def _path_complete(api: ApiClient, lead: str, clock: ManualClock) -> str:
    api.deploy(lead, ("p.bpmn", _before_the_wait("p", d.node("userTask", "b0", "Call patient"))))
    started = api.start(lead, "p", business_key="enc-1").json()
    _buffer_report(api, lead, "enc-1")
    api.post(f"/api/tasks/{started['open_tasks'][0]['id']}/complete", lead, {"data": {}})
    return str(started["id"])


def _path_timer(api: ApiClient, lead: str, clock: ManualClock) -> str:
    api.deploy(lead, ("p.bpmn", _before_the_wait("p", d.node("intermediateCatchEvent", "b0", "An hour",
                                                                body=d.timer("timeDuration", "PT1H")))))
    started = api.start(lead, "p", business_key="enc-1").json()
    _buffer_report(api, lead, "enc-1")
    clock.advance(timedelta(hours=2))
    assert fire_due_timers(api.engine) == 1
    return str(started["id"])


def _path_retry(api: ApiClient, lead: str, clock: ManualClock) -> str:
    api.deploy(lead, ("p.bpmn", _before_the_wait("p", d.node("scriptTask", "b0", "Dose", body=(
        "<bpmn:script>total = dose * 2</bpmn:script>")))))
    started = api.start(lead, "p", business_key="enc-1").json()
    assert started["status"] == "incident"
    _buffer_report(api, lead, "enc-1")
    assert api.post(f"/api/instances/{started['id']}/retry", lead, {"data": {"dose": 2}}).status_code == 200
    return str(started["id"])


def _path_message(api: ApiClient, lead: str, clock: ManualClock) -> str:
    api.deploy(lead, ("p.bpmn", _before_the_wait("p", d.node("intermediateCatchEvent", "b0", "First",
                                                                body=d.message_ref("first")))))
    started = api.start(lead, "p", business_key="enc-1").json()
    _buffer_report(api, lead, "enc-1")
    sent = api.post("/api/messages", lead, {"name": "first", "correlation_key": "enc-1"}).json()
    assert sent["outcome"] == "delivered"
    return str(started["id"])


DRIVES: dict[str, Callable[[ApiClient, str, ManualClock], str]] = {
    "start": _path_start, "complete": _path_complete, "timer": _path_timer, "retry": _path_retry,
    "message": _path_message}


def test_every_listed_path_is_driven() -> None:
    assert {p for p in PATHS_THAT_RUN_ENGINE_STEPS.values() if p} == set(DRIVES)


@pytest.mark.parametrize("path", sorted(DRIVES))
def test_a_buffered_message_is_delivered_once_after_engine_steps(api: ApiClient, clock: ManualClock,
                                                                 path: str) -> None:
    lead = api.user("clinical_lead")
    _delivered_once(api, lead, DRIVES[path](api, lead, clock))


# -- defect 1: a message received twice -----------------------------------------------------------------

def test_walk_through_step_5_is_received_once_when_the_catch_it_leads_to_waits_again(
        shipped: ApiClient, clock: ManualClock) -> None:
    """README step 5 a week after the ED visit: the 5-day check has passed, so the visit confirmation waits
    for the message on its boundary; the message comes without a date, so the confirmation comes back and
    its boundary waits for the same message again. The message was recorded received twice (by the
    sender, then by `system`), because its row was still buffered when the save after delivery looked."""
    clock.set(datetime(2026, 11, 26, 15, 0, tzinfo=UTC))
    lead = shipped.user("clinical_lead")
    coordinator = shipped.user("coordinator", "care-coordinator")
    started = shipped.start(lead, "post-ed-follow-up", business_key="enc-1001", patient_id="pat-42", data={
        "ed_visit_date": "2026-11-20", "diagnosis_category": "mental_illness", "high_risk_chronic_conditions": 0})
    assert started.status_code == 201, started.text
    instance_id = started.json()["id"]
    for data in ({"reached": True, "call_notes": "spoke with patient"},
                 {"follow_up_date": "2026-11-25", "follow_up_provider": "Dr Lee"}):
        task = shipped.get("/api/tasks", coordinator, params={"candidate": "me"}).json()["items"][0]
        assert shipped.post(f"/api/tasks/{task['id']}/complete", coordinator, {"data": data}).status_code == 200
    sent = shipped.post("/api/messages", coordinator, {"name": "visit_completed", "correlation_key": "enc-1001",
                                                       "message_id": "sched-77"})
    assert sent.json()["outcome"] == "delivered", sent.text
    received = [e for e in _history(shipped, lead, instance_id) if e["type"] == "message_received"]
    assert [(e["actor"], e["data"]["message_id"]) for e in received] == [(coordinator, "sched-77")]
    waiting = shipped.get(f"/api/instances/{instance_id}", lead).json()["waiting"]
    assert sorted(w["message_name"] for w in waiting if w["type"] == "message") == [
        "ed_visit_admitted", "visit_completed"]  # re-armed (and the admission watch)
