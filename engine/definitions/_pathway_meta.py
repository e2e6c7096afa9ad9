"""The sidecar file beside a pathway's BPMN (`<name>.pathway.json`): what the diagram cannot say.

    {"example_data": {...the start data the pathway documents...},
     "start_data": {...a JSON Schema of the data a start needs (when the start event has no form)...},
     "measures": [...quality measure declarations, see engine/measures.py...],
     "intake": {"task": "<user task id>", "fields": [...start data a starter may leave out, see _intake.py...]},
     "triggers": [...ADT events that start or move the pathway, see engine/interop/triggers.py...],
     "referral_steps": [...user tasks that send or update a referral, see _referral_steps.py...]}

It belongs to the BPMN file with the same name (`post-ed-follow-up.bpmn`) and to the process whose id
is that name (or the file's only executable process). `carepath simulate` starts from its example
data when no `--data` is given; deploy checks the measures, the start data schema, that the example
data fits it and the intake declaration, and stores them with the version.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import Problem, ValidationFailed
from ..forms import form_problems
from ..interop.triggers import parse_triggers
from ..measures import parse_measures
from ..sandbox import check_expression
from ._intake import apply_intake
from ._model import ParsedProcess, SourceFile
from ._referral_steps import apply_referral_steps
from ._start_data import start_data_problem

SIDECAR_SUFFIX = ".pathway.json"
_BPMN_SUFFIXES = (".bpmn20.xml", ".bpmn", ".xml")
MAX_SIDECAR_BYTES = 1024 * 1024
SIDECAR_KEYS = ("example_data", "intake", "measures", "referral_steps", "start_data", "triggers")


def sidecar_path(bpmn_file: Path) -> Path:
    """post-ed-follow-up.bpmn -> post-ed-follow-up.pathway.json, in the same folder."""
    return bpmn_file.with_name(_stem(bpmn_file.name) + SIDECAR_SUFFIX)


def _stem(name: str) -> str:
    return next((name[: -len(s)] for s in _BPMN_SUFFIXES if name.lower().endswith(s)), Path(name).stem)


def is_sidecar(name: str) -> bool:
    return name.lower().endswith(SIDECAR_SUFFIX)


def parse_sidecar(name: str, content: bytes) -> tuple[dict[str, Any], list[str]]:
    """The sidecar's JSON object and what is wrong with its shape (not yet its measures)."""
    if len(content) > MAX_SIDECAR_BYTES:
        return {}, [f"the file is larger than {MAX_SIDECAR_BYTES // 1024} KB"]
    try:
        sidecar = json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        return {}, [f"not valid JSON: {exc}"]
    if not isinstance(sidecar, dict):
        return {}, ['must hold a JSON object such as {"example_data": {...}, "measures": [...]}']
    problems = [f'unknown key "{key}"; a pathway file has {", ".join(SIDECAR_KEYS)}'
                for key in sorted(set(sidecar) - set(SIDECAR_KEYS))]
    example = sidecar.get("example_data")
    if example is not None and not isinstance(example, dict):
        problems.append('"example_data" must be a JSON object of start data')
    return sidecar, problems


def read_example_data(bpmn_file: Path) -> dict[str, Any] | None:
    """The pathway's documented example start data, or None when it has no sidecar or the sidecar none."""
    path = sidecar_path(bpmn_file)
    if not path.is_file():
        return None
    sidecar, problems = parse_sidecar(path.name, path.read_bytes())
    if problems:
        raise ValidationFailed(f"{path}: {problems[0]}")
    return sidecar.get("example_data")


def attach_sidecars(processes: Sequence[ParsedProcess], sidecars: Sequence[SourceFile],
                    bpmn_names: Sequence[str]) -> list[Problem]:
    """Give each process its sidecar's example data and checked measures; located problems otherwise."""
    problems: list[Problem] = []
    by_stem = {_stem(name): name for name in bpmn_names}
    for source in sidecars:
        stem = source.name[: -len(SIDECAR_SUFFIX)]
        sidecar, shape = parse_sidecar(source.name, source.content)
        problems += [Problem(f"The pathway file {message}.", source.name) for message in shape]
        if stem not in by_stem:
            problems.append(Problem(f"{source.name} belongs to {stem}.bpmn, which is not in the upload. Upload it "
                                    "together with its .bpmn file.", source.name))
            continue
        own = {p.key: p for p in processes if p.source_file == by_stem[stem]}
        target = sidecar_target(stem, list(own))
        if target is None:
            if own:
                problems.append(Problem(f"{source.name} names no process: {by_stem[stem]} has several "
                                        f"({', '.join(own)}) and none has the id '{stem}'. Name the "
                                        "file after the process it describes.", source.name))
            continue
        process = own[target]
        process.sidecar_file = source.name
        measures, measure_problems = parse_measures(sidecar.get("measures"), check_expression=check_expression,
                                                    task_ids=_element_ids(process))
        problems += [Problem(f"In {source.name}: {message}.", source.name) for message in measure_problems]
        process.measures = [m.as_dict() for m in measures]
        example = sidecar.get("example_data")
        process.example_data = example if isinstance(example, dict) else None
        problems += [Problem(f"In {source.name}: {message}.", source.name) for message in _start_data(process, sidecar)]
        _, trigger_problems = parse_triggers(sidecar.get("triggers"), start_schema=process.start_data,
                                             message_catches=process.message_catches)
        problems += [Problem(f"In {source.name}: {message}.", source.name) for message in trigger_problems]
        problems += [Problem(f"In {source.name}: {message}.", source.name)
                     for message in apply_referral_steps(process, sidecar.get("referral_steps"))]
    return problems


def _start_data(process: ParsedProcess, sidecar: dict[str, Any]) -> list[str]:
    """Take the sidecar's start_data schema and intake; what is wrong with them, or with the example data."""
    declared = sidecar.get("start_data")
    if declared is not None:
        problem = start_data_problem(declared)
        if problem:
            return [problem]
        if process.start_data is not None:
            return ['"start_data" is declared here and by the form of the start event in the diagram; declare it '
                    'once']
        process.start_data = declared
    problems = apply_intake(process, sidecar.get("intake"))
    if problems or process.example_data is None or process.start_data is None:
        return problems
    return [f'"example_data" does not fit the start data: {p.message}' for p in
            form_problems(process.start_data, process.example_data)]


def sidecar_target(stem: str, keys: Sequence[str]) -> str | None:
    """The process a sidecar `<stem>.pathway.json` describes, among the executable processes `keys` of
    `<stem>.bpmn`: the one whose id is the stem, else the file's only one."""
    if stem in keys:
        return stem
    return keys[0] if len(keys) == 1 else None


def sidecar_name(bpmn_name: str) -> str:
    return _stem(bpmn_name) + SIDECAR_SUFFIX


def _element_ids(process: ParsedProcess) -> list[str]:
    specs = [process.spec, *process.subprocess_specs.values()]
    return sorted({getattr(task_spec, "bpmn_id", None) or "" for spec in specs
                   for task_spec in spec.task_specs.values()} - {""})
