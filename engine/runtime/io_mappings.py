"""Camunda 7 input and output parameters (`camunda:inputOutput`) on tasks, evaluated by the engine.

SpiffWorkflow 3.2's Camunda parser does not read them. CarePath carries them on the task spec as two
data specifications, hooked where SpiffWorkflow already runs a task's data associations:
  - `InputParameters` sits in `data_input_associations`: when the task starts (its update hook, before a
    form is shown or a worker can fetch it) each parameter is evaluated over the task's data and written
    into it. They are the task's LOCAL variables: the values they hide are kept in the task's internal data.
  - `OutputParameters` sits in `data_output_associations`: when the task completes, each parameter is
    evaluated over the task's data (its inputs, a form's answers, a worker's variables), the local
    variables are removed (hidden values come back), and the outputs are written to the process data.
A value is a literal text, an expression (already translated at deploy into the sandbox language, so the
script engine, i.e. the sandbox, evaluates it), or a list or map of values. Both classes are registered in
every family's serializer (serializer.py), so stored specs restore with their mappings.
"""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.bpmn.serializer.helpers.spec import BpmnDataSpecificationConverter
from SpiffWorkflow.bpmn.specs.data_spec import BpmnDataSpecification

# A value, as JSON: {"literal": text|None} | {"expression": sandbox text, "original": as written}
#                   | {"list": [value, ...]} | {"map": [[key, value], ...]}
Value = dict[str, Any]
Parameter = tuple[str, Value]
_HIDDEN = "carepath_io_hidden"  # internal data: the values the task's local variables hide
INPUTS_ID = "camunda:inputParameters"  # never a variable name: SpiffWorkflow pops it from the data on completion
OUTPUTS_ID = "camunda:outputParameters"


def evaluate_value(task: Any, value: Value) -> Any:
    if "literal" in value:
        return value["literal"]
    if "expression" in value:
        return task.workflow.script_engine.evaluate(task, value["expression"])
    if "list" in value:
        return [evaluate_value(task, item) for item in value["list"]]
    return {key: evaluate_value(task, item) for key, item in value["map"]}


class _Parameters(BpmnDataSpecification):
    def __init__(self, bpmn_id: str, bpmn_name: str | None = None,
                 parameters: list[Parameter] | None = None) -> None:
        super().__init__(bpmn_id, bpmn_name)
        self.parameters = [(str(name), value) for name, value in (parameters or [])]

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.parameters]


class InputParameters(_Parameters):
    def __init__(self, bpmn_id: str = INPUTS_ID, bpmn_name: str | None = None,
                 parameters: list[Parameter] | None = None) -> None:
        super().__init__(bpmn_id, bpmn_name, parameters)

    def get(self, my_task: Any, **kwargs: Any) -> None:
        if _HIDDEN in my_task.internal_data:
            return  # already started: evaluating again would take its own locals for hidden values
        values = {name: evaluate_value(my_task, value) for name, value in self.parameters}
        my_task.internal_data[_HIDDEN] = {name: my_task.data[name] for name in values if name in my_task.data}
        my_task.data.update(values)


class OutputParameters(_Parameters):
    def __init__(self, bpmn_id: str = OUTPUTS_ID, bpmn_name: str | None = None,
                 parameters: list[Parameter] | None = None) -> None:
        super().__init__(bpmn_id, bpmn_name, parameters)

    def set(self, my_task: Any, **kwargs: Any) -> None:
        values = {name: evaluate_value(my_task, value) for name, value in self.parameters}
        end_locals(my_task)
        my_task.data.update(values)


def end_locals(task: Any) -> None:
    """Remove the task's input parameters from its data, giving back the values they hid."""
    hidden = task.internal_data.pop(_HIDDEN, None)
    if hidden is None:
        return
    for spec in task.task_spec.data_input_associations:
        if isinstance(spec, InputParameters):
            for name in spec.names:
                task.data.pop(name, None)
    task.data.update(hidden)


def local_inputs(task: Any) -> dict[str, Any]:
    """The values of a started task's input parameters (what its form or worker sees besides the data)."""
    if _HIDDEN not in task.internal_data:
        return {}
    names = [name for spec in task.task_spec.data_input_associations if isinstance(spec, InputParameters)
             for name in spec.names]
    return {name: task.data[name] for name in names if name in task.data}


class ParametersConverter(BpmnDataSpecificationConverter):
    def to_dict(self, data_spec: _Parameters) -> dict[str, Any]:
        return {**super().to_dict(data_spec), "parameters": [[name, value] for name, value in data_spec.parameters]}


def register_io_mappings(registry: Any) -> None:
    """The parameter specs in a family's serializer registry (serializer.py calls this)."""
    ParametersConverter(InputParameters, registry)
    ParametersConverter(OutputParameters, registry)
