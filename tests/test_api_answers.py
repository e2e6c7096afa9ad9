"""The answer of a completion and of a start is the instance as a GET right after reads it, field by field,
though it is built from what the change already holds in memory; and what the API adds to a change in SQL
statements (authentication, the answer) stays within a counted bound."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from httpx import Response
from sqlalchemy import event

from carepath.bench.chain import CHAIN_KEY, chain_bpmn
from carepath.engine.persistence import unit_of_work
from tests.support import diagrams as d
from tests.support.api import ApiClient


def parallel_with_timers(pid: str) -> str:
    """Two tasks in parallel, each with the same non-interrupting reminder (due at the same instant), then
    a task that waits for a message beside it."""
    remind = d.timer("timeDuration", "P1D")
    return d.definitions(d.process(
        pid, d.node("startEvent", "start"), d.node("parallelGateway", "split"),
        d.node("userTask", "call", "Call patient"), d.node("userTask", "book", "Book visit"),
        d.node("boundaryEvent", "call_r", "Call reminder", body=remind, attachedToRef="call", cancelActivity="false"),
        d.node("boundaryEvent", "book_r", "Book reminder", body=remind, attachedToRef="book", cancelActivity="false"),
        d.node("endEvent", "call_r_end"), d.node("endEvent", "book_r_end"),
        d.node("parallelGateway", "join"), d.node("userTask", "review", "Review"),
        d.node("boundaryEvent", "escalate", "Escalate", body=d.timer("timeDuration", "P3D"), attachedToRef="review"),
        d.node("userTask", "escalation", "Escalation"), d.node("endEvent", "end"), d.node("endEvent", "end_e"),
        d.flow("f1", "start", "split"), d.flow("f2", "split", "call"), d.flow("f3", "split", "book"),
        d.flow("f4", "call", "join"), d.flow("f5", "book", "join"), d.flow("f6", "join", "review"),
        d.flow("f7", "review", "end"), d.flow("f8", "call_r", "call_r_end"), d.flow("f9", "book_r", "book_r_end"),
        d.flow("f10", "escalate", "escalation"), d.flow("f11", "escalation", "end_e")))


def task_then_worker(pid: str) -> str:
    """A user task, then a service task that waits for an external worker of topic 'send-sms'."""
    return d.definitions(d.process(
        pid, d.node("startEvent", "start"), d.node("userTask", "prepare", "Prepare the message"),
        d.node("serviceTask", "send", "Send SMS", **{"xmlns:carepath": "http://carepath.org/schema/bpmn/1.0",
                                                     "carepath:topic": "send-sms"}),
        d.node("endEvent", "end"),
        d.flow("f1", "start", "prepare"), d.flow("f2", "prepare", "send"), d.flow("f3", "send", "end")))


PATHWAYS: dict[str, Callable[[str], str]] = {
    "par": parallel_with_timers,
    "fu": lambda pid: d.linear_user_tasks(pid, "Call patient", "Book visit", lane="Care Coordinator"),
    "esc": d.boundary_timers,
    "msg": lambda pid: d.task_then_message(pid, "lab_result"),
    "ext": task_then_worker,
}


def _walk(api: ApiClient, admin: str, key: str, *, patient: bool) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each answer of the episode's start and task completions, until no task is open."""
    body = {"patient_id": f"pat-{key}", "data": {"weight": 70}} if patient else {}
    answer = api.start(admin, key, **body)
    assert answer.status_code == 201, answer.text
    yield "start", answer.json()
    for _ in range(10):
        tasks = answer.json()["open_tasks"]
        if not tasks:
            return
        answer = api.post(f"/api/tasks/{tasks[-1]['id']}/complete", admin, {"data": {"note": "done"}})
        assert answer.status_code == 200, answer.text
        yield tasks[-1]["name"], answer.json()


@pytest.mark.parametrize("patient", [False, True])
def test_each_answer_is_the_instance_as_a_get_right_after_reads_it(api: ApiClient, patient: bool) -> None:
    admin = api.user("admin")
    for key, diagram in PATHWAYS.items():
        assert api.deploy(admin, (f"{key}.bpmn", diagram(key))).status_code == 201
    seen_waits = 0
    for key in PATHWAYS:
        for step, answer in _walk(api, admin, key, patient=patient):
            read = api.get(f"/api/instances/{answer['id']}", admin).json()
            for field in read:
                assert answer[field] == read[field], (key, step, field)
            assert answer.keys() == read.keys()
            seen_waits += len(answer["waiting"])
    assert seen_waits >= 7  # timers side by side, a message wait and a worker's task were in the answers compared


def test_a_cancels_answer_is_the_instance_as_a_get_reads_it(api: ApiClient) -> None:
    admin = api.user("admin")
    api.deploy(admin, ("par.bpmn", parallel_with_timers("par")))
    started = api.start(admin, "par", patient_id="pat-c").json()
    assert len(started["waiting"]) == 2
    answer = api.post(f"/api/instances/{started['id']}/cancel", admin, {"reason": "moved away"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == api.get(f"/api/instances/{started['id']}", admin).json()
    assert answer.json()["status"] == "cancelled" and answer.json()["waiting"] == []


def test_a_coordinators_answer_says_what_they_may_do(api: ApiClient) -> None:
    """Actions are the caller's: a coordinator who completes a task of their lane sees theirs, as a GET."""
    admin = api.user("admin")
    cora = api.user("coordinator", "care-coordinator")
    api.deploy(admin, ("fu.bpmn", d.linear_user_tasks("fu", "Call patient", "Book visit", lane="Care Coordinator")))
    task = api.start(cora, "fu").json()["open_tasks"][0]
    answer = api.post(f"/api/tasks/{task['id']}/complete", cora, {"data": {}}).json()
    read = api.get(f"/api/instances/{answer['id']}", cora).json()
    assert answer == read
    assert answer["open_tasks"][0]["actions"] and answer["actions"]


@contextmanager
def counted(api: ApiClient) -> Iterator[dict[str, list[str]]]:
    """SQL statements run meanwhile: `write` inside a change's transaction (the engine's), `api` outside
    any (authentication, and the answer when it reads again)."""
    found: dict[str, list[str]] = {"write": [], "api": []}
    depth = [0]
    enter, leave = unit_of_work.UnitOfWork.__enter__, unit_of_work.UnitOfWork.__exit__

    def entered(self: Any) -> Any:
        depth[0] += 1
        return enter(self)

    def left(self: Any, *exc: Any) -> None:
        try:
            leave(self, *exc)
        finally:
            depth[0] -= 1

    def count(*args: Any) -> None:
        found["write" if depth[0] else "api"].append(args[2])

    event.listen(api.engine.db.engine, "before_cursor_execute", count)
    patch = pytest.MonkeyPatch()
    patch.setattr(unit_of_work.UnitOfWork, "__enter__", entered)
    patch.setattr(unit_of_work.UnitOfWork, "__exit__", left)
    try:
        yield found
    finally:
        patch.undo()
        event.remove(api.engine.db.engine, "before_cursor_execute", count)


def _statements_of(api: ApiClient, request: Callable[[], Response]) -> dict[str, list[str]]:
    with counted(api) as found:
        assert request().status_code in (200, 201)
    return found



# Statements of a warm completion and start of the benchmark's chain (an episode with a patient), counted on
# this commit; before it, the API added 10 (SQLite: 8 and two BEGINs) outside the engine's transaction:
# the token, the user's groups, and the answer's instance, version, tasks, timers, waits and patient.
WRITE_BOUND = {"sqlite": {"start": 12, "complete": 22}, "postgresql": {"start": 11, "complete": 18}}


def test_a_completion_and_a_start_add_no_statement_outside_the_change(api: ApiClient) -> None:
    """A warm caller's token is not read again, and the answer is built in the change's transaction from
    what it holds (its open tasks and their patient read there): the API adds no statement of its own, and
    the change, answer included, stays within its count."""
    admin = api.user("admin")
    api.deploy(admin, ("chain.bpmn", chain_bpmn(4)))
    task = api.start(admin, CHAIN_KEY, patient_id="pat-1").json()["open_tasks"][0]["id"]
    started = _statements_of(api, lambda: api.start(admin, CHAIN_KEY, patient_id="pat-2"))
    completed = _statements_of(api, lambda: api.post(f"/api/tasks/{task}/complete", admin, {"data": {"n": 1}}))
    bound = WRITE_BOUND[api.engine.db.engine.dialect.name]
    assert started["api"] == [] and completed["api"] == []
    assert len(started["write"]) <= bound["start"], started["write"]
    assert len(completed["write"]) <= bound["complete"], completed["write"]
