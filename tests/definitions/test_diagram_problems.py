"""Diagrams that cannot run are refused with every problem, each located and in words a lead can act on."""

from __future__ import annotations

import pytest

from carepath.engine.definitions import ImportLimits, SourceFile, _package, parse_package
from carepath.engine.definitions._static_checks import StaticReport
from carepath.engine.errors import DiagramInvalid, Problem

from .builders import (
    chain,
    definitions,
    dmn,
    element,
    flow,
    line_of,
    linear_process,
    process,
    source,
    user_task,
)


def refusal(*files: SourceFile, known: tuple[str, ...] = ()) -> list[Problem]:
    with pytest.raises(DiagramInvalid) as raised:
        parse_package(files, known_process_ids=known)
    assert raised.value.problems
    return raised.value.problems


def gateway_process(*outgoing: str, default: str | None = None) -> str:
    attributes = {"default": default} if default else {}
    return process("Triage", element("startEvent", "start"),
                   element("exclusiveGateway", "Gateway_1", "Check risk", **attributes),
                   element("userTask", "high", "Escalate"), element("endEvent", "end"),
                   flow("f0", "start", "Gateway_1"), *outgoing, flow("f_high", "high", "end"))


def data_object_two_levels_up() -> str:
    """A task in a sub-subprocess writing a data object defined on the process."""
    task = ('<bpmn:task id="deep_task"><bpmn:dataOutputAssociation id="a"><bpmn:targetRef>ObjRef'
            "</bpmn:targetRef></bpmn:dataOutputAssociation></bpmn:task>")
    inner = element("subProcess", "inner", body=element("startEvent", "is") + task
                    + element("endEvent", "ie") + "".join(chain("is", "deep_task", "ie")))
    outer = element("subProcess", "step_0", body=element("startEvent", "os") + inner
                    + element("endEvent", "oe") + "".join(chain("os", "inner", "oe")))
    objects = '<bpmn:dataObject id="Obj"/><bpmn:dataObjectReference id="ObjRef" dataObjectRef="Obj"/>'
    pathway = linear_process("P", outer).replace("<bpmn:startEvent", objects + "<bpmn:startEvent", 1)
    return definitions(pathway)


def test_an_exclusive_gateway_flow_without_condition_is_located_at_the_gateway() -> None:
    text = definitions(gateway_process(flow("Flow_2", "Gateway_1", "high", "risk > 5"),
                                       flow("Flow_3", "Gateway_1", "end")))

    [problem] = refusal(source("triage.bpmn", text))

    line = line_of(text, 'id="Gateway_1"')
    assert problem.message == (
        f"Exclusive gateway 'Gateway_1' (Check risk) at line {line} has an outgoing flow with no condition "
        "and no default flow. Add a condition to flow 'Flow_3' or mark one flow as the default.")
    assert (problem.file, problem.line, problem.element_id) == ("triage.bpmn", line, "Gateway_1")


def test_a_default_flow_may_go_without_a_condition() -> None:
    text = definitions(gateway_process(flow("Flow_2", "Gateway_1", "high", "risk > 5"),
                                       flow("Flow_3", "Gateway_1", "end"), default="Flow_3"))

    assert [process.key for process in parse_package([source("t.bpmn", text)]).processes] == ["Triage"]


def test_an_empty_condition_counts_as_no_condition() -> None:
    text = definitions(gateway_process(flow("Flow_2", "Gateway_1", "high", "  "),
                                       flow("Flow_3", "Gateway_1", "end"), default="Flow_3"))

    [problem] = refusal(source("t.bpmn", text))

    assert "'Flow_2'" in problem.message and "Only the default flow ('Flow_3')" in problem.message


def test_a_business_rule_task_without_its_dmn_file_is_refused() -> None:
    task = element("businessRuleTask", "step_0", "Classify", camunda__decisionRef="risk")
    text = definitions(linear_process("P", task))

    [problem] = refusal(source("p.bpmn", text))

    line = line_of(text, 'id="step_0"')
    assert problem.message == (
        f"Business rule task 'step_0' (Classify) at line {line} refers to decision "
        "'risk' but no uploaded DMN file defines it. Upload the .dmn file together with the .bpmn file.")
    assert problem.element_id == "step_0"


def test_a_bpmn_package_with_its_dmn_file_parses() -> None:
    task = element("businessRuleTask", "step_0", "Classify", camunda__decisionRef="risk")

    bpmn_file = source("p.bpmn", definitions(linear_process("P", task)))

    package = parse_package([bpmn_file, source("r.dmn", dmn("risk"))])

    [parsed] = package.processes
    assert parsed.family == "camunda" and "step_0" in parsed.spec.task_specs


def test_a_business_rule_task_without_a_decision_reference_is_refused_not_crashed() -> None:
    # CamundaParser raises a bare KeyError for this while the file is added.
    text = definitions(linear_process("P", element("businessRuleTask", "step_0", "Classify"),
                                      user_task(1, camunda__formKey="form")).replace('"end"', '"step_1"', 1))

    problems = refusal(source("p.bpmn", text), source("r.dmn", dmn("risk")))

    assert any("does not say which DMN decision it uses" in problem.message
               and problem.element_id == "step_0" for problem in problems)


def test_a_dmn_file_with_several_decisions_is_explained() -> None:
    task = element("businessRuleTask", "step_0", "Classify", camunda__decisionRef="risk")

    [problem] = refusal(source("p.bpmn", definitions(linear_process("P", task))),
                        source("r.dmn", dmn("risk", "other")))

    assert "holds 2 decisions" in problem.message


def test_a_call_to_a_deployed_process_becomes_an_external_call() -> None:
    text = definitions(linear_process("Main", element("callActivity", "step_0", "Follow-up",
                                                      calledElement="FollowUp")))

    [parsed] = parse_package([source("m.bpmn", text)], known_process_ids={"FollowUp"}).processes

    assert parsed.external_calls == ["FollowUp"] and parsed.subprocess_specs == {}


def test_a_call_to_a_process_that_is_nowhere_is_refused() -> None:
    text = definitions(linear_process("Main", element("callActivity", "step_0", calledElement="Y")))

    [problem] = refusal(source("m.bpmn", text), known=("Other",))

    assert "calls process 'Y', which is neither in this upload nor deployed" in problem.message
    assert problem.element_id == "step_0" and problem.line == line_of(text, 'id="step_0"')


def test_a_call_to_a_process_in_the_package_brings_its_spec_along() -> None:
    main = definitions(linear_process("Main", element("callActivity", "step_0", calledElement="Sub")))
    sub = definitions(linear_process("Sub", user_task(0)))

    package = parse_package([source("main.bpmn", main), source("sub.bpmn", sub)])

    main_process = next(process for process in package.processes if process.key == "Main")
    assert list(main_process.subprocess_specs) == ["Sub"] and main_process.external_calls == []


def test_a_process_that_calls_itself_parses_without_looping() -> None:
    text = definitions(linear_process("Loop", element("callActivity", "step_0", calledElement="Loop")))

    [parsed] = parse_package([source("loop.bpmn", text)]).processes

    assert list(parsed.subprocess_specs) == ["Loop"]


def test_a_subprocess_without_a_start_event_is_refused() -> None:
    inner = element("subProcess", "step_0", "Assess", body=element("task", "t") + element("endEvent", "e")
                    + flow("fi", "t", "e"))

    [problem] = refusal(source("p.bpmn", definitions(linear_process("P", inner))))

    assert problem.message.startswith("Subprocess 'step_0' (Assess) at line")
    assert "has no start event" in problem.message and problem.element_id == "step_0"


def test_a_data_store_is_refused_because_carepath_cannot_connect_to_it() -> None:
    text = definitions('<bpmn:dataStore id="Store" name="EHR"/>', process(
        "P", element("startEvent", "start"), element("endEvent", "end"), flow("f", "start", "end"),
        '<bpmn:dataStoreReference id="StoreRef" dataStoreRef="Store"/>'))

    [problem] = refusal(source("p.bpmn", text))

    assert "no connection to data stores such as 'EHR'" in problem.message
    assert problem.element_id == "StoreRef"


def test_a_data_object_two_levels_up_is_refused_instead_of_hanging_the_parser() -> None:
    # SpiffWorkflow's data object lookup loops forever on this shape.
    text = data_object_two_levels_up()

    [problem] = refusal(source("p.bpmn", text))

    assert problem.element_id == "deep_task" and "defined neither in" in problem.message


def test_every_problem_of_a_package_is_reported_at_once() -> None:
    broken = definitions(gateway_process(flow("Flow_2", "Gateway_1", "high", "risk > 5"),
                                         flow("Flow_3", "Gateway_1", "end")),
                         linear_process("Other", element("callActivity", "step_0", calledElement="Missing"),
                                        element("scriptTask", "step_1", "Score")))

    problems = refusal(source("a.bpmn", broken), source("b.bpmn", b""))

    messages = " | ".join(problem.message for problem in problems)
    for expected in ("no condition", "calls process 'Missing'", "has no script", "empty"):
        assert expected in messages


def test_an_error_only_spiffworkflow_finds_is_still_translated_and_located() -> None:
    correlation = '<bpmn:correlationProperty id="Prop_1" name="patient"/>'
    text = definitions(correlation, linear_process("P", user_task(0)))

    [problem] = refusal(source("p.bpmn", text))

    assert "Correlation property 'Prop_1' has no retrieval expression" in problem.message
    assert problem.line == line_of(text, 'id="Prop_1"') and problem.element_id == "Prop_1"


def test_a_reference_to_an_undefined_message_is_explained_not_hidden_behind_a_type_error() -> None:
    # SpiffBpmnParser would report TypeError("raise_validation_exception() got an unexpected keyword ...").
    start = element("startEvent", "start", body='<bpmn:messageEventDefinition messageRef="Nope"/>')
    instructions = ("<bpmn:extensionElements><spiffworkflow:instructionsForEndUser>x"
                    "</spiffworkflow:instructionsForEndUser></bpmn:extensionElements>")
    text = definitions(process("P", start, element("userTask", "step_0", body=instructions),
                               element("endEvent", "end"), *chain("start", "step_0", "end")))

    [problem] = refusal(source("p.bpmn", text))

    assert "refers to message 'Nope', which is not defined in the same file" in problem.message
    assert problem.element_id == "start"


def test_a_spiffworkflow_parse_that_never_ends_is_stopped_by_the_time_budget(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Without the checks, SpiffWorkflow loops forever on a data object two subprocess levels up.
    monkeypatch.setattr(_package, "run_static_checks", lambda index: StaticReport())
    text = data_object_two_levels_up()

    with pytest.raises(DiagramInvalid) as raised:
        parse_package([source("p.bpmn", text)], limits=ImportLimits(max_parse_seconds=0.5))

    [problem] = raised.value.problems
    assert "took longer than" in problem.message and problem.file == "p.bpmn"
