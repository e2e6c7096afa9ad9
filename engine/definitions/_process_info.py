"""Assemble a ParsedProcess: its spec, the processes it calls, its message starts, lanes and notes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent
from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent
from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import SubWorkflowTask

from ._assignment import task_rules, time_settings
from ._documents import Document, Element, bpmn, is_bpmn
from ._index import PackageIndex
from ._library import LibraryRun
from ._model import ParsedProcess


@dataclass
class CalledSpecs:
    specs: dict[str, BpmnProcessSpec] = field(default_factory=dict)
    external: list[str] = field(default_factory=list)
    complete: bool = True


def parsed_process(run: LibraryRun, index: PackageIndex, process_id: str) -> ParsedProcess | None:
    """The process with everything it needs to run, or None when part of it failed to parse."""
    spec = run.spec(process_id)
    if spec is None:
        return None
    called = called_specs(run, index, spec)
    if not called.complete:
        return None
    document, process = index.processes[process_id]
    return ParsedProcess(
        key=process_id,
        name=process.get("name") or pool_name(document, process_id),
        family=index.family,
        source_file=document.name,
        spec=spec,
        subprocess_specs=called.specs,
        external_calls=sorted(called.external),
        message_starts=message_starts(spec),
        message_catches=message_catches(spec, called.specs),
        lanes=lane_names(process),
        documentation=documentation(process),
        task_rules=task_rules([process, *(index.processes[k][1] for k in called.specs if k in index.processes)]),
        time_settings=time_settings(process),
    )


def called_specs(run: LibraryRun, index: PackageIndex, spec: BpmnProcessSpec) -> CalledSpecs:
    """Like BpmnParser.get_subprocess_specs, without its loop on missing ids or recursion."""
    called = CalledSpecs()
    pending = [spec]
    while pending:
        current = pending.pop()
        for task_spec in current.task_specs.values():
            target = task_spec.spec if isinstance(task_spec, SubWorkflowTask) else None
            if target is None or target in called.specs or target in called.external:
                continue
            if not run.has_process(target):
                if target in index.known_process_ids:
                    called.external.append(target)
                else:
                    called.complete = False  # reported by the call activity check
                continue
            target_spec = run.spec(target)
            if target_spec is None:
                called.complete = False
                continue
            called.specs[target] = target_spec
            pending.append(target_spec)
    return called


def message_starts(spec: BpmnProcessSpec) -> list[str]:
    """Names of the messages that start the process, as the runtime will correlate them."""
    return _message_names(t for t in spec.task_specs.values() if isinstance(t, StartEvent))


def message_catches(spec: BpmnProcessSpec, subprocess_specs: dict[str, BpmnProcessSpec]) -> list[str]:
    """Names of every message the process, or a process it carries, catches: its message start events,
    catch events, receive tasks, boundary events and event subprocesses' starts."""
    specs = [spec, *subprocess_specs.values()]
    return _message_names(t for s in specs for t in s.task_specs.values() if isinstance(t, CatchingEvent))


def _message_names(task_specs: Iterable[Any]) -> list[str]:
    names: list[str] = []
    for task_spec in task_specs:
        definition = task_spec.event_definition
        definitions = definition.event_definitions if isinstance(definition, MultipleEventDefinition) else [
            definition]
        for candidate in definitions:
            is_message = isinstance(candidate, MessageEventDefinition)
            if is_message and candidate.name and candidate.name not in names:
                names.append(candidate.name)
    return names


def pool_name(document: Document, process_id: str) -> str | None:
    """The name of the pool (participant) drawing the process: bpmn.io names the pool, not the process."""
    for participant in document.xpath(".//bpmn:participant"):
        if participant.get("processRef") == process_id:
            return " ".join((participant.get("name") or "").split()) or None
    return None


def lane_names(process: Element) -> list[str]:
    names: list[str] = []
    for lane in process.iter(bpmn("lane")):
        name = " ".join((lane.get("name") or "").split())
        has_steps = any(is_bpmn(child, "flowNodeRef") for child in lane)
        if name and has_steps and name not in names:
            names.append(name)
    return names


def documentation(process: Element) -> str | None:
    for child in process:
        if is_bpmn(child, "documentation"):
            return (child.text or "").strip() or None
    return None
