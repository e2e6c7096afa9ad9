"""Reading a SpiffWorkflow workflow into the product's dataclasses."""

from __future__ import annotations

import json
import re
from datetime import datetime
from itertools import chain
from typing import Any

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.util.task import TaskState as SpiffState

from ..calendars import TimeContext
from ..model import ExternalWait, Incident, InstanceStatus, MessageWait, OpenTask, Snapshot, TimerWait
from .assignment import assignment_for
from .external_tasks import ExternalTaskMixin
from .io_mappings import local_inputs


def take_snapshot(workflow: BpmnWorkflow, incident: Incident | None, business_key: str | None,
                  task_rules: dict[str, dict[str, Any]] | None = None, now: datetime | None = None,
                  time_context: TimeContext | None = None) -> Snapshot:
    if incident is not None:
        status = InstanceStatus.INCIDENT
    elif workflow.is_completed():
        status = InstanceStatus.COMPLETED
    else:
        status = InstanceStatus.RUNNING
    timers, messages = _waiting_events(workflow)
    has_external_tasks = _has_external_tasks(workflow)
    return Snapshot(
        status=status,
        data=instance_data(workflow),
        open_tasks=[_open_task(t, task_rules or {}, now, time_context)
                    for t in workflow.get_tasks(state=SpiffState.READY, manual=True)],
        timers=timers,
        messages=messages,
        incident=incident,
        external_tasks=_external_waits(workflow) if has_external_tasks else [],  # no walk of the tree for none
        has_external_tasks=has_external_tasks,
        has_message_events=_has_message_events(workflow),
    )


def _has_message_events(workflow: BpmnWorkflow) -> bool:
    """Whether any element of the pathway (or the processes it calls) is a message event: without one,
    it never waits for a message, so there is no subscription row to read."""
    specs = (workflow.spec, *workflow.subprocess_specs.values())
    return any(isinstance(definition, MessageEventDefinition) for spec in specs
               for task_spec in spec.task_specs.values()
               for definition in _definitions(getattr(task_spec, "event_definition", None)))


def _has_external_tasks(workflow: BpmnWorkflow) -> bool:
    specs = (workflow.spec, *workflow.subprocess_specs.values())
    return any(isinstance(task_spec, ExternalTaskMixin) for spec in specs for task_spec in spec.task_specs.values())


def _external_waits(workflow: BpmnWorkflow) -> list[ExternalWait]:
    waits = []
    for task in workflow.get_tasks(state=SpiffState.WAITING):
        spec = task.task_spec
        if isinstance(spec, ExternalTaskMixin):
            variables = tuple(spec.variables) if spec.variables is not None else None
            waits.append(ExternalWait(str(task.id), spec.bpmn_id or spec.name, spec.bpmn_name, spec.topic, variables,
                                      spec.priority, json_values(local_inputs(task)) or None))
    return waits


def instance_data(workflow: BpmnWorkflow) -> dict[str, Any]:
    """The instance's data as JSON values: what each completed task changed, in the order they
    completed, under the workflow's own data.

    SpiffWorkflow gives every task its own copy of the data. Taking the last task's copy loses what
    another branch set meanwhile: a reminder task on a non-interrupting timer, completed after the
    main path recorded the visit date, carries the copy from when the timer fired. Folding each task's
    own changes (its data against its parent's) keeps every branch's values and the latest of each; the
    instances of a multi-instance subprocess count as branches (their own variables, e.g. the item, show
    the latest instance's)."""
    data: dict[str, Any] = {}
    # Every task of the workflow and of its subprocesses still in the tree, read from their dicts: not
    # SpiffWorkflow's filtered walk, which does not descend into a multi-instance activity still running (whose
    # instances' completed steps count as soon as they complete), nor its unfiltered one, a costly generator
    # over the whole tree; the order is the completion order either way.
    every_task = chain(workflow.tasks.values(),
                       *(subprocess.tasks.values() for subprocess in attached_subprocesses(workflow)))
    completed = sorted((task for task in every_task if task.state == SpiffState.COMPLETED),
                       key=lambda task: task.last_state_change)
    for task in completed:
        before = task.parent.data if task.parent is not None else {}
        for key, value in task.data.items():
            if key not in before or before[key] != value:
                data[key] = value
        for key in before.keys() - task.data.keys():  # the task removed it (a script's `del`)
            data.pop(key, None)
    data.update(workflow.data)
    if not data.get("data_objects"):
        data.pop("data_objects", None)
    return json_values(data)


def attached_subprocesses(workflow: BpmnWorkflow) -> list[Any]:
    """The subprocesses (all kept on the top workflow, nested ones too) whose calling task is still in the
    tree: SpiffWorkflow can drop a call activity's task without deleting its subprocess (a running
    multi-instance activity cancelled, a branch reset by a migration), and a walk of the tree never reaches
    those."""
    subprocesses = workflow.subprocesses
    attached: dict[Any, Any] = {}
    pending = dict(subprocesses)
    known = workflow.tasks
    while True:
        found = {key: sp for key, sp in pending.items()
                 if sp.parent_task_id in known or any(sp.parent_task_id in a.tasks for a in attached.values())}
        if not found:
            return list(attached.values())
        attached.update(found)
        for key in found:
            del pending[key]


def json_values(data: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads(json.dumps(data, default=_json_default)))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _open_task(task: Any, task_rules: dict[str, dict[str, Any]], now: datetime | None,
               time_context: TimeContext | None) -> OpenTask:
    spec = task.task_spec
    assignment = assignment_for(task, task_rules.get(spec.bpmn_id or ""), now, time_context)
    return OpenTask(
        id=str(task.id),
        element_id=spec.bpmn_id or spec.name,
        name=task_name(spec.bpmn_name or spec.bpmn_id or spec.name, task.data),
        lane=spec.lane,
        kind="manual" if type(spec).__name__ == "ManualTask" else "user",
        process_id=task.workflow.spec.name,
        documentation=spec.documentation,
        assignee=assignment.assignee,
        candidate_users=assignment.candidate_users,
        candidate_groups=assignment.candidate_groups,
        priority=assignment.priority,
        assignment_errors=assignment.errors,
        due_date=assignment.due_date,
        follow_up_date=assignment.follow_up_date,
    )


def _definitions(definition: Any) -> list[Any]:
    if isinstance(definition, MultipleEventDefinition):
        return list(definition.event_definitions)
    return [definition]


def _waiting_events(workflow: BpmnWorkflow) -> tuple[list[TimerWait], list[MessageWait]]:
    timers: list[TimerWait] = []
    messages: list[MessageWait] = []
    for task in list(workflow.event_manager.tasks.values()):
        if not task.has_state(SpiffState.WAITING):
            continue
        spec = task.task_spec
        for definition in _definitions(spec.event_definition):
            if isinstance(definition, TimerEventDefinition):
                due = definition.details(task).value
                if isinstance(due, str):
                    timers.append(TimerWait(str(task.id), spec.bpmn_id, definition.name,
                                            datetime.fromisoformat(due)))
            elif isinstance(definition, MessageEventDefinition):
                messages.append(MessageWait(str(task.id), spec.bpmn_id, definition.name,
                                            _correlation_value(workflow, task, definition)))
    return timers, messages


def _correlation_value(workflow: BpmnWorkflow, task: Any, definition: MessageEventDefinition) -> str | None:
    """The key this catch waits for: its correlation property evaluated on the instance's data."""
    for prop in definition.correlation_properties:
        try:
            value = workflow.script_engine.environment.evaluate(prop.retrieval_expression, task.data)
        except Exception:  # the property names data this instance does not have: fall back
            continue
        if value is not None:
            return str(value)
    return None


_NAME_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]{0,63})\}")


def task_name(name: str, data: dict[str, Any]) -> str:
    """A task's name with `${variable}` filled from its data, as Camunda 7 evaluates a task name: a task of
    a multi-instance subprocess says which item it is for ("Choose a service — ${domain}" becomes
    "Choose a service — food"). Only plain variables holding text or numbers; anything else stays as written."""
    def fill(match: re.Match[str]) -> str:
        value = data.get(match.group(1))
        ok = isinstance(value, str | int) and not isinstance(value, bool)
        return str(value)[:80] if ok else match.group(0)
    return _NAME_VARIABLE.sub(fill, name)


def describe_incident(exc: BaseException) -> Incident:
    task = getattr(exc, "task", None)
    element_id = getattr(getattr(task, "task_spec", None), "bpmn_id", None)
    if element_id is None and task is not None and task.parent is not None:
        # A helper with no BPMN id (the split after an activity's flows): the element it serves.
        element_id = getattr(task.parent.task_spec, "bpmn_id", None)
    message = str(exc) or exc.__class__.__name__
    inner = getattr(exc, "exception", None) or exc.__cause__
    notes = getattr(exc, "__notes__", None) or []
    detail_parts = [f"{inner.__class__.__name__}: {inner}"] if inner is not None else []
    detail_parts.extend(notes)
    line = getattr(exc, "line_number", None)
    if line:
        detail_parts.append(f"line {line}: {getattr(exc, 'error_line', '')}")
    return Incident(message=message[:2000], element_id=element_id,
                    task_id=str(task.id) if task is not None else None,
                    detail="; ".join(detail_parts)[:4000] or None)
