"""The reference issue 17 holds CarePath to: the plain SpiffWorkflow loop a developer would write without
CarePath, on the same diagram the HTTP clients run.

The diagram is a chain of 20 user tasks, each with a non-interrupting boundary timer (a 7-day reminder),
so every save carries the waiting timers a real pathway has. The plain loop uses SpiffWorkflow's own
parser and `BpmnWorkflowSerializer()` with its default settings (the spec embedded in every save): it
deserializes, completes the ready user task, runs engine steps and serializes, as an application that
keeps one JSON document per workflow would. CarePath's own spec-free cycle on the same diagram is
measured beside it, so the two costs the HTTP figure is held against are in one run.
"""

from __future__ import annotations

import time
from typing import Any

from SpiffWorkflow.bpmn.parser import BpmnParser
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from carepath.engine.clock import ManualClock
from carepath.engine.definitions import SourceFile, parse_package
from carepath.engine.runtime.serializer import serializer_for
from carepath.engine.runtime.workflow import RunningWorkflow
from carepath.engine.sandbox.spiff import make_script_engine

from .common import log, percentiles
from .load import run_clients

CHAIN_KEY = "bench-chain"
CHAIN_TASKS = 20
REMINDER = "P7D"


def chain_bpmn(tasks: int = CHAIN_TASKS) -> str:
    """A lane, `tasks` user tasks in a row, each with a non-interrupting 7-day reminder timer.

    The timer's duration is written as a quoted string: an expression both bare SpiffWorkflow and
    CarePath's sandbox evaluate to the same ISO 8601 duration."""
    ids = [f"task_{n:02d}" for n in range(1, tasks + 1)]
    refs = "".join(f"<bpmn:flowNodeRef>{i}</bpmn:flowNodeRef>" for i in ids)
    nodes, flows = ['<bpmn:startEvent id="start"/>', '<bpmn:endEvent id="end"/>'], []
    previous = "start"
    for n, task in enumerate(ids, start=1):
        nodes.append(f'<bpmn:userTask id="{task}" name="Step {n}"/>')
        nodes.append(
            f'<bpmn:boundaryEvent id="{task}_reminder" name="Reminder {n}" cancelActivity="false" '
            f'attachedToRef="{task}"><bpmn:timerEventDefinition><bpmn:timeDuration '
            f'xsi:type="bpmn:tFormalExpression">"{REMINDER}"</bpmn:timeDuration>'
            f'</bpmn:timerEventDefinition></bpmn:boundaryEvent>')
        nodes.append(f'<bpmn:endEvent id="{task}_reminded"/>')
        flows.append(f'<bpmn:sequenceFlow id="{task}_r" sourceRef="{task}_reminder" targetRef="{task}_reminded"/>')
        flows.append(f'<bpmn:sequenceFlow id="to_{task}" sourceRef="{previous}" targetRef="{task}"/>')
        previous = task
    flows.append(f'<bpmn:sequenceFlow id="to_end" sourceRef="{previous}" targetRef="end"/>')
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="chain" targetNamespace="http://carepath/bench">
  <bpmn:process id="{CHAIN_KEY}" name="Benchmark chain of {tasks} tasks" isExecutable="true">
    <bpmn:laneSet id="ls"><bpmn:lane id="lane_cc" name="Care Coordinator">{refs}</bpmn:lane></bpmn:laneSet>
    {"".join(nodes)}
    {"".join(flows)}
  </bpmn:process>
</bpmn:definitions>
"""


def _plain_spec(bpmn: str) -> tuple[Any, dict[str, Any]]:
    parser = BpmnParser()
    parser.add_bpmn_str(bpmn.encode(), filename="chain.bpmn")
    return parser.get_spec(CHAIN_KEY), parser.get_subprocess_specs(CHAIN_KEY)


def _ready_user_task(workflow: BpmnWorkflow) -> Any:
    return workflow.get_tasks(state=TaskState.READY, manual=True)[0]


def measure_plain_loop(cycles: int, starts: int, tasks: int = CHAIN_TASKS) -> dict[str, Any]:
    """Cycles/s and starts/s of bare SpiffWorkflow with its default serializer (spec in every save)."""
    spec, subprocesses = _plain_spec(chain_bpmn(tasks))
    serializer = BpmnWorkflowSerializer()
    t0 = time.perf_counter()
    for _ in range(starts):
        fresh = BpmnWorkflow(spec, subprocesses)
        fresh.do_engine_steps()
        state = serializer.serialize_json(fresh)
    start_seconds = time.perf_counter() - t0
    done_here, timings = 0, []
    for _ in range(cycles):
        if done_here == tasks:
            fresh = BpmnWorkflow(spec, subprocesses)
            fresh.do_engine_steps()
            state, done_here = serializer.serialize_json(fresh), 0
        t1 = time.perf_counter()
        workflow = serializer.deserialize_json(state)
        _ready_user_task(workflow).run()
        workflow.do_engine_steps()
        state = serializer.serialize_json(workflow)
        timings.append(time.perf_counter() - t1)
        done_here += 1
    return {"tasks": tasks, "cycles": cycles, "cycles_per_second": round(len(timings) / sum(timings), 1),
            "starts": starts, "starts_per_second": round(starts / start_seconds, 1),
            "state_bytes_mid_chain": len(state)}


def measure_product_cycle(cycles: int, tasks: int = CHAIN_TASKS) -> dict[str, Any]:
    """CarePath's own engine cycle on the same diagram: spec-free state restored onto a cached spec."""
    [process] = parse_package([SourceFile("chain.bpmn", chain_bpmn(tasks).encode())]).processes
    serializer = serializer_for(process.family)
    spec, subs = serializer.spec_from_json(serializer.spec_to_json(process.spec, process.subprocess_specs))
    engine, clock = make_script_engine(), ManualClock()
    state, done_here, timings = "", tasks, []
    for _ in range(cycles):
        if done_here == tasks:
            fresh = RunningWorkflow.create(spec, subs, process.family, engine, {})
            fresh.run(clock)
            state, done_here = fresh.dump(), 0
        t0 = time.perf_counter()
        workflow = RunningWorkflow.restore(state, spec, subs, process.family, engine)
        workflow.complete_task(workflow.snapshot().open_tasks[0].id, {"note": "done"}, clock)
        state = workflow.dump()
        timings.append(time.perf_counter() - t0)
        done_here += 1
    return {"tasks": tasks, "cycles": cycles, "cycles_per_second": round(len(timings) / sum(timings), 1),
            "state_bytes_mid_chain": len(state)}


def ratios(http: dict[str, Any], plain: dict[str, Any], product: dict[str, Any]) -> dict[str, float]:
    """The figures issue 17 sets targets on: HTTP over each loop, completions and starts."""
    return {
        "completions_vs_plain_loop": round(http["tasks_per_second"] / plain["cycles_per_second"], 2),
        "completions_vs_product_cycle": round(http["tasks_per_second"] / product["cycles_per_second"], 2),
        "starts_vs_plain_loop": round(http["instances_per_second"] / plain["starts_per_second"], 2),
    }


def measure_chain_http(base: str | list[str], token: str, *, clients: int, instances: int, starts: int = 0,
                       tasks: int = CHAIN_TASKS) -> dict[str, Any]:
    """Clients start `starts` chain episodes (at least `instances`), then walk `instances` of them through
    all their tasks over HTTP. Each client first starts one episode untimed, so that every API node has
    its caches warm (the pathway's spec, statements, the caller's token), as the plain loop parses its
    diagram before its clock starts."""
    walked = max(1, instances // clients)
    per_client = max(walked, starts // clients)
    open_task: list[list[str]] = [[] for _ in range(clients)]

    def start(index: int, client: Any, lat: list[float], count: int = per_client, timed: bool = True) -> int:
        for n in range(count):
            t0 = time.perf_counter()
            response = client.post(f"/api/pathways/{CHAIN_KEY}/instances",
                                   json={"business_key": f"chain-{index}-{n}-{time.time_ns()}",
                                         "patient_id": f"chain-pat-{index}-{n}-{time.time_ns()}", "data": {}})
            lat.append(time.perf_counter() - t0)
            response.raise_for_status()
            if timed and len(open_task[index]) < walked:
                open_task[index].append(response.json()["open_tasks"][0]["id"])
        return count

    run_clients(clients, lambda index, client, lat: start(index, client, lat, 1, timed=False), base, token)
    log(f"chain: {clients} clients start {per_client * clients} episodes of {tasks} tasks")
    started, start_secs, start_lat = run_clients(clients, start, base, token)

    def complete(index: int, client: Any, lat: list[float]) -> int:
        done = 0
        for _step in range(tasks):
            for slot, task_id in enumerate(open_task[index]):
                t0 = time.perf_counter()
                response = client.post(f"/api/tasks/{task_id}/complete", json={"data": {"note": "done"}})
                lat.append(time.perf_counter() - t0)
                response.raise_for_status()
                following = response.json()["open_tasks"]
                open_task[index][slot] = following[0]["id"] if following else ""
                done += 1
        return done

    log(f"chain: {clients} clients complete all {tasks} tasks of each episode")
    completed, complete_secs, complete_lat = run_clients(clients, complete, base, token)
    return {"clients": clients, "tasks": tasks,
            "instances_started": started, "instances_per_second": round(started / start_secs, 1),
            "start_latency": percentiles(start_lat),
            "tasks_completed": completed, "tasks_per_second": round(completed / complete_secs, 1),
            "complete_latency": percentiles(complete_lat)}
