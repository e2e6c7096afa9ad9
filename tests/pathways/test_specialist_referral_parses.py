"""The shipped pathway 'specialist-referral' is schema-valid, fully drawn and wired as its documentation says.

Read straight from bpmn/ with lxml and SpiffWorkflow's CamundaParser, so a broken file fails here with
the parser's own message; the patient stories over the API are in test_specialist_referral_scenarios.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnValidator
from SpiffWorkflow.camunda.parser import CamundaParser

from tests.support.bpmn_checks import assert_exclusive_gateways_have_conditions

PATHWAYS_DIR = Path(__file__).resolve().parents[2] / "bpmn"
BPMN_FILE = PATHWAYS_DIR / "specialist-referral.bpmn"
SIDECAR = PATHWAYS_DIR / "specialist-referral.pathway.json"
PROCESS_ID = "specialist-referral"
CAMUNDA = "http://camunda.org/schema/1.0/bpmn"
NS = {"bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL", "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
      "dc": "http://www.omg.org/spec/DD/20100524/DC", "camunda": CAMUNDA}
DI = "http://www.omg.org/spec/DD/20100524/DI"
NOT_DRAWN = {"documentation", "extensionElements", "laneSet"}


def root() -> Any:
    return etree.parse(str(BPMN_FILE)).getroot()


def process() -> Any:
    found = root().find(f"bpmn:process[@id='{PROCESS_ID}']", NS)
    assert found is not None
    return found


def bounds() -> dict[str, tuple[float, float, float, float]]:
    out = {}
    for shape in root().iterfind(".//bpmndi:BPMNShape", NS):
        box = shape.find("dc:Bounds", NS)
        out[shape.get("bpmnElement")] = tuple(float(box.get(k)) for k in ("x", "y", "width", "height"))
    return out


def local(element: Any) -> str:
    return str(etree.QName(element).localname)


def test_bpmn_is_valid_against_the_omg_schema_and_parses_as_camunda() -> None:
    BpmnValidator().validate(root(), str(BPMN_FILE))
    parser = CamundaParser(validator=BpmnValidator())
    parser.add_bpmn_file(str(BPMN_FILE))
    spec = parser.get_spec(PROCESS_ID)
    assert spec.task_specs["record_appointment"].lane == "Care Coordinator"
    assert spec.task_specs["escalate_scheduling"].lane == "Care Team Supervisor"
    assert spec.task_specs["review_specialist_report"].lane == "Primary Care Physician"


def test_every_element_is_drawn_so_the_diagram_opens_tidy_in_bpmn_io() -> None:
    doc = root()
    assert process().get("isExecutable") == "true"
    drawable = {e.get("id") for e in process() if local(e) not in NOT_DRAWN}
    drawable |= {e.get("id") for e in doc.iterfind(".//bpmn:lane", NS)}
    drawable |= {e.get("id") for e in doc.iterfind(".//bpmn:participant", NS)}
    drawn = {di.get("bpmnElement") for di in doc.iterfind(".//bpmndi:BPMNShape", NS)}
    drawn |= {di.get("bpmnElement") for di in doc.iterfind(".//bpmndi:BPMNEdge", NS)}
    assert drawable - drawn == set()
    assert drawn - drawable == set()


def test_every_node_is_drawn_inside_its_lane_and_no_two_nodes_overlap() -> None:
    boxes = bounds()
    lane_of = {ref.text: lane.get("id") for lane in root().iterfind(".//bpmn:lane", NS)
               for ref in lane.iterfind("bpmn:flowNodeRef", NS)}
    nodes = [e.get("id") for e in process() if local(e) not in NOT_DRAWN | {"sequenceFlow"}]
    assert sorted(lane_of) == sorted(nodes)
    for node in nodes:
        x, y, w, h = boxes[node]
        lx, ly, lw, lh = boxes[lane_of[node]]
        assert lx <= x and x + w <= lx + lw and ly <= y and y + h <= ly + lh, f"{node} is outside its lane"
    attached = {e.get("id"): e.get("attachedToRef") for e in process().iterfind("bpmn:boundaryEvent", NS)}
    for i, a in enumerate(nodes):
        for b in nodes[i + 1:]:
            if attached.get(a) == b or attached.get(b) == a:
                continue
            ax, ay, aw, ah = boxes[a]
            bx, by, bw, bh = boxes[b]
            assert ax + aw <= bx or bx + bw <= ax or ay + ah <= by or by + bh <= ay, f"{a} overlaps {b}"


def test_every_conditional_flow_out_of_an_exclusive_gateway_has_a_condition() -> None:
    assert_exclusive_gateways_have_conditions(root())


def test_every_human_task_has_a_due_date_and_a_form_requiring_what_the_gateways_read() -> None:
    conditions = " ".join(c.text for c in root().iterfind(".//bpmn:conditionExpression", NS))
    for task in process().iterfind("bpmn:userTask", NS):
        assert task.get(f"{{{CAMUNDA}}}dueDate"), f"{task.get('id')} has no due date"
        fields = task.findall(".//camunda:formField", NS)
        assert fields, f"{task.get('id')} has no form"
        for field in fields:
            required = field.find(".//camunda:constraint[@name='required']", NS) is not None
            if re.search(rf"\b{field.get('id')}\b", conditions):
                assert required, f"{task.get('id')}.{field.get('id')} is read by a gateway but not required"


def test_timers_remind_and_escalate_with_the_pathway_parameters() -> None:
    timers = {}
    for event in process().iterfind("bpmn:boundaryEvent", NS):
        definition = event.find("bpmn:timerEventDefinition", NS)
        if definition is not None:
            [value] = list(definition)
            timers[event.get("id")] = (event.get("attachedToRef"), event.get("cancelActivity", "true"),
                                       local(value), value.text)
    assert timers == {
        "schedule_reminder_timer": ("record_appointment", "false", "timeDuration", "schedule_within"),
        "schedule_escalation_timer": ("record_appointment", "true", "timeDuration", "escalate_within"),
        "report_chase_timer": ("obtain_report", "false", "timeDate",
                               'f"{report_chase_within} after visit_date end of day"'),
        "report_deadline_timer": ("obtain_report", "true", "timeDate",
                                  'f"{loop_closure_within} after visit_date end of day"'),
    }


def test_messages_close_the_coordinator_tasks_they_stand_in_for() -> None:
    doc = root()
    names = {m.get("id"): m.get("name") for m in doc.iterfind("bpmn:message", NS)}
    catches = {}
    for event in process().iterfind("bpmn:boundaryEvent", NS):
        definition = event.find("bpmn:messageEventDefinition", NS)
        if definition is not None:
            assert event.get("cancelActivity", "true") == "true"
            catches[names[definition.get("messageRef")]] = (event.get("id"), event.get("attachedToRef"))
    assert catches == {"appointment_scheduled": ("appointment_scheduled_event", "record_appointment"),
                       "visit_outcome": ("visit_outcome_event", "record_visit_outcome"),
                       "consult_report_received": ("consult_report_event", "obtain_report")}
    scripts = " ".join(s.text for s in doc.iterfind(".//bpmn:script", NS))
    for event_id, _ in catches.values():  # Camunda family: the payload lands in <catching element>_Response
        assert f"{event_id}_Response" in scripts


def test_the_episode_ends_close_whatever_reminders_are_still_open() -> None:
    ends = {e.get("id"): e.find("bpmn:terminateEventDefinition", NS) is not None
            for e in process().iterfind("bpmn:endEvent", NS)}
    assert ends == {"referral_loop_closed": True, "referral_not_completed": True,
                    "schedule_reminder_handled": False, "report_reminder_handled": False}


def test_the_variables_the_measures_read_are_set_by_the_pathway() -> None:
    sidecar = json.loads(SIDECAR.read_text())
    scripts = "\n".join(s.text for s in root().iterfind(".//bpmn:script", NS))
    assigned = set(re.findall(r"^\s*([A-Za-z_]\w*)\s*=", scripts, re.MULTILINE))
    assigned |= {f.get("id") for f in root().iterfind(".//camunda:formField", NS)}
    assigned |= set(sidecar["example_data"])
    task_ids = {t.get("id") for t in process().iterfind("bpmn:userTask", NS)}
    for measure in sidecar["measures"]:
        assert measure["clock_starts"]["variable"] in assigned, measure["id"]
        met_by = measure["met_by"]
        assert met_by.get("variable", "") in assigned or met_by.get("task") in task_ids, measure["id"]
    assert {"visit_date", "report_received_date", "attended"} <= set(re.findall(r"^([a-z_]+) =", scripts, re.M))


def test_every_edge_is_orthogonal_runs_between_its_nodes_and_crosses_no_other_node() -> None:
    doc, boxes = root(), bounds()
    flows = {f.get("id"): (f.get("sourceRef"), f.get("targetRef")) for f in doc.iterfind(".//bpmn:sequenceFlow", NS)}
    attached = {e.get("id"): e.get("attachedToRef") for e in doc.iterfind(".//bpmn:boundaryEvent", NS)}
    nodes = {e.get("id") for e in process() if local(e) not in NOT_DRAWN | {"sequenceFlow"}}
    for edge in doc.iterfind(".//bpmndi:BPMNEdge", NS):
        flow = edge.get("bpmnElement")
        source, target = flows[flow]
        points = [(float(w.get("x")), float(w.get("y"))) for w in edge.iterfind(f"{{{DI}}}waypoint")]
        for node, (px, py) in ((source, points[0]), (target, points[-1])):
            x, y, w, h = boxes[node]
            assert x - 1 <= px <= x + w + 1 and y - 1 <= py <= y + h + 1, f"{flow} does not touch {node}"
        for (x1, y1), (x2, y2) in zip(points, points[1:], strict=False):
            assert x1 == x2 or y1 == y2, f"{flow} has a diagonal segment"
            for node in nodes - {source, target, attached.get(source)}:
                x, y, w, h = boxes[node]
                crosses = (max(x1, x2) > x + 1 and min(x1, x2) < x + w - 1
                           and max(y1, y2) > y + 1 and min(y1, y2) < y + h - 1)
                assert not crosses, f"{flow} runs through {node}"


def test_no_label_covers_a_node_or_another_label() -> None:
    boxes = bounds()
    nodes = {e.get("id") for e in process() if local(e) not in NOT_DRAWN | {"sequenceFlow"}}
    labels = {}
    for di in root().iter(f"{{{NS['bpmndi']}}}BPMNShape", f"{{{NS['bpmndi']}}}BPMNEdge"):
        box = di.find("bpmndi:BPMNLabel/dc:Bounds", NS)
        if box is not None:
            labels[di.get("bpmnElement")] = tuple(float(box.get(k)) for k in ("x", "y", "width", "height"))

    def overlap(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
        return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]

    for owner, label in labels.items():
        assert not [n for n in nodes - {owner} if overlap(label, boxes[n])], f"the label of {owner} covers a node"
        assert not [o for o in labels if o != owner and overlap(label, labels[o])], f"the label of {owner} overlaps"
