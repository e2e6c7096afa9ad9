"""The shipped pathway 'sdoh-screening-referral' parses as Camunda, is fully drawn, and its DMN scores the
AHC HRSN screening by the published rules; the screening reader (engine/sdoh/screening.py) on its own.
The patients' stories over the API are in test_sdoh_screening_referral_scenarios.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnValidator
from SpiffWorkflow.camunda.parser import CamundaParser

from carepath.engine.errors import ValidationFailed
from carepath.engine.sdoh.screening import read_screening
from tests.support.bpmn_checks import assert_exclusive_gateways_have_conditions

PATHWAYS_DIR = Path(__file__).resolve().parents[2] / "bpmn"
BPMN_FILE = PATHWAYS_DIR / "sdoh-screening-referral.bpmn"
DMN_FILE = PATHWAYS_DIR / "sdoh-hrsn-scoring.dmn"
NS = {"bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL", "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI"}
NEGATIVE = {"71802-3": "LA31993-1", "96778-6": ["LA9-3"], "88122-7": "Never true", "88123-5": "never true",
            "93030-5": "No", "96779-4": "No", "95618-5": "Never", "95617-7": "Never", "95616-9": "Never",
            "95615-1": "Never"}


def parser() -> CamundaParser:
    found = CamundaParser(validator=BpmnValidator())
    found.add_bpmn_file(str(BPMN_FILE))
    found.add_dmn_file(str(DMN_FILE))
    return found


def test_the_diagram_parses_with_each_task_in_its_lane_and_everything_drawn() -> None:
    root = etree.parse(str(BPMN_FILE)).getroot()
    BpmnValidator().validate(root, str(BPMN_FILE))
    assert_exclusive_gateways_have_conditions(root)
    specs = parser().get_subprocess_specs("sdoh-screening-referral")
    inner = next(spec for spec in specs.values() if "choose_service" in spec.task_specs)
    assert inner.task_specs["choose_service"].lane == "Case Manager"
    assert inner.task_specs["follow_up_referral"].lane == "Community Health Worker"
    ids = {e.get("id") for e in root.iter(f"{{{NS['bpmn']}}}*") if e.get("id") and etree.QName(e).localname not in (
        "definitions", "process", "message", "correlationProperty", "laneSet", "collaboration",
        "BPMNDiagram", "BPMNPlane", "BPMNShape", "BPMNEdge", "BPMNLabel", "messageEventDefinition",
        "timerEventDefinition", "multiInstanceLoopCharacteristics")}
    drawn = {di.get("bpmnElement") for di in root.iterfind(".//bpmndi:BPMNShape", NS)}
    drawn |= {di.get("bpmnElement") for di in root.iterfind(".//bpmndi:BPMNEdge", NS)}
    assert ids - drawn == set()


def positive(answers: dict[str, Any]) -> list[str]:
    """The DMN's answer for a screening, run by SpiffWorkflow on the variables the reader gives."""
    engine = parser().get_engine("sdoh_hrsn_scoring", None)

    class Task:  # what DMNEngine reads of a task: its data and its workflow's script engine
        data = read_screening({**NEGATIVE, **answers}).variables
        workflow = type("W", (), {"script_engine": __import__(
            "SpiffWorkflow.bpmn.script_engine", fromlist=["PythonScriptEngine"]).PythonScriptEngine()})()

    return sorted(set(engine.result(Task()).get("positive_domain", [])))


@pytest.mark.parametrize(("answers", "domains"), [
    ({}, []),
    ({"88122-7": "Sometimes true"}, ["food"]),
    ({"88123-5": "LA28397-0"}, ["food"]),
    ({"71802-3": "I have a place to live today, but I am worried about losing it in the future"}, ["housing"]),
    ({"71802-3": "I do not have a steady place to live"}, ["housing"]),
    ({"96778-6": ["Mold"]}, ["housing"]),
    ({"93030-5": "YES"}, ["transportation"]),
    ({"96779-4": "Already shut off"}, ["utilities"]),
    ({"95618-5": 3, "95617-7": 3, "95616-9": 2, "95615-1": 2}, []),  # total 10: not above 10
    ({"95618-5": 3, "95617-7": 3, "95616-9": 3, "95615-1": 2}, ["safety"]),  # 11
])
def test_the_dmn_scores_each_domain_by_the_published_rules(answers: dict[str, Any], domains: list[str]) -> None:
    assert positive(answers) == domains


def test_the_reader_refuses_what_the_instrument_does_not_have_and_checks_the_total() -> None:
    for bad, named in (({"1234-5": "Yes"}, "'1234-5' is not a question"), ({"93030-5": "Sometimes"}, "93030-5"),
                       ({"96778-6": ["Mold", "None of the above"]}, "None of the above"),
                       ({"95614-4": 9}, "not the sum"), ({"95618-5": 6}, "95618-5")):
        with pytest.raises(ValidationFailed) as refused:
            read_screening({**NEGATIVE, **bad})
        assert named in str(refused.value.problems[0].message)
    read = read_screening({"95618-5": "Frequently", "95617-7": "fairly often", "95616-9": "LA10082-8",
                           "95615-1": 1})
    assert read.answers["95614-4"] == 13 and read.answers["95617-7"] == "LA16644-9"
    assert read.variables["hrsn_safety_total"] == 13 and read.variables["hrsn_food_worried"] is None
