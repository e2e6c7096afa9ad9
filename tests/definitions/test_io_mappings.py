"""Camunda input/output parameters (camunda:inputOutput): input parameters are the task's local variables,
evaluated when it starts (its worker and its form see them, the episode's data does not keep them); output
parameters are evaluated when it ends and written to the episode's data; both survive save and restore; what
CarePath cannot run is refused with its location, never ignored."""

from __future__ import annotations

import pytest

from carepath.engine.clock import ManualClock
from carepath.engine.definitions import SourceFile, parse_package
from carepath.engine.errors import DiagramInvalid
from carepath.engine.runtime.serializer import serializer_for
from carepath.engine.runtime.workflow import RunningWorkflow
from carepath.engine.sandbox.spiff import make_script_engine
from carepath.engine.usecases.deploy import stored_spec

from .builders import definitions, element, flow, line_of, process, source

EXTERNAL = {"camunda:type": "external", "camunda:topic": "send-sms"}


def io(*parameters: str) -> str:
    return "<bpmn:extensionElements><camunda:inputOutput>" + "".join(parameters) + \
        "</camunda:inputOutput></bpmn:extensionElements>"


def param(kind: str, name: str, value: str) -> str:
    return f'<camunda:{kind}Parameter name="{name}">{value}</camunda:{kind}Parameter>'


def pathway(task: str) -> SourceFile:
    """start -> the task (id 'work') -> 'Review' -> end."""
    return source("p.bpmn", definitions(process(
        "Reminders", element("startEvent", "start"), task, element("userTask", "review", "Review"),
        element("endEvent", "end"), flow("f1", "start", "work"), flow("f2", "work", "review"),
        flow("f3", "review", "end"))))


def started(task: str, data: dict[str, object]) -> tuple[RunningWorkflow, str]:
    """The task's pathway parsed, stored, restored and started: (workflow, stored spec text)."""
    [parsed] = parse_package([pathway(task)]).processes
    text = stored_spec(parsed)
    spec, subs = serializer_for(parsed.family).spec_from_json(text)
    workflow = RunningWorkflow.create(spec, subs, parsed.family, make_script_engine(), data)
    workflow.run(ManualClock())
    return restored(workflow, text), text


def restored(workflow: RunningWorkflow, text: str) -> RunningWorkflow:
    spec, subs = serializer_for("camunda").spec_from_json(text)
    return RunningWorkflow.restore(workflow.dump(), spec, subs, "camunda", make_script_engine())


SMS = element("serviceTask", "work", "Send SMS", **EXTERNAL, body=io(
    param("input", "phone", "${patient.phone}"), param("input", "text", "Your visit is due"),
    param("input", "note", "original"),
    param("output", "sms_status", "${status == 'sent' ? 'delivered' : 'failed'}"),
    param("output", "sent_to", "${phone}")))


def test_an_external_task_hands_its_inputs_and_maps_its_workers_result_across_save_and_restore() -> None:
    workflow, text = started(SMS, {"patient": {"phone": "+1555"}, "note": "the episode's"})
    [wait] = workflow.snapshot().external_tasks
    assert wait.inputs == {"phone": "+1555", "text": "Your visit is due", "note": "original"}
    workflow = restored(workflow, text)
    workflow.complete_external(wait.task_id, {"status": "sent"}, ManualClock())
    data = restored(workflow, text).snapshot().data
    assert (data["sms_status"], data["sent_to"], data["status"]) == ("delivered", "+1555", "sent")
    assert "phone" not in data and "text" not in data  # inputs are the task's own: they end with it
    assert data["note"] == "the episode's"  # the value an input hid comes back


def test_a_user_task_sees_its_inputs_and_its_outputs_reach_the_episode() -> None:
    task = element("userTask", "work", "Call", body=io(
        param("input", "greeting", "Hello"), param("input", "score", "${risk * 2}"),
        param("output", "follow_up", "${answered ? 'none' : 'call again'}")))
    workflow, text = started(task, {"risk": 3})
    [open_task] = workflow.snapshot().open_tasks
    _, seen = workflow.task_data(open_task.id)
    assert (seen["greeting"], seen["score"]) == ("Hello", 6)
    workflow.complete_task(open_task.id, {"answered": False}, ManualClock())
    data = restored(workflow, text).snapshot().data
    assert data["follow_up"] == "call again" and "greeting" not in data and "score" not in data


def test_lists_maps_and_empty_values_are_literals_or_expressions_inside() -> None:
    task = element("userTask", "work", "Call", body=io(
        param("input", "unused", ""),
        param("output", "contacts", '<camunda:list><camunda:value>GP</camunda:value>'
                                    '<camunda:value>${nurse}</camunda:value></camunda:list>'),
        param("output", "plan", '<camunda:map><camunda:entry key="when">P7D</camunda:entry>'
                                '<camunda:entry key="who">${nurse}</camunda:entry></camunda:map>')))
    workflow, _ = started(task, {"nurse": "Ana"})
    [open_task] = workflow.snapshot().open_tasks
    workflow.complete_task(open_task.id, {}, ManualClock())
    data = workflow.snapshot().data
    assert data["contacts"] == ["GP", "Ana"] and data["plan"] == {"when": "P7D", "who": "Ana"}


def test_validate_shows_each_parameter_with_its_translation() -> None:
    package = parse_package([pathway(SMS)])
    shown = {(m.direction, m.name): m.shown for m in package.io_mappings}
    assert shown[("input", "phone")] == "${patient.phone} -> patient.phone"
    assert shown[("input", "text")] == "'Your visit is due'"
    assert all(m.element_id == "work" for m in package.io_mappings)


@pytest.mark.parametrize(("body", "words"), [
    (param("input", "x", '<camunda:script scriptFormat="groovy">1 + 1</camunda:script>'),
     "is a script (groovy), which CarePath does not run"),
    (param("input", "x", "Dear ${name}"), "mixes text and an expression"),
    (param("output", "x", "${a.foo(1)}"), "uses"),
    (param("input", "_x", "a"), "is not a variable name"),
])
def test_what_carepath_cannot_run_is_refused_with_its_location(body: str, words: str) -> None:
    file = pathway(element("userTask", "work", "Call", body=io(body)))
    with pytest.raises(DiagramInvalid) as refused:
        parse_package([file])
    [problem] = [p for p in refused.value.problems if p.element_id == "work"]
    assert words in problem.message and "input/output mapping" in problem.message
    assert (problem.file, problem.line) == ("p.bpmn", line_of(file.content.decode(), 'id="work"'))


def test_a_mapping_on_something_other_than_a_task_is_refused() -> None:
    file = source("p.bpmn", definitions(process(
        "Reminders", element("startEvent", "start", body=io(param("output", "x", "1"))),
        element("endEvent", "end"), flow("f1", "start", "end"))))
    with pytest.raises(DiagramInvalid) as refused:
        parse_package([file])
    assert any("reads only on tasks" in p.message and p.element_id == "start" for p in refused.value.problems)


def test_a_mapping_on_a_repeating_task_is_refused() -> None:
    loop = ('<bpmn:multiInstanceLoopCharacteristics isSequential="true"><bpmn:loopCardinality>2</bpmn:loopCardinality>'
            '</bpmn:multiInstanceLoopCharacteristics>')
    with pytest.raises(DiagramInvalid) as refused:
        parse_package([pathway(element("userTask", "work", "Call", body=io(param("input", "g", "1")) + loop))])
    assert any("repeats" in p.message and p.element_id == "work" for p in refused.value.problems)
