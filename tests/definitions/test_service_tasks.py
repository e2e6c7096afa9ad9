"""Service tasks: a task for a topic waits for a worker in every editor's dialect, through save and restore;
anything else CarePath cannot run is refused with a located problem that says how to make it an external
task, or, where the deployment opts in, becomes an external task on a topic named after it, with a warning."""

from __future__ import annotations

import pytest

from carepath.engine.clock import ManualClock
from carepath.engine.definitions import SourceFile, parse_package
from carepath.engine.errors import DiagramInvalid
from carepath.engine.runtime.serializer import serializer_for
from carepath.engine.runtime.workflow import RunningWorkflow
from carepath.engine.usecases.deploy import stored_spec

from .builders import definitions, element, flow, line_of, process, source

ZEEBE = ' xmlns:zeebe="http://camunda.org/schema/zeebe/1.0"'
CAREPATH = ' xmlns:carepath="http://carepath.org/schema/bpmn/1.0"'


def one_service_task(task: str, namespaces: str = "") -> SourceFile:
    return source("p.bpmn", definitions(process(
        "Reminders", element("startEvent", "start"), task, element("userTask", "review", "Review"),
        element("endEvent", "end"), flow("f1", "start", "send"), flow("f2", "send", "review"),
        flow("f3", "review", "end")), namespaces=namespaces))


def restored(workflow: RunningWorkflow, family: str, text: str) -> RunningWorkflow:
    """A save/restore round trip of spec and state, as the server does between requests."""
    spec, subs = serializer_for(family).spec_from_json(text)
    return RunningWorkflow.restore(workflow.dump(), spec, subs, family, None)


CAMUNDA_7 = element("serviceTask", "send", "Send SMS", **{"camunda:type": "external", "camunda:topic": "send-sms"})
CAMUNDA_8 = element("serviceTask", "send", "Send SMS",
                    body='<bpmn:extensionElements><zeebe:taskDefinition type="send-sms"/></bpmn:extensionElements>')
OWN = element("serviceTask", "send", "Send SMS", **{"carepath:topic": "send-sms", "carepath:variables": "phone"})
SPIFF_OWN = element("serviceTask", "send", "Send SMS", **{"carepath:topic": "send-sms"},
                    body='<bpmn:extensionElements><spiffworkflow:preScript>x = 1</spiffworkflow:preScript>'
                         '</bpmn:extensionElements>')


@pytest.mark.parametrize(("task", "namespaces", "family"), [
    (CAMUNDA_7, "", "camunda"), (CAMUNDA_8, ZEEBE, "bpmn"), (OWN, CAREPATH, "bpmn"), (SPIFF_OWN, CAREPATH, "spiff")])
def test_a_task_for_a_topic_waits_for_its_worker_across_save_and_restore(task: str, namespaces: str,
                                                                         family: str) -> None:
    [parsed] = parse_package([one_service_task(task, namespaces)]).processes
    assert parsed.family == family
    text = stored_spec(parsed)
    spec, subs = serializer_for(family).spec_from_json(text)
    clock = ManualClock()
    workflow = RunningWorkflow.create(spec, subs, family, None, {"phone": "+1555"})
    workflow.run(clock)
    for _ in range(2):  # still waiting, however often it is saved and restored
        workflow = restored(workflow, family, text)
        [wait] = workflow.snapshot().external_tasks
        assert (wait.element_id, wait.topic) == ("send", "send-sms") and workflow.snapshot().open_tasks == []
    workflow.complete_external(wait.task_id, {"sent": True}, clock)
    workflow = restored(workflow, family, text)
    snapshot = workflow.snapshot()
    assert [t.name for t in snapshot.open_tasks] == ["Review"] and snapshot.data["sent"] is True


@pytest.mark.parametrize(("attributes", "written", "topic"), [
    ({"camunda:class": "org.example.SendSms"}, "camunda:class 'org.example.SendSms'", "org.example.SendSms"),
    ({"camunda:delegateExpression": "${smsSender}"}, "camunda:delegateExpression", "smsSender"),
    ({"camunda:expression": "#{sms.send(execution)}"}, "camunda:expression", "sms.send"),
])
def test_a_java_implementation_is_refused_with_how_to_make_it_an_external_task(
        attributes: dict[str, str], written: str, topic: str) -> None:
    file = one_service_task(element("serviceTask", "send", "Send SMS", **attributes))
    with pytest.raises(DiagramInvalid) as refused:
        parse_package([file])
    [problem] = refused.value.problems
    assert (problem.file, problem.element_id) == ("p.bpmn", "send")
    assert problem.line == line_of(file.content.decode(), 'id="send"')
    assert written in problem.message and "Implementation to 'External'" in problem.message
    assert "CAREPATH_UNKNOWN_SERVICE_TASKS=external" in problem.message and f"topic '{topic}'" in problem.message


def test_with_the_opt_in_it_becomes_an_external_task_on_a_topic_named_after_it() -> None:
    file = one_service_task(element("serviceTask", "send", "Send SMS", **{"camunda:class": "org.example.SendSms"}))
    package = parse_package([file], unknown_service_tasks="external")
    [warning] = [w for w in package.warnings if w.element_id == "send"]
    assert "topic 'org.example.SendSms'" in warning.message and "becomes an external task" in warning.message
    workflow = RunningWorkflow.create(package.processes[0].spec, {}, "camunda", None, {})
    workflow.run(ManualClock())
    assert [w.topic for w in workflow.snapshot().external_tasks] == ["org.example.SendSms"]


@pytest.mark.parametrize(("task", "namespaces", "words"), [
    (element("serviceTask", "send", "Send SMS", body='<bpmn:extensionElements><camunda:connector><camunda:connectorId>'
             'mail-send</camunda:connectorId></camunda:connector></bpmn:extensionElements>'), "",
     "the Camunda connector 'mail-send'"),
    (element("serviceTask", "send", "Send SMS", body='<bpmn:extensionElements><zeebe:taskDefinition '
             'type="io.camunda:sendgrid:1"/></bpmn:extensionElements>'), ZEEBE,
     "the Camunda 8 connector 'io.camunda:sendgrid:1'"),
    (element("serviceTask", "send", "Send SMS", body='<bpmn:extensionElements><spiffworkflow:serviceTaskOperator '
             'id="http/GetRequest" resultVariable="r"/></bpmn:extensionElements>'), "",
     "the SpiffWorkflow service operator 'http/GetRequest'"),
    (element("serviceTask", "send", "Send SMS", **{"camunda:type": "external"}), "", "without a topic"),
    (element("serviceTask", "send", "Send SMS", **{"camunda:type": "external", "camunda:topic": "${topic}"}), "",
     "chooses its topic with the expression"),
])
def test_unknown_connectors_and_unusable_topics_are_refused(task: str, namespaces: str, words: str) -> None:
    with pytest.raises(DiagramInvalid) as refused:
        parse_package([one_service_task(task, namespaces)])
    assert any(words in problem.message and problem.element_id == "send" for problem in refused.value.problems), \
        refused.value.problems


def test_a_service_task_that_names_nothing_warns_that_it_does_nothing() -> None:
    package = parse_package([one_service_task(element("serviceTask", "send", "Send SMS"))])
    [warning] = [w for w in package.warnings if w.element_id == "send"]
    assert "without doing anything" in warning.message and "external task" in warning.message


def test_a_camunda_8_job_type_is_read_not_reported_as_ignored() -> None:
    package = parse_package([one_service_task(CAMUNDA_8, ZEEBE)])
    assert not [w for w in package.warnings if "Camunda 8" in w.message]
