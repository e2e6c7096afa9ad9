"""The reference: SpiffWorkflow's own cost for one task completion, with no database and no HTTP.

One cycle is what the server does to a workflow on every completion, minus everything around it:
restore the spec-free state onto the cached spec, complete the ready user task (which runs the
engine steps up to the next wait), and serialize the state again. The snapshot the server takes
to rewrite its projections is timed too, but reported apart from the cycle.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from carepath.engine.clock import ManualClock
from carepath.engine.definitions import SourceFile, parse_package
from carepath.engine.runtime import RunningWorkflow
from carepath.engine.runtime.serializer import serializer_for
from carepath.engine.sandbox.spiff import make_script_engine
from carepath.engine.usecases.deploy import stored_spec

from .pathways import SEQUENCE_KEY, SHIPPED_KEY, ed_visit_start_data, sequence_files, shipped_files, task_data
from .stats import note

STEPS = ("restore", "complete_and_run", "dump", "snapshot")
# Given the open task's element id and the instance number: the data to complete it with.
TaskScript = Callable[[str, int], dict[str, Any]]


@dataclass
class CycleTimes:
    seconds: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in (*STEPS, "start")})
    state_bytes: list[int] = field(default_factory=list)

    def add(self, step: str, started: float) -> float:
        now = time.perf_counter()
        self.seconds[step].append(now - started)
        return now


def _sequence_script(element_id: str, n: int) -> dict[str, Any]:
    return task_data(int(element_id.rsplit("_", 1)[-1]))


def _shipped_script(element_id: str, n: int) -> dict[str, Any]:
    answers: dict[str, dict[str, Any]] = {
        "call_patient": {"reached": True, "call_notes": "spoke with patient, booked"},
        "schedule_follow_up": {"follow_up_date": "2026-03-09", "follow_up_provider": "Dr Lee, behavioral health"},
    }
    return answers.get(element_id, {})


PATHWAYS: dict[str, tuple[Callable[[], list[SourceFile]], TaskScript, Callable[[int], dict[str, Any]]]] = {
    SEQUENCE_KEY: (sequence_files, _sequence_script, lambda n: {"patient_ref": f"pat-{n}"}),
    SHIPPED_KEY: (shipped_files, _shipped_script, ed_visit_start_data),
}


def measure_engine_cycle(key: str, seconds: float) -> dict[str, Any]:
    """Run whole instances of pathway `key` through start and every user task for about `seconds`."""
    files, script, start_data = PATHWAYS[key]
    process = next(p for p in parse_package(files()).processes if p.key == key)
    spec_json = stored_spec(process)
    started = time.perf_counter()
    spec, subprocess_specs = serializer_for(process.family).spec_from_json(spec_json)
    spec_restore_s = time.perf_counter() - started
    engine = make_script_engine()
    clock = ManualClock()
    times = CycleTimes()
    note(f"engine cycle: {key} for {seconds:.0f} s")
    deadline = time.perf_counter() + seconds
    instances = 0
    while time.perf_counter() < deadline or instances < 2:
        _one_instance(process.family, spec, subprocess_specs, process.task_rules, engine, clock, script,
                      start_data(instances), instances, times)
        instances += 1
    return _summary(key, times, instances, spec_restore_s, len(spec_json))


def _one_instance(family: str, spec: Any, subs: dict[str, Any], rules: dict[str, Any], engine: Any,
                  clock: ManualClock, script: TaskScript, data: dict[str, Any], n: int, times: CycleTimes) -> None:
    t = time.perf_counter()
    workflow = RunningWorkflow.create(spec, subs, family, engine, data, business_key=f"bk-{n}")
    workflow.task_rules = rules
    workflow.run(clock)
    state = workflow.dump()
    t = times.add("start", t)
    snapshot = workflow.snapshot()
    while snapshot.open_tasks and snapshot.incident is None:
        task = snapshot.open_tasks[0]
        t = time.perf_counter()
        workflow = RunningWorkflow.restore(state, spec, subs, family, engine, business_key=f"bk-{n}")
        workflow.task_rules = rules
        t = times.add("restore", t)
        workflow.complete_task(task.id, script(task.element_id, n), clock)
        t = times.add("complete_and_run", t)
        state = workflow.dump()
        t = times.add("dump", t)
        snapshot = workflow.snapshot()
        times.add("snapshot", t)
        times.state_bytes.append(len(state.encode()))
    if snapshot.incident is not None:
        raise RuntimeError(f"the benchmark pathway {spec.name} failed: {snapshot.incident.message}")


def _summary(key: str, times: CycleTimes, instances: int, spec_restore_s: float, spec_bytes: int) -> dict[str, Any]:
    cycles = len(times.seconds["restore"])
    mean_us = {step: round(1e6 * sum(v) / len(v), 1) if v else 0.0 for step, v in times.seconds.items()}
    cycle_s = sum(sum(times.seconds[s]) for s in ("restore", "complete_and_run", "dump"))
    with_snapshot_s = cycle_s + sum(times.seconds["snapshot"])
    return {
        "pathway": key,
        "instances": instances,
        "cycles": cycles,
        "cycles_per_second": round(cycles / cycle_s, 1) if cycle_s else 0.0,
        "cycles_per_second_with_snapshot": round(cycles / with_snapshot_s, 1) if with_snapshot_s else 0.0,
        "starts_per_second": round(instances / sum(times.seconds["start"]), 1),
        "mean_us": mean_us,
        "state_bytes_max": max(times.state_bytes, default=0),
        "state_bytes_mean": round(sum(times.state_bytes) / len(times.state_bytes)) if times.state_bytes else 0,
        "spec_json_bytes": spec_bytes,
        "spec_restore_ms": round(spec_restore_s * 1000, 2),
    }


def run(seconds: float) -> dict[str, Any]:
    return {key: measure_engine_cycle(key, seconds) for key in (SEQUENCE_KEY, SHIPPED_KEY)}
