"""Diagrams as Camunda Modeler writes them: JUEL and FEEL conditions deploy, are shown translated, take the
right branch at run time (with every step saved and restored), and what cannot be translated, or is
written in another language, is refused with the condition quoted and located. Processes without
isExecutable run with a warning."""

from __future__ import annotations

from pathlib import Path

import pytest

from carepath.api.cli import main
from carepath.engine.application import CarePath
from carepath.engine.caches import LRUCache
from carepath.engine.definitions import SourceFile, parse_package
from carepath.engine.errors import DiagramInvalid
from carepath.engine.usecases.deploy import stored_spec
from tests.support import diagrams as d
from tests.support.api import ApiClient

CAMUNDA = 'xmlns:camunda="http://camunda.org/schema/1.0/bpmn"'


def routed(yes: str, no: str, executable: str | None = 'isExecutable="true"', pid: str = "route") -> str:
    """start -> Review -> gateway -> 'Call patient' when `yes`, 'Send letter' when `no`."""
    body = (d.node("startEvent", "s") + d.node("userTask", "review", "Review", **{"camunda:assignee": "demo"})
            + d.node("exclusiveGateway", "gw") + d.node("userTask", "call", "Call patient")
            + d.node("userTask", "letter", "Send letter") + d.node("endEvent", "e1") + d.node("endEvent", "e2")
            + d.flow("f0", "s", "review") + d.flow("f1", "review", "gw") + d.flow("yes", "gw", "call", yes)
            + d.flow("no", "gw", "letter", no) + d.flow("f2", "call", "e1") + d.flow("f3", "letter", "e2"))
    process = f'<bpmn:process id="{pid}" {executable or ""}>{body}</bpmn:process>'
    return d.definitions(process).replace("<bpmn:definitions ", f"<bpmn:definitions {CAMUNDA} ", 1)


def _run(api: ApiClient, engine: CarePath, xml: str, data: dict) -> list[str]:
    engine.workflows = LRUCache(0)  # every step is saved and restored: the translated text must survive
    lead = api.user("admin")
    deployed = api.deploy(lead, ("route.bpmn", xml))
    assert deployed.status_code in (200, 201), deployed.text
    started = api.start(lead, "route", data={})
    assert started.status_code == 201, started.text
    task = next(t for t in started.json()["open_tasks"] if t["name"] == "Review")
    done = api.post(f"/api/tasks/{task['id']}/complete", lead, {"data": data})
    assert done.status_code == 200, done.text
    return sorted(t["name"] for t in done.json()["open_tasks"])


def test_a_juel_diagram_deploys_and_takes_the_branch_its_conditions_choose(api: ApiClient, engine: CarePath) -> None:
    xml = routed("${approved && score ge 3}", "#{!approved || execution.getVariable('score') lt 3}")

    assert _run(api, engine, xml, {"approved": True, "score": 4}) == ["Call patient"]
    assert _run(api, engine, xml, {"approved": True, "score": 2}) == ["Send letter"]
    assert _run(api, engine, xml, {"approved": False, "score": 9}) == ["Send letter"]


def test_a_feel_diagram_deploys_and_takes_the_branch_its_conditions_choose(api: ApiClient, engine: CarePath) -> None:
    xml = routed('=status = "done" and x > 5', '=status != "done" or x = null or x <= 5')

    assert _run(api, engine, xml, {"status": "done", "x": 7}) == ["Call patient"]
    assert _run(api, engine, xml, {"status": "done", "x": 2}) == ["Send letter"]
    assert _run(api, engine, xml, {"status": "open"}) == ["Send letter"]  # x not set: FEEL reads null


def test_validate_shows_each_condition_as_written_and_as_carepath_evaluates_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "route.bpmn"
    path.write_text(routed("${approved eq true}", "${empty notes}"))

    assert main(["validate", "--offline", str(path)]) == 0

    out = capsys.readouterr().out
    assert f"expression: {path}, line 2, yes: ${{approved eq true}} -> approved == True" in out
    assert f"expression: {path}, line 2, no: ${{empty notes}} -> notes in (None, '', [], {{}})" in out


def refusal(xml: str) -> list:
    with pytest.raises(DiagramInvalid) as refused:
        parse_package([SourceFile("route.bpmn", xml.encode())])
    return refused.value.problems


def test_a_condition_outside_the_subset_is_refused_quoting_it_and_saying_what_is_supported() -> None:
    [problem] = refusal(routed('${S(answer).prop("status").stringValue() == "YES"}', "${!approved}"))

    assert (problem.file, problem.element_id) == ("route.bpmn", "yes")
    assert problem.message.startswith(
        "The condition on flow 'yes' from Exclusive gateway 'gw' at line 2 cannot run: the JUEL expression "
        "'${S(answer).prop(\"status\").stringValue() == \"YES\"}' uses 'S(answer).prop(\"status\")")
    assert "calling 'S(...)' is not supported" in problem.message
    assert "CarePath translates JUEL ${...} / #{...} and Camunda 8 FEEL" in problem.message


def test_xpath_and_plain_words_are_refused_with_how_to_write_them() -> None:
    problems = refusal(routed("bpmn:getDataObject('clarified') = 'yes'", "Service Level == 'Premium'"))

    xpath, words = sorted(problems, key=lambda problem: problem.element_id)[::-1]
    assert xpath.element_id == "yes"
    assert "'bpmn:getDataObject('clarified') = 'yes'' is written in XPath" in xpath.message
    assert "e.g. clarified == 'yes'" in xpath.message
    assert words.element_id == "no" and "'Service Level == 'Premium''" in words.message
    assert "a variable's name has no spaces" in words.message and "e.g. service_level == 'Premium'" in words.message


def test_a_call_activity_to_a_global_task_says_what_it_is() -> None:
    body = (d.node("startEvent", "s") + d.node("callActivity", "c", "Check", calledElement="GlobalCheck")
            + d.node("endEvent", "e") + d.flow("f0", "s", "c") + d.flow("f1", "c", "e"))
    xml = d.definitions(d.process("p", body), extra='<bpmn:globalUserTask id="GlobalCheck" name="Check"/>')

    [problem] = refusal(xml)

    assert problem.element_id == "c"
    assert "calls 'GlobalCheck', which is a global user task" in problem.message
    assert "CarePath calls processes" in problem.message


# -- isExecutable ----------------------------------------------------------------------------------

def test_a_process_without_is_executable_runs_with_a_warning() -> None:
    package = parse_package([SourceFile("route.bpmn", routed("${a}", "${!a}", executable=None).encode())])

    assert [process.key for process in package.processes] == ["route"]
    [warning] = [w for w in package.warnings if "isExecutable" in w.message]
    assert warning.element_id == "route" and "takes it as meant to run" in warning.message


def test_in_a_collaboration_the_pools_not_marked_executable_are_documentation() -> None:
    runs = routed("${a}", "${!a}")
    other = routed("${a}", "${!a}", executable=None, pid="patient")
    other_process = other[other.index("<bpmn:process"):other.index("</bpmn:definitions>")]
    for node_id in ("s", "review", "gw", "call", "letter", "e1", "e2", "f0", "f1", "yes", "no", "f2", "f3"):
        other_process = other_process.replace(f'"{node_id}"', f'"p_{node_id}"')
    xml = runs.replace("</bpmn:definitions>", other_process + "</bpmn:definitions>")

    package = parse_package([SourceFile("collab.bpmn", xml.encode())])

    assert [process.key for process in package.processes] == ["route"]
    [note] = [w for w in package.warnings if w.element_id == "patient"]
    assert "takes it as documentation" in note.message and "leaves it out" in note.message


def test_is_executable_false_keeps_its_refusal() -> None:
    [problem] = refusal(routed("${a}", "${!a}", executable='isExecutable="false"'))

    assert problem.message.startswith("Process 'route' is not marked executable.")


def conditional_wait(condition: str) -> str:
    trigger = ('<bpmn:conditionalEventDefinition><bpmn:condition xsi:type="bpmn:tFormalExpression">'
               f"{condition}</bpmn:condition></bpmn:conditionalEventDefinition>")
    body = (d.node("startEvent", "s") + d.node("intermediateCatchEvent", "wait", "Wait until ready", body=trigger)
            + d.node("endEvent", "e") + d.flow("f0", "s", "wait") + d.flow("f1", "wait", "e"))
    return d.definitions(d.process("p", body))


def test_a_conditional_event_evaluates_the_translated_condition_also_once_stored() -> None:
    package = parse_package([SourceFile("c.bpmn", conditional_wait("${ready == true}").encode())])

    [translated] = package.translated_conditions
    assert (translated.element_id, translated.original, translated.translated) == (
        "wait", "${ready == true}", "ready == True")
    [process] = package.processes
    assert process.spec.task_specs["wait"].event_definition.expression == "ready == True"
    assert "ready == True" in stored_spec(process) and "${ready" not in stored_spec(process)


def test_a_conditional_event_outside_the_subset_is_refused_quoting_it() -> None:
    [problem] = refusal(conditional_wait("${bean.isReady()}"))

    assert problem.element_id == "wait"
    assert problem.message.startswith("The condition of Intermediate event 'wait' (Wait until ready) at line 2 cannot "
                                      "run: the JUEL expression '${bean.isReady()}' uses 'bean.isReady()")


def test_a_call_to_an_unmarked_process_with_nothing_to_run_says_so() -> None:
    caller = (d.node("startEvent", "s") + d.node("callActivity", "c", "Check", calledElement="empty")
              + d.node("endEvent", "e") + d.flow("f0", "s", "c") + d.flow("f1", "c", "e"))
    xml = d.definitions(d.process("p", caller), '<bpmn:process id="empty"><bpmn:laneSet id="ls"/></bpmn:process>')

    [problem] = refusal(xml)

    assert problem.element_id == "c"
    assert "calls process 'empty', which has no start event or activity, so there is nothing to run" in problem.message


def test_a_condition_in_javascript_is_refused_even_when_it_reads_as_python() -> None:
    xml = routed("x > 5", "x <= 5").replace("<bpmn:conditionExpression ",
                                            '<bpmn:conditionExpression language="javascript" ')

    problems = refusal(xml)

    assert sorted(problem.element_id for problem in problems) == ["no", "yes"]
    assert all("is written in 'javascript', which CarePath does not run" in problem.message for problem in problems)


def test_a_juel_condition_marked_as_javascript_by_its_editor_is_translated() -> None:
    xml = routed("${approved}", "${!approved}").replace("<bpmn:conditionExpression ",
                                                        '<bpmn:conditionExpression language="text/javascript" ')

    package = parse_package([SourceFile("route.bpmn", xml.encode())])

    assert [c.translated for c in package.translated_conditions] == ["approved", "not approved"]
