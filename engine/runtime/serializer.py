"""Workflow state as JSON without the spec, and specs as JSON once per pathway version.

SpiffWorkflow's serializer embeds the whole process spec in every saved workflow. CarePath
stores the spec once per deployed version and keeps instance state spec-free: the workflow
converter below drops `spec`/`subprocess_specs` on save and takes already-restored spec objects
on load. One registry per parser family, because SpiffWorkflow registers classes by their bare
class names (the Camunda and Spiff `UserTask` would collide in one registry).
"""

from __future__ import annotations

import json
from copy import deepcopy
from functools import cache
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer import DEFAULT_CONFIG, BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.event_definition import (
    MessageEventDefinitionConverter,
    TimerConditionalEventDefinitionConverter,
)
from SpiffWorkflow.bpmn.serializer.default.task_spec import BpmnTaskSpecConverter, ConditionalGatewayConverter
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec
from SpiffWorkflow.bpmn.specs.defaults import ServiceTask as BpmnServiceTask
from SpiffWorkflow.bpmn.specs.event_definitions.message import (
    MessageEventDefinition as BpmnMessageEventDefinition,
)
from SpiffWorkflow.camunda.serializer.config import CAMUNDA_CONFIG
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG

from .external_tasks import register_external_tasks
from .implicit_split import ImplicitSplit
from .io_mappings import register_io_mappings
from .quick_workflow import QuickWorkflow
from .timers import PRODUCT_TIMER_CLASSES

FAMILIES = ("bpmn", "camunda", "spiff")
STATE_FORMAT = "carepath-1"


class SpecFreeWorkflowConverter(BpmnWorkflowConverter):
    """Saves a top-level workflow without its specs; restores it onto given spec objects."""

    def to_dict(self, workflow: BpmnWorkflow) -> dict[str, Any]:
        dct = WorkflowConverter.to_dict(self, workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def restore(self, dct: dict[str, Any], spec: BpmnProcessSpec,
                subprocess_specs: dict[str, BpmnProcessSpec]) -> BpmnWorkflow:
        workflow = QuickWorkflow(spec, subprocess_specs, deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


class FamilySerializer:
    """Spec and state (de)serialization for one parser family."""

    def __init__(self, config: dict[Any, Any]) -> None:
        config = dict(config)
        config.pop(BpmnWorkflow, None)
        registry = BpmnWorkflowSerializer.configure(config)
        # Same typenames as SpiffWorkflow's timer classes: stored specs restore onto the product's.
        for timer_class in PRODUCT_TIMER_CLASSES:
            TimerConditionalEventDefinitionConverter(timer_class, registry)
        self.registry = registry
        self.workflow_converter = SpecFreeWorkflowConverter(BpmnWorkflow, registry)
        self._serializer = BpmnWorkflowSerializer(registry)

    def spec_to_json(self, spec: BpmnProcessSpec, subprocess_specs: dict[str, BpmnProcessSpec]) -> str:
        dct = {
            "spec": self.registry.convert(spec),
            "subprocess_specs": {k: self.registry.convert(v) for k, v in subprocess_specs.items()},
        }
        return json.dumps(dct, sort_keys=True, separators=(",", ":"))

    def spec_from_json(self, text: str) -> tuple[BpmnProcessSpec, dict[str, BpmnProcessSpec]]:
        dct = json.loads(text)
        spec = self.registry.restore(dct["spec"])
        subs = {k: self.registry.restore(v) for k, v in dct["subprocess_specs"].items()}
        return spec, subs

    def state_to_json(self, workflow: BpmnWorkflow) -> str:
        self.registry._encoder_mode = True
        try:
            dct = self.workflow_converter.to_dict(workflow)
            dct["format"] = STATE_FORMAT
            return json.dumps(dct, cls=self._serializer._encoder_cls, separators=(",", ":"))
        finally:
            self.registry._encoder_mode = False

    def state_from_json(self, text: str, spec: BpmnProcessSpec,
                        subprocess_specs: dict[str, BpmnProcessSpec]) -> BpmnWorkflow:
        dct = json.loads(text)
        if dct.pop("format", None) != STATE_FORMAT:
            raise ValueError("instance state was saved in an unknown format")
        return self.workflow_converter.restore(dct, spec, subprocess_specs)


@cache
def serializer_for(family: str) -> FamilySerializer:
    configs = {"bpmn": DEFAULT_CONFIG, "camunda": CAMUNDA_CONFIG, "spiff": SPIFF_CONFIG}
    if family not in configs:
        raise ValueError(f"unknown parser family {family!r}")
    serializer = FamilySerializer(deepcopy(configs[family]))
    _register_library_gaps(family, serializer.registry)
    return serializer


def _register_library_gaps(family: str, registry: Any) -> None:
    """Classes SpiffWorkflow's parsers create but its serializer configs leave out."""
    ConditionalGatewayConverter(ImplicitSplit, registry)  # the split of uncontrolled flow (implicit_split.py)
    if family in ("bpmn", "camunda"):
        BpmnTaskSpecConverter(BpmnServiceTask, registry)
    register_external_tasks(family, registry)
    register_io_mappings(registry)  # camunda:inputOutput, carried as data specs (io_mappings.py)
    if family == "camunda":
        # Send and receive tasks use the plain message definition; Camunda's has the same class name.
        MessageEventDefinitionConverter(BpmnMessageEventDefinition, registry, typename="BpmnMessageEventDefinition")
