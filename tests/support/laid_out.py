"""Small BPMN diagrams with a layout (BPMN DI), so that they can be drawn: a chain of elements in one lane,
left to right. Names are escaped here; what a test puts in them reaches the importer as text."""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
SIZES = {"startEvent": (36, 36), "endEvent": (36, 36), "exclusiveGateway": (50, 50)}


def chain(pid: str, steps: list[tuple[str, str, str]], *, lane: str | None = "Care Coordinator",
          name: str | None = None, extra_flows: list[tuple[str, str, str]] | None = None,
          task_attrs: dict[str, dict[str, str]] | None = None) -> str:
    """`steps`: (tag, id, name) in order, joined by flows f0, f1, ...; `extra_flows`: (id, source, target)."""
    flows = [(f"f{i}", a[1], b[1]) for i, (a, b) in enumerate(zip(steps, steps[1:], strict=False))]
    flows += extra_flows or []
    attrs = task_attrs or {}
    nodes = "".join(
        f"<bpmn:{tag} id={quoteattr(nid)}{' name=' + quoteattr(label) if label else ''}"
        + "".join(f" {k}={quoteattr(v)}" for k, v in attrs.get(nid, {}).items()) + "/>\n"
        for tag, nid, label in steps)
    edges = "".join(f"<bpmn:sequenceFlow id={quoteattr(fid)} sourceRef={quoteattr(s)} targetRef={quoteattr(t)}/>"
                    for fid, s, t in flows)
    lanes = ""
    if lane:
        refs = "".join(f"<bpmn:flowNodeRef>{escape(nid)}</bpmn:flowNodeRef>" for _, nid, _ in steps)
        lanes = (f'<bpmn:laneSet id="LaneSet_1"><bpmn:lane id="Lane_1" name={quoteattr(lane)}>{refs}</bpmn:lane>'
                 "</bpmn:laneSet>")
    boxes = {}
    shapes = ""
    for i, (tag, nid, _) in enumerate(steps):
        w, h = SIZES.get(tag, (100, 80))
        x, y = 200 + 160 * i, 140 - h / 2
        boxes[nid] = (x, y, w, h)
        shapes += (f'<bpmndi:BPMNShape id="{escape(nid)}_di" bpmnElement={quoteattr(nid)}>'
                   f'<dc:Bounds x="{x}" y="{y}" width="{w}" height="{h}"/></bpmndi:BPMNShape>')
    if lane:
        shapes = (f'<bpmndi:BPMNShape id="Lane_1_di" bpmnElement="Lane_1" isHorizontal="true">'
                  f'<dc:Bounds x="150" y="60" width="{160 * len(steps) + 100}" height="160"/></bpmndi:BPMNShape>'
                  + shapes)
    for fid, s, t in flows:
        if s in boxes and t in boxes:
            (sx, sy, sw, sh), (tx, ty, _, th) = boxes[s], boxes[t]
            shapes += (f'<bpmndi:BPMNEdge id="{escape(fid)}_di" bpmnElement={quoteattr(fid)}>'
                       f'<di:waypoint x="{sx + sw}" y="{sy + sh / 2}"/><di:waypoint x="{tx}" y="{ty + th / 2}"/>'
                       "</bpmndi:BPMNEdge>")
    label = f" name={quoteattr(name)}" if name else ""
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<bpmn:definitions xmlns:bpmn="{BPMN_NS}" xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" '
            'xmlns:dc="http://www.omg.org/spec/DD/20100524/DC" xmlns:di="http://www.omg.org/spec/DD/20100524/DI" '
            f'xmlns:camunda="{CAMUNDA_NS}" id="Defs" targetNamespace="http://carepath.test">\n'
            f'<bpmn:process id={quoteattr(pid)} isExecutable="true"{label}>{lanes}\n{nodes}\n{edges}\n</bpmn:process>\n'
            f'<bpmndi:BPMNDiagram id="Diagram_1"><bpmndi:BPMNPlane id="Plane_1" bpmnElement={quoteattr(pid)}>'
            f"{shapes}</bpmndi:BPMNPlane></bpmndi:BPMNDiagram>\n</bpmn:definitions>\n")


def follow_up(pid: str = "follow-up", *, task_name: str = "Call patient", name: str = "Follow-up") -> str:
    """start -> "Call patient" -> end, in the lane Care Coordinator."""
    return chain(pid, [("startEvent", "start", ""), ("userTask", "call", task_name), ("endEvent", "end", "")],
                 name=name)
