"""The shipped pathway 'transition-of-care' and its decision are schema-valid, fully drawn, and parse
with SpiffWorkflow's CamundaParser (independent of the product's importer)."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree
from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnValidator
from SpiffWorkflow.camunda.parser import CamundaParser

PATHWAYS_DIR = Path(__file__).resolve().parents[2] / "bpmn"
BPMN_FILE = PATHWAYS_DIR / "transition-of-care.bpmn"
DMN_FILE = PATHWAYS_DIR / "tcm-complexity.dmn"
NS = {"bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL", "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
      "camunda": "http://camunda.org/schema/1.0/bpmn"}
NOT_DRAWN = {"documentation", "extensionElements", "laneSet", "incoming", "outgoing", "script",
             "conditionExpression", "timerEventDefinition", "messageEventDefinition", "terminateEventDefinition"}


def _root() -> etree._Element:
    return etree.parse(str(BPMN_FILE)).getroot()


def test_bpmn_is_valid_against_the_omg_schema_and_parses_with_its_decision() -> None:
    BpmnValidator().validate(_root(), str(BPMN_FILE))
    parser = CamundaParser(validator=BpmnValidator())
    parser.add_bpmn_file(str(BPMN_FILE))
    parser.add_dmn_file(str(DMN_FILE))
    spec = parser.get_spec("transition-of-care")
    assert spec.task_specs["contact_reminder_timer"].cancel_activity is False
    assert spec.task_specs["contact_escalation_timer"].cancel_activity is False
    assert spec.task_specs["contact_deadline_timer"].cancel_activity is True


def test_every_element_including_those_inside_the_subprocess_is_drawn() -> None:
    root = _root()
    process = root.find("bpmn:process[@id='transition-of-care']", NS)
    assert process is not None and process.get("isExecutable") == "true"
    drawable = {e.get("id") for e in process.iter() if isinstance(e.tag, str) and e is not process
                and etree.QName(e).localname not in NOT_DRAWN and e.get("id")
                and etree.QName(e).namespace == NS["bpmn"] and e.getparent().tag != f"{{{NS['bpmn']}}}laneSet"}
    drawable |= {e.get("id") for e in root.iterfind(".//bpmn:participant", NS)}
    drawable |= {e.get("id") for e in root.iterfind(".//bpmn:lane", NS)}
    drawn = {di.get("bpmnElement") for di in root.iterfind(".//bpmndi:BPMNShape", NS)}
    drawn |= {di.get("bpmnElement") for di in root.iterfind(".//bpmndi:BPMNEdge", NS)}
    assert "contact_patient" in drawable and "lane_nurse" in drawable
    assert drawable - drawn == set()


def test_every_human_task_has_a_due_date_a_group_and_a_form() -> None:
    tasks = list(_root().iterfind(".//bpmn:userTask", NS))
    assert len(tasks) == 10
    for task in tasks:
        assert task.get(f"{{{NS['camunda']}}}dueDate"), task.get("id")
        assert task.get(f"{{{NS['camunda']}}}candidateGroups"), task.get("id")
        assert task.find(".//camunda:formField", NS) is not None, task.get("id")


@pytest.mark.parametrize(("mdm", "lace", "complexity", "code", "window"), [
    ("high", 0, "high", "99496", "P7D"), ("moderate", 12, "high", "99496", "P7D"),
    ("moderate", 9, "moderate", "99495", "P14D"), ("low", 3, "moderate", "99495", "P14D")])
def test_the_decision_table(mdm: str, lace: int, complexity: str, code: str, window: str) -> None:
    from SpiffWorkflow.bpmn import BpmnWorkflow
    from SpiffWorkflow.util.task import TaskState

    parser = CamundaParser()
    parser.add_bpmn_file(str(BPMN_FILE))
    parser.add_dmn_file(str(DMN_FILE))
    decision = parser.get_spec("transition-of-care").task_specs["decide_tcm_complexity"]
    workflow = BpmnWorkflow(parser.get_spec("transition-of-care"))
    for ready in workflow.get_tasks(state=TaskState.READY):  # every input given: no intake task
        ready.data.update({"intake_fields": [], "discharge_date": "2026-03-02", "discharge_setting": "inpatient"})
    for step in ("intake_gateway", "intake_merge", "prepare_episode"):
        workflow.run_next(halt_on_manual=True)
        while not any(t.task_spec.bpmn_id == step for t in workflow.get_tasks(state=TaskState.COMPLETED)):
            workflow.run_next(halt_on_manual=True)
    [task] = [t for t in workflow.get_tasks(state=TaskState.READY) if t.task_spec is decision]
    task.data.update({"mdm_level": mdm, "lace_score": lace})
    decision._run_hook(task)
    assert (task.data["tcm_complexity"], task.data["tcm_cpt_code"], task.data["face_to_face_window"]) == (
        complexity, code, window)
