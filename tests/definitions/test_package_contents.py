"""What a deployable package turns into: parser family, executable processes, and what each one needs."""

from __future__ import annotations

import pytest

from carepath.engine.definitions import parse_package
from carepath.engine.definitions._families import PARSER_CLASSES
from carepath.engine.definitions._implicit_gateways import UNCONTROLLED_FLOW_NODES
from carepath.engine.errors import DiagramInvalid

from .builders import BPMN_NS, definitions, element, line_of, linear_process, process, source, user_task


def test_a_plain_bpmn_pathway_with_a_user_task_parses_with_the_plain_parser() -> None:
    text = definitions(linear_process("PostEd", user_task(0, "Check vitals"), name="Post-ED follow-up")
                       .replace("<bpmn:startEvent", '<bpmn:documentation>After discharge</bpmn:documentation>'
                                '<bpmn:laneSet id="Lanes"><bpmn:lane id="L1" name="Ward nurse">'
                                "<bpmn:flowNodeRef>step_0</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>"
                                "<bpmn:startEvent", 1))

    package = parse_package([source("post-ed.bpmn", text)])

    [parsed] = package.processes
    assert (parsed.key, parsed.name, parsed.family, parsed.source_file) == (
        "PostEd", "Post-ED follow-up", "bpmn", "post-ed.bpmn")
    assert parsed.spec.name == "PostEd" and "step_0" in parsed.spec.task_specs
    assert parsed.lanes == ["Ward nurse"]
    assert parsed.documentation == "After discharge"
    assert (parsed.subprocess_specs, parsed.external_calls, parsed.message_starts) == ({}, [], [])
    assert package.warnings == []


def test_a_file_using_camunda_extensions_is_read_by_the_camunda_parser() -> None:
    text = definitions(linear_process("P", user_task(0, camunda__formKey="embedded:vitals")))

    assert parse_package([source("p.bpmn", text)]).processes[0].family == "camunda"


def test_a_file_using_spiffworkflow_extensions_is_read_by_the_spiff_parser() -> None:
    body = "<bpmn:extensionElements><spiffworkflow:instructionsForEndUser>Do it" \
           "</spiffworkflow:instructionsForEndUser></bpmn:extensionElements>"
    text = definitions(linear_process("P", element("userTask", "step_0", "Review", body)))

    assert parse_package([source("p.bpmn", text)]).processes[0].family == "spiff"


def test_declared_but_unused_extension_namespaces_do_not_change_the_parser() -> None:
    text = definitions(linear_process("P", user_task(0)), namespaces=' exporter="Camunda Modeler"')

    assert parse_package([source("p.bpmn", text)]).processes[0].family == "bpmn"


def test_mixing_camunda_and_spiff_extensions_picks_one_parser_and_warns() -> None:
    camunda = definitions(linear_process("A", user_task(0, camunda__formKey="form")))
    spiff = definitions(linear_process("B", element(
        "userTask", "step_0", "Review", "<bpmn:extensionElements><spiffworkflow:instructionsForEndUser>x"
        "</spiffworkflow:instructionsForEndUser><spiffworkflow:preScript>a = 1</spiffworkflow:preScript>"
        "</bpmn:extensionElements>")))

    package = parse_package([source("a.bpmn", camunda), source("b.bpmn", spiff)])

    assert {process.family for process in package.processes} == {"spiff"}
    assert any("both Camunda extensions" in warning.message for warning in package.warnings)


@pytest.mark.parametrize("flag", ["false", "0"])  # no attribute at all runs: test_camunda_conditions
def test_a_package_whose_processes_are_all_not_executable_is_refused_with_the_fix(flag: str) -> None:
    text = definitions(linear_process("Process_1", user_task(0), executable=flag))

    with pytest.raises(DiagramInvalid) as raised:
        parse_package([source("drawing.bpmn", text)])

    [problem] = raised.value.problems
    assert problem.message == (
        "Process 'Process_1' is not marked executable. In Camunda Modeler / bpmn.io select the process "
        "(click on empty canvas) and tick 'Executable' in the properties panel; in Signavio set the process "
        "attribute 'isExecutable' to true.")
    assert (problem.file, problem.line, problem.element_id) == (
        "drawing.bpmn", line_of(text, '<bpmn:process id="Process_1"'), "Process_1")


def test_non_executable_processes_next_to_executable_ones_are_skipped_with_a_warning() -> None:
    text = definitions(linear_process("Runs", user_task(0)),
                       linear_process("Drawing", user_task(0), executable="false").replace("step_0", "d0")
                       .replace('"start"', '"d_start"').replace('"end"', '"d_end"'))

    package = parse_package([source("p.bpmn", text)])

    assert [process.key for process in package.processes] == ["Runs"]
    [warning] = package.warnings
    assert "Drawing" in warning.message and "skips it" in warning.message and warning.element_id == "Drawing"


def test_a_schema_violation_that_still_runs_is_a_warning_not_a_refusal() -> None:
    text = definitions(linear_process("P", user_task(0)), target_namespace=False)

    package = parse_package([source("p.bpmn", text)])

    assert [process.key for process in package.processes] == ["P"]
    [warning] = package.warnings
    assert "targetNamespace" in warning.message and warning.line == 2 and warning.file == "p.bpmn"


def test_bpmn_io_correlation_expressions_are_read_and_reported_as_a_warning() -> None:
    correlation = ('<bpmn:correlationProperty id="Prop_1" name="patient">'
                   '<bpmn:correlationPropertyRetrievalExpression messageRef="Msg_1">'
                   "<bpmn:formalExpression>patient_id</bpmn:formalExpression>"
                   "</bpmn:correlationPropertyRetrievalExpression></bpmn:correlationProperty>")
    text = definitions('<bpmn:message id="Msg_1" name="lab_result"/>', correlation,
                       linear_process("P", user_task(0)))

    package = parse_package([source("p.bpmn", text)])

    assert any("<formalExpression>" in warning.message for warning in package.warnings)
    assert not any("does not follow the BPMN 2.0 standard" in warning.message for warning in package.warnings)


def test_message_start_events_are_listed_by_message_name() -> None:
    start = element("startEvent", "start", body='<bpmn:messageEventDefinition messageRef="Msg_1"/>')
    text = definitions('<bpmn:message id="Msg_1" name="lab_result_received"/>',
                       process("P", start, user_task(0), element("endEvent", "end"),
                               '<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="step_0"/>',
                               '<bpmn:sequenceFlow id="f2" sourceRef="step_0" targetRef="end"/>'))

    [parsed] = parse_package([source("p.bpmn", text)]).processes

    assert parsed.message_starts == ["lab_result_received"]


@pytest.mark.parametrize("family", sorted(PARSER_CLASSES))
def test_every_element_spiffworkflow_cannot_split_gets_the_gateway_bpmn_implies(family: str) -> None:
    """SpiffWorkflow refuses several outgoing flows on these; _implicit_gateways splits after each of them."""
    parser_class = PARSER_CLASSES[family]
    classes = {**parser_class.PARSER_CLASSES, **parser_class.OVERRIDE_PARSER_CLASSES}
    refused = set()
    for tag, (node_parser, _spec) in classes.items():
        # handles_multiple_outgoing only returns a constant; no parser instance is needed to ask it.
        if not node_parser.handles_multiple_outgoing(None):
            refused.add(tag.removeprefix(f"{{{BPMN_NS}}}"))
    assert refused <= UNCONTROLLED_FLOW_NODES
