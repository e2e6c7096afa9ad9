"""The pathways the benchmark runs: a synthetic sequence of user tasks, and the shipped pathways.

The synthetic pathway keeps the load dominated by task completions (one start, then STEPS
completions per instance), with every task in the "Care Coordinator" lane so that a coordinator
in the group `care-coordinator` may work them, as a real worklist would.
"""

from __future__ import annotations

from pathlib import Path

from carepath.api.settings import shipped_pathways_dir
from carepath.engine.definitions import SourceFile

SEQUENCE_KEY = "bench-sequence"
SEQUENCE_STEPS = 6
LANE = "Care Coordinator"
GROUP = "care-coordinator"
SHIPPED_KEY = "post-ed-follow-up"

_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"


def sequence_bpmn(steps: int = SEQUENCE_STEPS, key: str = SEQUENCE_KEY) -> bytes:
    """start -> `steps` user tasks in one lane -> end (plain BPMN 2.0, no editor extensions)."""
    ids = [f"step_{i + 1}" for i in range(steps)]
    chain = ["start", *ids, "end"]
    nodes = ['<bpmn:startEvent id="start"/>']
    nodes += [f'<bpmn:userTask id="{tid}" name="Step {i + 1}: follow-up action"/>' for i, tid in enumerate(ids)]
    nodes.append('<bpmn:endEvent id="end"/>')
    flows = [f'<bpmn:sequenceFlow id="f{i}" sourceRef="{a}" targetRef="{b}"/>'
             for i, (a, b) in enumerate(zip(chain, chain[1:], strict=False))]
    lane = ('<bpmn:laneSet id="lanes"><bpmn:lane id="lane_cc" name="' + LANE + '">'
            + "".join(f"<bpmn:flowNodeRef>{tid}</bpmn:flowNodeRef>" for tid in ids) + "</bpmn:lane></bpmn:laneSet>")
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<bpmn:definitions xmlns:bpmn="{_NS}" id="bench_defs" '
            f'targetNamespace="http://carepath.bench"><bpmn:process id="{key}" name="Benchmark sequence" '
            f'isExecutable="true">{lane}{"".join(nodes)}{"".join(flows)}</bpmn:process></bpmn:definitions>'
            ).encode()


def sequence_files() -> list[SourceFile]:
    return [SourceFile(f"{SEQUENCE_KEY}.bpmn", sequence_bpmn())]


def shipped_files(directory: Path | None = None) -> list[SourceFile]:
    """Every .bpmn/.dmn the server deploys at start-up, as one package (as `deploy_directory` does)."""
    folder = directory or shipped_pathways_dir()
    return [SourceFile(p.name, p.read_bytes()) for p in sorted(folder.iterdir())
            if p.suffix.lower() in (".bpmn", ".dmn")]


def task_data(step: int) -> dict[str, object]:
    """What a coordinator records on a synthetic step: a note and a couple of fields."""
    return {f"step_{step}_note": f"called patient, outcome recorded at step {step}",
            f"step_{step}_done": True, "last_step": step}


# Start data of the shipped post-ED pathway (its documentation names these fields).
def ed_visit_start_data(n: int) -> dict[str, object]:
    categories = ("mental_illness", "substance_use", "other")
    return {"ed_visit_date": f"2026-03-{1 + n % 28:02d}", "diagnosis_category": categories[n % 3],
            "high_risk_chronic_conditions": n % 4}
