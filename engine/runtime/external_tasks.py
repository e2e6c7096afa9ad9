"""Service tasks done by an external worker: the task spec that waits for one, and its serializer converters.

A service task for a topic (Camunda 7 `camunda:type="external"`, Camunda 8 `zeebe:taskDefinition`, CarePath's
`carepath:topic`) becomes an `ExternalServiceTask` when the diagram is read (definitions/_service_tasks.py).
When the engine reaches it, it WAITS: nothing in the engine completes it. A worker fetches it through the API,
and the use cases (usecases/external_tasks.py) complete it, fail it or throw a BPMN error through
`RunningWorkflow`. The waiting state, topic and requested variables survive save and restore: the specs are
stored once per version through the converters registered below, the task's WAITING state with the workflow.
"""

from __future__ import annotations

from copy import deepcopy
from typing import Any

from SpiffWorkflow.bpmn.serializer.default.task_spec import BpmnTaskSpecConverter
from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import ErrorEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.bpmn_spec_mixin import BpmnSpecMixin
from SpiffWorkflow.bpmn.util import BpmnEvent
from SpiffWorkflow.specs.base import TaskSpec
from SpiffWorkflow.spiff.serializer.task_spec import SpiffBpmnTaskConverter
from SpiffWorkflow.spiff.specs.event_definitions import ErrorEventDefinition as SpiffErrorEventDefinition
from SpiffWorkflow.spiff.specs.spiff_task import SpiffBpmnTask
from SpiffWorkflow.util.task import TaskState as SpiffState


class ExternalTaskMixin(TaskSpec):
    """Waits for a worker of its topic; a worker's completion makes it ready and the engine runs it."""

    topic: str
    variables: list[str] | None
    priority: int

    def __init__(self, wf_spec: Any, bpmn_id: str, topic: str = "", variables: list[str] | None = None,
                 priority: int = 0, **kwargs: Any) -> None:
        super().__init__(wf_spec, bpmn_id, **kwargs)
        self.topic = topic
        self.variables = list(variables) if variables is not None else None
        self.priority = int(priority)

    def _update_hook(self, my_task: Any) -> bool:
        if my_task.state == SpiffState.WAITING:
            return False  # already waiting: its data stays as it was handed to the worker
        super()._update_hook(my_task)
        my_task._set_state(SpiffState.WAITING)
        return False

    def _run_hook(self, my_task: Any) -> bool:
        return True  # made ready only by a worker's completion (RunningWorkflow.complete_external)


class ExternalServiceTask(ExternalTaskMixin, BpmnSpecMixin):
    """For the plain BPMN and Camunda parsers."""


class SpiffExternalServiceTask(ExternalTaskMixin, SpiffBpmnTask):
    """For the SpiffWorkflow parser (keeps its pre- and post-scripts)."""


def _external_attributes(spec: ExternalTaskMixin) -> dict[str, Any]:
    return {"topic": spec.topic, "variables": spec.variables, "priority": spec.priority}


class ExternalServiceTaskConverter(BpmnTaskSpecConverter):
    def to_dict(self, spec: Any) -> dict[str, Any]:
        return {**self.get_default_attributes(spec), **_external_attributes(spec)}


class SpiffExternalServiceTaskConverter(SpiffBpmnTaskConverter):
    def to_dict(self, spec: Any) -> dict[str, Any]:
        return {**super().to_dict(spec), **_external_attributes(spec)}


def register_external_tasks(family: str, registry: Any) -> None:
    """The family's external task spec in its serializer registry (serializer.py calls this)."""
    if family == "spiff":
        SpiffExternalServiceTaskConverter(SpiffExternalServiceTask, registry)
    else:
        ExternalServiceTaskConverter(ExternalServiceTask, registry)


def external_spec_class(family: str) -> type[ExternalTaskMixin]:
    return SpiffExternalServiceTask if family == "spiff" else ExternalServiceTask


def is_external(task: Any) -> bool:
    return isinstance(task.task_spec, ExternalTaskMixin)


def throw_bpmn_error(task: Any, code: str, message: str | None, family: str) -> bool:
    """Throw the BPMN error `code` from the task, as an error end event in its place would; True when an error
    event (a boundary event of the task or of a subprocess around it, an event subprocess) caught it."""
    definition_class = SpiffErrorEventDefinition if family == "spiff" else ErrorEventDefinition
    definition = definition_class(code, code=code)
    top = task.workflow.top_workflow
    before = len(top.bpmn_events)
    payload = {**deepcopy(task.data), "errorCode": code, **({"errorMessage": message} if message else {})}
    top.catch(BpmnEvent(definition, payload=payload, target=task.workflow))
    uncaught = [event for event in top.bpmn_events[before:] if event.event_definition is definition]
    if uncaught:
        top.bpmn_events = [event for event in top.bpmn_events if event.event_definition is not definition]
        return False
    return True
