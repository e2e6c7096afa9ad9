"""SpiffWorkflow runs diagrams through the sandboxed script engine exactly as through its stock one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

import pytest
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.parser import BpmnParser
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.camunda.parser import CamundaParser
from SpiffWorkflow.util.task import TaskState

from carepath.engine.sandbox import SandboxError, SandboxViolation
from carepath.engine.sandbox.spiff import SandboxedEnvironment, make_script_engine

pytestmark = pytest.mark.timeout(120)

BPMN_NS = 'xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"'
XSI_NS = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
CAMUNDA_NS = 'xmlns:camunda="http://camunda.org/schema/1.0/bpmn"'


def triage_diagram(script: str, condition: str) -> str:
    """start -> script -> gateway -(condition)-> "urgent" | default -> "routine"."""
    return (
        f'<bpmn:definitions {BPMN_NS} {XSI_NS} id="defs" targetNamespace="t">'
        '<bpmn:process id="triage" isExecutable="true"><bpmn:startEvent id="start"/>'
        f'<bpmn:scriptTask id="score"><bpmn:script>{escape(script)}</bpmn:script></bpmn:scriptTask>'
        '<bpmn:exclusiveGateway id="gw" default="to_routine"/>'
        '<bpmn:userTask id="urgent"/><bpmn:userTask id="routine"/><bpmn:endEvent id="end"/>'
        '<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="score"/>'
        '<bpmn:sequenceFlow id="f2" sourceRef="score" targetRef="gw"/>'
        '<bpmn:sequenceFlow id="to_urgent" sourceRef="gw" targetRef="urgent">'
        f'<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">{escape(condition)}'
        "</bpmn:conditionExpression></bpmn:sequenceFlow>"
        '<bpmn:sequenceFlow id="to_routine" sourceRef="gw" targetRef="routine"/>'
        '<bpmn:sequenceFlow id="f3" sourceRef="urgent" targetRef="end"/>'
        '<bpmn:sequenceFlow id="f4" sourceRef="routine" targetRef="end"/>'
        "</bpmn:process></bpmn:definitions>"
    )


def start(diagram: str, data: dict[str, Any], engine: PythonScriptEngine) -> BpmnWorkflow:
    parser = BpmnParser()
    parser.add_bpmn_str(diagram.encode())
    workflow = BpmnWorkflow(parser.get_spec("triage"), script_engine=engine)
    workflow.get_tasks(state=TaskState.READY)[0].data.update(data)
    workflow.do_engine_steps()
    return workflow


def ready(workflow: BpmnWorkflow) -> list[str]:
    return [task.task_spec.bpmn_id for task in workflow.get_tasks(state=TaskState.READY)]


def test_script_output_drives_the_gateway_condition() -> None:
    script = "risk = 'high' if patient['age'] >= 65 and len(meds) > 3 else 'low'"
    diagram = triage_diagram(script, 'risk == "high" and patient.age >= 65')
    high = start(diagram, {"patient": {"age": 80}, "meds": [1, 2, 3, 4]}, make_script_engine())
    low = start(diagram, {"patient": {"age": 30}, "meds": []}, make_script_engine())
    assert (ready(high), ready(low)) == (["urgent"], ["routine"])
    assert high.get_tasks(state=TaskState.READY)[0].data["risk"] == "high"


def test_script_dates_survive_a_save_and_restore() -> None:
    script = "from datetime import timedelta\nfollow_up = discharge + timedelta(days=7)"
    discharge = datetime(2024, 3, 28, 14, 30, tzinfo=UTC)
    workflow = start(triage_diagram(script, "follow_up > discharge"), {"discharge": discharge},
                     make_script_engine())
    serializer = BpmnWorkflowSerializer()
    restored = serializer.deserialize_json(serializer.serialize_json(workflow))
    restored.script_engine = make_script_engine()
    task = restored.get_tasks(state=TaskState.READY)[0]
    assert task.task_spec.bpmn_id == "urgent"
    assert task.data["follow_up"] == discharge + timedelta(days=7)


def test_a_failing_script_points_at_its_line() -> None:
    diagram = triage_diagram("a = 1\nb = a / 0", "True")
    with pytest.raises(WorkflowTaskException) as caught:
        start(diagram, {}, make_script_engine())
    assert caught.value.line_number == 2
    assert caught.value.error_line == "b = a / 0"
    assert "division by zero" in str(caught.value)


def test_a_hostile_condition_stops_the_workflow_with_a_sandbox_error() -> None:
    diagram = triage_diagram("x = 1", "().__class__.__base__.__subclasses__()")
    refused = "attribute access to '__[a-z]+__' is not allowed"
    with pytest.raises(WorkflowTaskException, match=refused) as caught:
        start(diagram, {}, make_script_engine())
    assert isinstance(caught.value.__cause__, SandboxViolation)


def test_execute_updates_task_data_in_place() -> None:
    zoned = datetime(2024, 1, 1, 9, tzinfo=ZoneInfo("Europe/London"))
    context: dict[str, Any] = {"keep": zoned, "drop": 1, "change": [1]}
    environment = SandboxedEnvironment()
    assert environment.execute("del drop\nchange.append(2)\nnew = keep.hour", context, {"helper": 5}) is True
    assert context == {"keep": zoned, "change": [1, 2], "new": 9}
    assert context["keep"].tzinfo is zoned.tzinfo  # unchanged values keep their original objects


def test_evaluate_prefers_task_data_over_external_names() -> None:
    environment = SandboxedEnvironment()
    assert environment.evaluate("x + y", {"x": 1}, {"x": 100, "y": 10}) == 11


def test_correlation_expression_reads_the_message_payload() -> None:
    payload = {"patient": {"mrn": "MRN-7"}}
    assert SandboxedEnvironment().evaluate("patient.mrn", payload) == "MRN-7"


def test_service_tasks_are_refused_with_a_clear_message() -> None:
    with pytest.raises(SandboxError, match="service tasks are not available"):
        SandboxedEnvironment().call_service({}, operation_name="fetch")
    workflow = start(triage_diagram("x = 1", "True"), {}, make_script_engine())
    task = workflow.get_tasks(state=TaskState.READY)[0]
    with pytest.raises(WorkflowTaskException, match="service tasks are not available"):
        workflow.script_engine.call_service(task, operation_name="fetch")


def test_validate_raises_syntax_error_only_for_text_that_does_not_parse() -> None:
    engine = make_script_engine()
    engine.validate("v > 5")
    with pytest.raises(SyntaxError):
        engine.validate("> 5")
    with pytest.raises(SandboxViolation):
        engine.validate("__import__('os')")


RULE_DIAGRAM = (
    f'<bpmn:definitions {BPMN_NS} {CAMUNDA_NS} id="defs" targetNamespace="t">'
    '<bpmn:process id="triage" isExecutable="true"><bpmn:startEvent id="start"/>'
    '<bpmn:businessRuleTask id="rule" camunda:decisionRef="band"/><bpmn:endEvent id="end"/>'
    '<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="rule"/>'
    '<bpmn:sequenceFlow id="f2" sourceRef="rule" targetRef="end"/>'
    "</bpmn:process></bpmn:definitions>"
)


def decision_table(cell: str) -> str:
    rules = [(cell, "matched"), ("-", "other")]
    rows = "".join(
        f'<rule id="r{i}"><inputEntry id="i{i}"><text>{escape(text)}</text></inputEntry>'
        f'<outputEntry id="o{i}"><text>"{out}"</text></outputEntry></rule>'
        for i, (text, out) in enumerate(rules))
    return (
        '<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="d" name="D" namespace="n">'
        '<decision id="band" name="Band"><decisionTable id="t" hitPolicy="FIRST">'
        '<input id="in1" label="Score"><inputExpression id="ie1"><text>score</text></inputExpression></input>'
        f'<output id="out1" name="band"/>{rows}</decisionTable></decision></definitions>'
    )


def decide(cell: str, score: Any, engine: PythonScriptEngine) -> Any:
    parser = CamundaParser()
    parser.add_bpmn_str(RULE_DIAGRAM.encode())
    parser.add_dmn_str(decision_table(cell).encode())
    workflow = BpmnWorkflow(parser.get_spec("triage"), script_engine=engine)
    workflow.get_tasks(state=TaskState.READY)[0].data["score"] = score
    workflow.do_engine_steps()
    return workflow.last_task.data["band"]


@pytest.mark.parametrize(
    ("cell", "score"),
    [
        ("> 5", 7), ("> 5", 3), (">= 18", 18), ("== 3", 3), ("5", 5), ("5", 6), ('"general"', "general"),
        ('"general"', "icu"), (' in ["a", "b"]', "b"), (' in ["a", "b"]', "c"), ('not "a"', "b"),
        ('"a","b"', ("a", "b")), ("4 < ? < 6", 5), ("4 < ? < 6", 9), ("? in [1, 2]", 2),
        ("len(?) > 2", "abc"), ("-", 1),
    ],
)
def test_dmn_cells_match_like_the_stock_engine(cell: str, score: Any) -> None:
    expected = decide(cell, score, PythonScriptEngine())
    assert decide(cell, score, make_script_engine()) == expected
