"""The benchmark's own pieces still run (no timing is asserted: figures belong in bench/)."""

from __future__ import annotations

from carepath.bench.cycle import measure_engine_cycle
from carepath.bench.report import render, targets


def test_engine_cycle_measurement_runs_and_reports() -> None:
    results = {"quick": True, "engine_cycle": measure_engine_cycle(12)}
    assert results["engine_cycle"]["cycles"] == 12
    assert results["engine_cycle"]["state_bytes_after_5_completions"] > 0
    results["targets"] = targets(results)
    assert "bare engine cycle" in render(results)
