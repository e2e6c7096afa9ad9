"""The bare engine cycle: deserialize (spec-free state onto a cached spec), complete a user task,
run engine steps, serialize. The engine's own cost; the HTTP figures are held against it."""

from __future__ import annotations

import time
from typing import Any

from carepath.engine.clock import ManualClock
from carepath.engine.definitions import SourceFile, parse_package
from carepath.engine.runtime.serializer import serializer_for
from carepath.engine.runtime.workflow import RunningWorkflow
from carepath.engine.sandbox.spiff import make_script_engine

from .pathway import BPMN, KEY

COMPLETIONS_PER_INSTANCE = 5


def measure_engine_cycle(cycles: int) -> dict[str, Any]:
    [process] = parse_package([SourceFile("bench.bpmn", BPMN.encode())]).processes
    serializer = serializer_for(process.family)
    spec, subs = serializer.spec_from_json(serializer.spec_to_json(process.spec, process.subprocess_specs))
    engine, clock = make_script_engine(), ManualClock()
    state, done_here, timings = "", COMPLETIONS_PER_INSTANCE, []
    started = time.perf_counter()
    for _ in range(cycles):
        if done_here == COMPLETIONS_PER_INSTANCE:
            fresh = RunningWorkflow.create(spec, subs, process.family, engine, {"closed": False})
            fresh.run(clock)
            state, done_here = fresh.dump(), 0
        t0 = time.perf_counter()
        workflow = RunningWorkflow.restore(state, spec, subs, process.family, engine)
        task = workflow.snapshot().open_tasks[0]
        workflow.complete_task(task.id, {"closed": False, "note": "left voicemail"}, clock)
        state = workflow.dump()
        timings.append(time.perf_counter() - t0)
        done_here += 1
    elapsed = time.perf_counter() - started
    mean = sum(timings) / len(timings)
    return {"pathway": KEY, "cycles": cycles, "cycles_per_second": round(len(timings) / sum(timings), 1),
            "mean_cycle_us": round(mean * 1e6, 1), "wall_seconds": round(elapsed, 2),
            "state_bytes_after_5_completions": len(state)}
