"""A BPMN diagram as a self-contained SVG, drawn from the diagram's own layout (BPMN DI).

No JavaScript and no external resources, so the picture can be embedded in documentation and in
exported reports. Every drawn element carries its BPMN element id (`data-element-id`) and a class for
its kind, so it can be styled and tested; elements can be highlighted by id (e.g. where an episode
is now, what it passed, what failed). The XML is read with the importer's safe loader.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from xml.sax.saxutils import escape

from .definitions._documents import Element, local_name
from .definitions._model import ImportLimits, SourceFile
from .definitions._safe_xml import load_documents
from .errors import DiagramInvalid

BPMNDI = "http://www.omg.org/spec/BPMN/20100524/DI"
DC = "http://www.omg.org/spec/DD/20100524/DC"
DI = "http://www.omg.org/spec/DD/20100524/DI"
BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"

_EVENTS = {"startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent"}
_GATEWAYS = {"exclusiveGateway", "parallelGateway", "inclusiveGateway", "eventBasedGateway", "complexGateway"}
_GATEWAY_MARK = {"exclusiveGateway": "×", "parallelGateway": "+", "inclusiveGateway": "○", "eventBasedGateway": "◇",
                 "complexGateway": "*"}
_EVENT_MARK = {"errorEventDefinition": "⚡",
               "escalationEventDefinition": "▲", "signalEventDefinition": "△", "conditionalEventDefinition": "≡",
               "terminateEventDefinition": "●", "cancelEventDefinition": "✕", "compensateEventDefinition": "«"}
_SUBPROCESSES = {"subProcess", "transaction", "adHocSubProcess"}
_TASK_MARK = {"scriptTask": "{}", "businessRuleTask": "▦", "serviceTask": "⚙", "manualTask": "✋",
              "callActivity": "⊞"}
STYLE = """
.lane, .pool { fill: none; stroke: #555; stroke-width: 1 }
.shape { fill: #fff; stroke: #222; stroke-width: 1.5 }
.event.endEvent .shape { stroke-width: 3.5 }
.event.boundaryEvent .shape, .event.intermediateCatchEvent .shape, .event.intermediateThrowEvent .shape
  { stroke-width: 1.5 }
.inner { fill: none; stroke: #222; stroke-width: 1 }
.edge { fill: none; stroke: #222; stroke-width: 1.5; marker-end: url(#arrow) }
.edge.messageFlow { stroke-dasharray: 6 4 }
.edge.association { stroke-dasharray: 2 3; marker-end: none }
text { font-family: Arial, Helvetica, sans-serif; font-size: 12px; fill: #222 }
.mark { font-size: 13px }
.highlight-current .shape { fill: #fff3c4; stroke: #c58a00; stroke-width: 3 }
.highlight-done .shape { fill: #e3f4e3; stroke: #2e7d32 }
.highlight-failed .shape { fill: #fde0e0; stroke: #c62828; stroke-width: 3 }
.highlight-late .shape { stroke: #c62828; stroke-dasharray: 5 3 }
.highlight-fired .shape { fill: #fde0e0 }
.edge.highlight-done { stroke: #2e7d32; stroke-width: 2.5 }
"""


# External labels without bounds in the layout, placed as bpmn.io does: 90 px wide at its 11 px font,
# so 98 px at ours (12 px, about 7 px a character); a flow's label 6 px clear of its middle segment.
LABEL_WIDTH = 98
CHAR_WIDTH = 7
LINE_HEIGHT = 14
FLOW_LABEL_OFFSET = 6


@dataclass(frozen=True)
class _Box:
    x: float
    y: float
    w: float
    h: float


def _bounds_box(bounds: Element | None) -> _Box | None:
    """A `dc:Bounds` as a box; None when missing, unreadable or not finite."""
    if bounds is None:
        return None
    try:
        box = _Box(*(float(bounds.get(a) or 0) for a in ("x", "y", "width", "height")))
    except ValueError:
        return None
    return box if all(math.isfinite(v) for v in (box.x, box.y, box.w, box.h)) else None


def render_svg(files: Iterable[SourceFile], *, highlights: Mapping[str, str] | None = None,
               title: str | None = None, transitions: Iterable[tuple[str, str]] = ()) -> str:
    """The first diagram (BPMN plane) of the first .bpmn file as SVG. `highlights` maps element ids to
    a highlight name (`current`, `done`, `failed`, `late`, `fired`), drawn as the class
    `highlight-<name>`; `transitions` are the (source, target) element pairs an instance actually moved
    along (RunningWorkflow.traversed_transitions), and the sequence flow of each is drawn as taken.
    Raises DiagramInvalid when the XML is unsafe or has no layout."""
    root = _diagram_root(files)
    plane = next(root.iter(f"{{{BPMNDI}}}BPMNPlane"), None)
    if plane is None:
        raise DiagramInvalid("The diagram cannot be drawn: it has no layout (BPMN DI). Open and save it in a "
                             "modeler such as bpmn.io or Camunda Modeler to add one.")
    elements = {e.get("id"): e for e in root.iter() if isinstance(e.tag, str) and e.get("id")}
    marked = dict(highlights or {})
    for flow_id in taken_flows(root, elements, transitions):
        marked.setdefault(flow_id, "done")
    return _Drawing(elements, marked).draw(plane, title)


DIAGRAM_SUFFIXES = (".bpmn", ".bpmn20.xml", ".xml")


def _diagram_root(files: Iterable[SourceFile]) -> Element:
    sources = [f for f in files if f.name.lower().endswith(DIAGRAM_SUFFIXES)]
    if not sources:
        raise DiagramInvalid("The diagram cannot be drawn: only BPMN diagrams (.bpmn) are drawn, and a DMN "
                             "file has no diagram to draw.")
    documents, problems = load_documents(sources[:1], ImportLimits())
    if problems or not documents:
        raise DiagramInvalid("The diagram cannot be drawn: the file is not safe, well-formed BPMN.", problems)
    return documents[0].root


def unknown_elements(files: Iterable[SourceFile], ids: Iterable[str]) -> list[str]:
    """The ids among `ids` that no element of the diagram has (a typo in what to highlight)."""
    root = _diagram_root(files)
    known = {e.get("id") for e in root.iter() if isinstance(e.tag, str)}
    return sorted(set(ids) - known)


_CHOOSING = {"exclusiveGateway", "inclusiveGateway", "complexGateway", "eventBasedGateway"}


def taken_flows(root: Element, elements: Mapping[str | None, Element],
                transitions: Iterable[tuple[str, str]]) -> list[str]:
    """The ids of the sequence flows behind `transitions` (source, target pairs). A pair joined by one
    flow is that flow. Two or more flows between the same pair are ambiguous, as the engine records
    which element was entered from which, not by which flow: from an element that sends a token down
    every outgoing flow (a task, a parallel gateway) all of them were taken; from a gateway that picks
    one, the first conditional flow in document order is drawn (SpiffWorkflow tests the conditions
    towards one target in that order, and the default flow only when none holds), the default flow
    only when it is the only one."""
    between: dict[tuple[str, str], list[Element]] = {}
    for flow in root.iter(f"{{{BPMN}}}sequenceFlow"):
        source, target = flow.get("sourceRef"), flow.get("targetRef")
        if source and target and flow.get("id"):
            between.setdefault((source, target), []).append(flow)
    taken: list[str] = []
    for pair in dict.fromkeys(transitions):
        flows = between.get(pair, [])
        source = elements.get(pair[0])
        if len(flows) > 1 and source is not None and local_name(source) in _CHOOSING:
            default = source.get("default")
            conditional = [f for f in flows if f.get("id") != default
                           and f.find(f"{{{BPMN}}}conditionExpression") is not None]
            flows = (conditional or flows)[:1]
        taken.extend(str(f.get("id")) for f in flows)
    return taken


class _Drawing:
    def __init__(self, elements: dict[str | None, Element], highlights: Mapping[str, str]) -> None:
        self.elements = elements
        self.highlights = highlights
        self.parts: list[str] = []
        self.bounds: list[_Box] = []

    def draw(self, plane: Element, title: str | None) -> str:
        shapes = [s for s in plane if local_name(s) == "BPMNShape"]
        # Pools and lanes first (underneath), then edges, then flow nodes on top.
        containers = [s for s in shapes if self._kind(s) in ("participant", "lane")]
        # Expanded subprocesses go under the flows, or their white box would hide the flows inside.
        expanded = [s for s in shapes if s not in containers and self._kind(s) in _SUBPROCESSES
                    and s.get("isExpanded") != "false" and (self._box(s, count=False) or _Box(0, 0, 0, 0)).w > 150]
        nodes = [s for s in shapes if s not in containers and s not in expanded]
        for shape in containers:
            self._container(shape)
        for shape in expanded:
            self._node(shape)
        for edge in (e for e in plane if local_name(e) == "BPMNEdge"):
            self._edge(edge)
        for shape in sorted(nodes, key=lambda s: self._kind(s) == "boundaryEvent"):
            self._node(shape)
        if not self.bounds:
            raise DiagramInvalid("The diagram cannot be drawn: its layout has no shapes.")
        left = min(b.x for b in self.bounds) - 20
        top = min(b.y for b in self.bounds) - 20
        right = max(b.x + b.w for b in self.bounds) + 20
        bottom = max(b.y + b.h for b in self.bounds) + 20
        width, height = right - left, bottom - top
        head = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="{_n(left)} {_n(top)} {_n(width)} {_n(height)}" '
                f'width="{_n(width)}" height="{_n(height)}" role="img">')
        label = f"<title>{escape(title)}</title>" if title else ""
        defs = ('<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" '
                'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#222"/></marker>'
                f"<style>{STYLE}</style></defs>")
        return head + label + defs + "".join(self.parts) + "</svg>\n"

    def _kind(self, di: Element) -> str:
        element = self.elements.get(di.get("bpmnElement"))
        return local_name(element) if element is not None else "unknown"

    def _group(self, di: Element, kind: str, extra: str = "") -> tuple[str, str]:
        element_id = di.get("bpmnElement") or ""
        highlight = self.highlights.get(element_id)
        classes = " ".join(c for c in (extra, kind, f"highlight-{highlight}" if highlight else "") if c)
        return f'<g class="{escape(classes)}" data-element-id="{escape(element_id, {chr(34): "&quot;"})}">', "</g>"

    def _box(self, di: Element, *, count: bool = True) -> _Box | None:
        box = _bounds_box(di.find(f"{{{DC}}}Bounds"))
        if box is None:
            return None
        if count:
            self.bounds.append(box)
        return box

    def _name(self, di: Element) -> str:
        element = self.elements.get(di.get("bpmnElement"))
        return " ".join((element.get("name") or "").split()) if element is not None else ""

    def _container(self, di: Element) -> None:
        box = self._box(di)
        if box is None:
            return
        kind = self._kind(di)
        start, end = self._group(di, kind, "pool" if kind == "participant" else "lane")
        label = self._name(di)
        cx, cy = box.x + 15, box.y + box.h / 2
        text = (f'<text x="{_n(cx)}" y="{_n(cy)}" text-anchor="middle" transform="rotate(-90 {_n(cx)} {_n(cy)})">'
                f"{escape(label)}</text>") if label else ""
        self.parts.append(f'{start}<rect class="{"pool" if kind == "participant" else "lane"}" x="{_n(box.x)}" '
                          f'y="{_n(box.y)}" width="{_n(box.w)}" height="{_n(box.h)}"/>{text}{end}')

    def _edge(self, di: Element) -> None:
        points = []
        for waypoint in di.findall(f"{{{DI}}}waypoint"):
            try:
                point = (float(waypoint.get("x") or 0), float(waypoint.get("y") or 0))
            except ValueError:
                continue
            if math.isfinite(point[0]) and math.isfinite(point[1]):
                points.append(point)
        if len(points) < 2:
            return
        for x, y in points:
            self.bounds.append(_Box(x, y, 0, 0))
        kind = self._kind(di)
        start, end = self._group(di, kind, "flow")
        path = " ".join(f"{_n(x)},{_n(y)}" for x, y in points)
        label = self._label(di, self._name(di), along=points)
        self.parts.append(f'{start}<polyline class="edge {kind}" points="{path}"/>{label}{end}')

    def _label(self, di: Element, text: str, *, under: _Box | None = None,
               along: list[tuple[float, float]] | None = None) -> str:
        """An external label (events, gateways, data objects, flows): in its BPMNLabel bounds when the
        layout has them; otherwise where bpmn.io puts it: centred just under the shape (`under`), or
        beside the middle of the flow's waypoints (`along`), wrapped to bpmn.io's label width."""
        if not text:
            return ""
        box = self._label_bounds(di)
        if box is not None:
            self.bounds.append(box)
            return _wrapped(text, box.x + box.w / 2, box.y + 11, max(box.w, 60))
        lines = _lines(text, LABEL_WIDTH)
        width, height = max(len(line) for line in lines) * CHAR_WIDTH, LINE_HEIGHT * len(lines)
        if under is not None:
            cx, top = under.x + under.w / 2, under.y + under.h + 2
            self.bounds.append(_Box(cx - width / 2, top, width, height))
            return _text(lines, cx, top + 11)
        if not along:
            return ""
        (x1, y1), (x2, y2) = _middle_segment(along)
        mx, my = (x1 + x2) / 2, (y1 + y2) / 2
        if abs(y2 - y1) > abs(x2 - x1):  # a vertical segment: the label to its right, centred on the middle
            first = my + 4 - (len(lines) - 1) * LINE_HEIGHT / 2
            self.bounds.append(_Box(mx + FLOW_LABEL_OFFSET, first - 11, width, height))
            return _text(lines, mx + FLOW_LABEL_OFFSET, first, anchor="start")
        first = my - 6 - (len(lines) - 1) * LINE_HEIGHT  # otherwise above it, the last line just clear
        self.bounds.append(_Box(mx - width / 2, first - 11, width, height))
        return _text(lines, mx, first)

    def _label_bounds(self, di: Element) -> _Box | None:
        label = di.find(f"{{{BPMNDI}}}BPMNLabel")
        return _bounds_box(label.find(f"{{{DC}}}Bounds") if label is not None else None)

    def _node(self, di: Element) -> None:
        box = self._box(di)
        if box is None:
            return
        kind = self._kind(di)
        element = self.elements.get(di.get("bpmnElement"))
        name = self._name(di)
        if kind in _EVENTS:
            body = self._event(box, element, kind) + self._label(di, name, under=box)
            family = "event"
        elif kind in _GATEWAYS:
            cx, cy = box.x + box.w / 2, box.y + box.h / 2
            body = (f'<polygon class="shape" points="{_n(cx)},{_n(box.y)} {_n(box.x + box.w)},{_n(cy)} '
                    f'{_n(cx)},{_n(box.y + box.h)} {_n(box.x)},{_n(cy)}"/>'
                    f'<text class="mark" x="{_n(cx)}" y="{_n(cy + 5)}" text-anchor="middle">'
                    f"{escape(_GATEWAY_MARK.get(kind, ''))}</text>") + self._label(di, name, under=box)
            family = "gateway"
        elif kind in ("dataObjectReference", "dataStoreReference", "textAnnotation"):
            rect = (f'<rect class="shape" x="{_n(box.x)}" y="{_n(box.y)}" width="{_n(box.w)}" height="{_n(box.h)}" '
                    'stroke-dasharray="3 3"/>')
            if kind == "textAnnotation":  # its text inside the box
                text = name or (element.findtext(f"{{{BPMN}}}text") or "" if element is not None else "")
                body = rect + _wrapped(text, box.x + box.w / 2, box.y + 14, box.w)
            else:  # a data object or store: its name under it
                body = rect + self._label(di, name, under=box)
            family = "artifact"
        else:
            expanded = di.get("isExpanded") == "true" or kind == "subProcess" and box.w > 150
            mark = "" if kind == "manualTask" else _TASK_MARK.get(kind, "")
            body = (f'<rect class="shape" x="{_n(box.x)}" y="{_n(box.y)}" width="{_n(box.w)}" '
                    f'height="{_n(box.h)}" rx="10" ry="10"/>'
                    + (f'<text class="mark" x="{_n(box.x + 6)}" y="{_n(box.y + 16)}">{escape(mark)}</text>'
                       if mark else "")
                    + (_person(box.x + 12, box.y + 8) if kind in ("userTask", "manualTask") else "")
                    + (_wrapped(name, box.x + box.w / 2, box.y + 18, box.w - 10) if expanded else
                       _wrapped(name, box.x + box.w / 2, box.y + box.h / 2 - 4, box.w - 10)))
            family = "activity"
        start, end = self._group(di, kind, family)
        self.parts.append(start + body + end)

    def _event(self, box: _Box, element: Element | None, kind: str) -> str:
        cx, cy, r = box.x + box.w / 2, box.y + box.h / 2, min(box.w, box.h) / 2
        body = f'<circle class="shape" cx="{_n(cx)}" cy="{_n(cy)}" r="{_n(r)}"/>'
        if kind in ("intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent"):
            dash = ' stroke-dasharray="4 3"' if element is not None and element.get("cancelActivity") == "false" \
                else ""
            body += f'<circle class="inner" cx="{_n(cx)}" cy="{_n(cy)}" r="{_n(r - 3)}"{dash}/>'
        definition = next((local_name(child) for child in (element if element is not None else [])
                           if isinstance(child.tag, str) and local_name(child).endswith("EventDefinition")), None)
        if definition == "timerEventDefinition":  # a clock face
            hand = r * 0.45
            return body + (f'<circle class="inner" cx="{_n(cx)}" cy="{_n(cy)}" r="{_n(r * 0.6)}"/>'
                           f'<polyline class="inner" points="{_n(cx)},{_n(cy - hand)} {_n(cx)},{_n(cy)} '
                           f'{_n(cx + hand * 0.8)},{_n(cy)}"/>')
        if definition == "messageEventDefinition":  # an envelope
            w, h = r * 1.0, r * 0.7
            x, y = cx - w / 2, cy - h / 2
            return body + (f'<rect class="inner" x="{_n(x)}" y="{_n(y)}" width="{_n(w)}" height="{_n(h)}"/>'
                           f'<polyline class="inner" points="{_n(x)},{_n(y)} {_n(cx)},{_n(cy)} {_n(x + w)},{_n(y)}"/>')
        mark = _EVENT_MARK.get(definition or "", "")
        if mark:
            body += f'<text class="mark" x="{_n(cx)}" y="{_n(cy + 5)}" text-anchor="middle">{escape(mark)}</text>'
        return body


def _person(x: float, y: float) -> str:
    """The user-task marker: a head and shoulders."""
    return (f'<circle class="inner" cx="{_n(x)}" cy="{_n(y + 3)}" r="3"/>'
            f'<path class="inner" d="M{_n(x - 6)},{_n(y + 13)} q0,-6 6,-6 q6,0 6,6 z"/>')


def _wrapped(text: str, cx: float, top: float, width: float) -> str:
    """Text centred at cx, wrapped to about `width` pixels, at most six lines (inside a shape)."""
    return _text(_lines(text, width)[:6], cx, top) if text else ""


def _lines(text: str, width: float) -> list[str]:
    """`text` broken between words into lines of about `width` pixels (CHAR_WIDTH a character); a
    word longer than a line keeps a line of its own rather than being cut."""
    per_line = max(int(width / CHAR_WIDTH), 6)
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= per_line:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def _text(lines: list[str], x: float, top: float, anchor: str = "middle") -> str:
    """One <text> with a <tspan> a line, the first line's baseline at `top`."""
    if not lines:
        return ""
    spans = "".join(f'<tspan x="{_n(x)}" dy="{0 if i == 0 else LINE_HEIGHT}">{escape(line)}</tspan>'
                    for i, line in enumerate(lines))
    return f'<text x="{_n(x)}" y="{_n(top)}" text-anchor="{anchor}">{spans}</text>'


def _middle_segment(points: list[tuple[float, float]]) -> tuple[tuple[float, float], tuple[float, float]]:
    """The segment bpmn.io puts a flow's label on: the middle one (of an even number of points, the
    one across the middle; of an odd number, the one after the middle point)."""
    middle = len(points) / 2 - 1
    return points[math.floor(middle)], points[min(math.ceil(middle + 0.01), len(points) - 1)]


def _n(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")
