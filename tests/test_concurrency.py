"""Concurrent changes to one instance: exactly one winner, never a lost update, never a 500."""

from __future__ import annotations

import threading
from collections import Counter

from carepath.engine.errors import Conflict
from carepath.engine.identity import Principal, Role
from carepath.engine.usecases.instances import start_instance
from carepath.engine.usecases.tasks import complete_task
from tests.support import diagrams as d
from tests.support.api import ApiClient

THREADS = 8


def _race(action, count: int = THREADS) -> Counter:
    barrier = threading.Barrier(count)
    outcomes: Counter = Counter()
    lock = threading.Lock()

    def run() -> None:
        barrier.wait()
        try:
            action()
            result = "ok"
        except Conflict:
            result = "conflict"
        except Exception as exc:  # anything else is a defect the assertion will show
            result = f"error: {type(exc).__name__}: {exc}"
        with lock:
            outcomes[result] += 1

    threads = [threading.Thread(target=run) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def test_concurrent_completion_of_one_task_has_exactly_one_winner(api: ApiClient) -> None:
    lead = api.user("clinical_lead")
    api.deploy(lead, ("fu.bpmn", d.linear_user_tasks("fu", "Call patient", "Book visit")))
    started = api.start(lead, "fu").json()
    task_id = started["open_tasks"][0]["id"]
    admin = Principal("admin", Role.ADMIN)
    outcomes = _race(lambda: complete_task(api.engine, admin, task_id, {"n": 1}))
    assert outcomes == Counter({"ok": 1, "conflict": THREADS - 1})
    instance = api.get(f"/api/instances/{started['id']}", lead).json()
    assert [t["name"] for t in instance["open_tasks"]] == ["Book visit"]
    history = api.get("/api/tasks", api.user("auditor"),
                      params={"instance_id": started["id"], "state": "completed"}).json()
    assert history["total"] == 1


def test_concurrent_completion_of_parallel_tasks_loses_no_update(api: ApiClient) -> None:
    lead = api.user("clinical_lead")
    names = [f"Check {i}" for i in range(4)]
    elements = [d.node("startEvent", "start"), d.node("parallelGateway", "split"),
                d.node("parallelGateway", "join"), d.node("userTask", "last", "Sign off"), d.node("endEvent", "end"),
                d.flow("f0", "start", "split"), d.flow("fj", "join", "last"), d.flow("fe", "last", "end")]
    for i, name in enumerate(names):
        elements += [d.node("userTask", f"t{i}", name), d.flow(f"a{i}", "split", f"t{i}"),
                     d.flow(f"b{i}", f"t{i}", "join")]
    api.deploy(lead, ("par.bpmn", d.definitions(d.process("par", *elements))))
    started = api.start(lead, "par").json()
    admin = Principal("admin", Role.ADMIN)
    tasks = iter(sorted(t["id"] for t in started["open_tasks"]))
    lock = threading.Lock()

    def complete_next() -> None:
        with lock:
            task_id = next(tasks)
        complete_task(api.engine, admin, task_id, {f"done_{task_id[:8]}": True})

    outcomes = _race(complete_next, len(names))
    assert outcomes == Counter({"ok": len(names)})
    instance = api.get(f"/api/instances/{started['id']}", lead).json()
    assert [t["name"] for t in instance["open_tasks"]] == ["Sign off"]
    assert sum(1 for k in instance["data"] if k.startswith("done_")) == len(names)


def test_concurrent_starts_with_one_business_key_start_once(api: ApiClient) -> None:
    lead = api.user("clinical_lead")
    api.deploy(lead, ("fu.bpmn", d.linear_user_tasks("fu", "Call patient")))
    admin = Principal("admin", Role.ADMIN)
    outcomes = _race(lambda: start_instance(api.engine, admin, "fu", business_key="discharge-1"))
    assert outcomes == Counter({"ok": 1, "conflict": THREADS - 1})
    assert api.get("/api/instances", lead, params={"business_key": "discharge-1"}).json()["total"] == 1


def test_concurrent_starts_for_one_new_patient_all_start_with_one_patient(api: ApiClient) -> None:
    lead = api.user("clinical_lead")
    api.deploy(lead, ("fu.bpmn", d.linear_user_tasks("fu", "Call patient")))
    admin = Principal("admin", Role.ADMIN)
    keys = iter(range(THREADS))
    outcomes = _race(lambda: start_instance(api.engine, admin, "fu", business_key=f"race-{next(keys)}",
                                            patient_id="pat-new"))
    assert outcomes == Counter({"ok": THREADS})
    started = api.get("/api/instances", lead, params={"patient_id": "pat-new"}).json()["items"]
    assert len(started) == THREADS and len({i["patient_ref"] for i in started}) == 1
