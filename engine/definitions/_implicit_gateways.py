"""Uncontrolled flow made explicit: the gateways BPMN implies, inserted before SpiffWorkflow reads a diagram.

BPMN 2.0.2 lets an activity or event split and merge the path without a gateway (§10.2 and §8.4.13):
several outgoing flows all take a token (a parallel split), a conditional one only when its condition is
true, the default one only when no other is taken; several incoming flows each start the activity again
(an uncontrolled merge, not a join). SpiffWorkflow 3.2 refuses a task with several outgoing flows and
ignores conditions on a task's flows, so the copy of the diagram it parses gets the gateways that say the
same thing:

    A -f1-> B, A -f2-> C             A -> A__split (parallel) -f1-> B, -f2-> C
    A -c1[x > 1]-> B, A -d(default)-> C    A -> A__split (inclusive, default d) -c1-> B, -d-> C
    X -f1-> B, Y -f2-> B             X -f1-> B__merge (exclusive) -> B,  Y -f2-> B__merge

Everything the user drew keeps its id: the flows f1, f2, c1 and d now leave the split or enter the merge.
Generated elements are named after the element they serve (`<id>__split`, `<id>__merge`, and their flows
`<id>__to_split`, `<id>__from_merge`) and carry a marker attribute, by which `prepare_parser` gives them
SpiffWorkflow specs that never join tokens and have no BPMN id: the engine's history, the simulator's
path and the drawn transitions pass through them to the user's own elements. The stored diagram and its
layout (BPMNDI) are the uploaded ones, untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from copy import deepcopy
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.parser.task_parsers import ConditionalGatewayParser
from SpiffWorkflow.bpmn.parser.TaskParser import TaskParser
from SpiffWorkflow.dmn.parser.BpmnDmnParser import BpmnDmnParser

from ..runtime.implicit_split import ALWAYS, ImplicitSplit
from ._check_flow import has_condition
from ._documents import Element, bpmn, is_bpmn, local_name

MARKER = "{urn:carepath:implicit-gateways}role"
_GATEWAYS = frozenset({"exclusiveGateway", "inclusiveGateway", "parallelGateway", "eventBasedGateway",
                       "complexGateway"})
# Activities and events: the flow nodes whose flows BPMN reads as uncontrolled.
UNCONTROLLED_FLOW_NODES = frozenset({
    "task", "userTask", "manualTask", "serviceTask", "scriptTask", "businessRuleTask", "sendTask",
    "receiveTask", "callActivity", "subProcess", "transaction", "adHocSubProcess", "startEvent", "endEvent",
    "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent",
})
_SCOPES = ("process", "subProcess", "transaction", "adHocSubProcess")


def with_implicit_gateways(root: Element) -> Element:
    """`root`, or a copy of it with the implied gateways inserted when any are implied."""
    if not any(_Scope(scope).implied() for scope in _scopes(root)):
        return root
    copy = deepcopy(root)
    ids = {element.get("id") for element in copy.iter() if isinstance(element.tag, str) and element.get("id")}
    for scope in _scopes(copy):
        _Scope(scope, ids).insert()
    return copy


def _scopes(root: Element) -> list[Element]:
    return list(root.iter(*(bpmn(name) for name in _SCOPES)))


class _Scope:
    """The flow nodes and sequence flows directly inside one process or subprocess."""

    def __init__(self, scope: Element, ids: set[str | None] | None = None) -> None:
        self.scope = scope
        self.ids = ids if ids is not None else set()
        self.nodes = {child.get("id"): child for child in scope if is_bpmn(child) and child.get("id")}
        flows = [child for child in scope if is_bpmn(child, "sequenceFlow")]
        self.outgoing: dict[str | None, list[Element]] = {}
        self.incoming: dict[str | None, list[Element]] = {}
        for flow in flows:
            self.outgoing.setdefault(flow.get("sourceRef"), []).append(flow)
            self.incoming.setdefault(flow.get("targetRef"), []).append(flow)

    def implied(self) -> bool:
        return any(self._splits(node) or self._merges(node) for node in self.nodes.values())

    def insert(self) -> None:
        for node in list(self.nodes.values()):
            if self._merges(node):
                self._insert_merge(node)
            if self._splits(node):
                self._insert_split(node)

    def _splits(self, node: Element) -> bool:
        outgoing = self.outgoing.get(node.get("id"), [])
        return local_name(node) in UNCONTROLLED_FLOW_NODES and (len(outgoing) > 1 or any(map(has_condition, outgoing)))

    def _merges(self, node: Element) -> bool:
        incoming = self.incoming.get(node.get("id"), [])
        # The events after an event-based gateway must stay its direct targets.
        from_event_gateway = any(local_name(self.nodes.get(flow.get("sourceRef"), node)) == "eventBasedGateway"
                                 for flow in incoming)
        return local_name(node) in UNCONTROLLED_FLOW_NODES and len(incoming) > 1 and not from_event_gateway

    def _insert_split(self, node: Element) -> None:
        node_id = node.get("id") or ""
        outgoing = self.outgoing[node_id]
        default = node.get("default")
        conditional = default is not None or any(map(has_condition, outgoing))
        gateway = self._gateway("inclusiveGateway" if conditional else "parallelGateway",
                                self._fresh(f"{node_id}__split"), "split", node)
        if conditional and default:
            gateway.set("default", default)
            del node.attrib["default"]
        link = self._flow(self._fresh(f"{node_id}__to_split"), node_id, gateway.get("id") or "")
        for flow in outgoing:
            flow.set("sourceRef", gateway.get("id") or "")
        _relink(node, "outgoing", [flow.get("id") for flow in outgoing], link.get("id"))
        _relink(gateway, "incoming", [], link.get("id"))
        _relink(gateway, "outgoing", [], *(flow.get("id") for flow in outgoing))

    def _insert_merge(self, node: Element) -> None:
        node_id = node.get("id") or ""
        incoming = self.incoming[node_id]
        gateway = self._gateway("exclusiveGateway", self._fresh(f"{node_id}__merge"), "merge", node,
                                before=True)
        link = self._flow(self._fresh(f"{node_id}__from_merge"), gateway.get("id") or "", node_id)
        for flow in incoming:
            flow.set("targetRef", gateway.get("id") or "")
        _relink(node, "incoming", [flow.get("id") for flow in incoming], link.get("id"))
        _relink(gateway, "incoming", [], *(flow.get("id") for flow in incoming))
        _relink(gateway, "outgoing", [], link.get("id"))

    def _gateway(self, kind: str, gateway_id: str, role: str, node: Element, before: bool = False) -> Element:
        gateway = etree.Element(bpmn(kind), nsmap=None)
        gateway.set("id", gateway_id)
        gateway.set("gatewayDirection", "Diverging" if role == "split" else "Converging")
        gateway.set(MARKER, role)
        gateway.sourceline = node.sourceline
        if before:
            node.addprevious(gateway)
        else:
            node.addnext(gateway)
        return gateway

    def _flow(self, flow_id: str, source: str, target: str) -> Element:
        flow = etree.SubElement(self.scope, bpmn("sequenceFlow"))
        flow.set("id", flow_id)
        flow.set("sourceRef", source)
        flow.set("targetRef", target)
        return flow

    def _fresh(self, wanted: str) -> str:
        """`wanted`, or with a number after it when the diagram already has that id."""
        candidate, number = wanted, 1
        while candidate in self.ids:
            number += 1
            candidate = f"{wanted}_{number}"
        self.ids.add(candidate)
        return candidate


def _relink(node: Element, direction: str, removed: list[str | None], *added: str | None) -> None:
    """Keep the node's own <incoming>/<outgoing> references (where the editor wrote them) in step with the
    flows' refs: the removed ones replaced by the added ones, in their place."""
    references = [child for child in node if is_bpmn(child, direction)]
    gone = [reference for reference in references if (reference.text or "").strip() in removed]
    if removed and not gone:
        return
    position = node.index(gone[0]) if gone else len(node)
    for reference in gone:
        node.remove(reference)
    for offset, flow_id in enumerate(added):
        reference = etree.Element(bpmn(direction))
        reference.text = flow_id
        node.insert(position + offset, reference)


# -- the parser side: generated gateways get specs that never join and carry no BPMN id --------------

class _SplitParser(ConditionalGatewayParser):
    """Every flow without a condition is taken (the split's parallel part); the default only when no
    other flow is."""

    def create_task(self) -> Any:
        task = ImplicitSplit(self.spec, self.bpmn_id, **self.bpmn_attributes)
        task.bpmn_id = None
        return task

    def connect_outgoing(self, outgoing_task: Any, sequence_flow_node: Element, is_default: bool) -> None:
        if is_default:
            self.task.connect(outgoing_task)
            return
        condition = self.parse_condition(sequence_flow_node)
        self.task.connect_outgoing_if(condition if condition is not None else ALWAYS, outgoing_task)


def _merge_parser(parser_class: type[TaskParser]) -> type[TaskParser]:
    class _MergeParser(parser_class):
        """An exclusive gateway with one way out: it passes each token through, never waiting."""

        def create_task(self) -> Any:
            task = super().create_task()
            task.bpmn_id = None
            return task

    return _MergeParser


ParserFactory = Callable[..., TaskParser]


def prepare_parser(parser: BpmnDmnParser) -> None:
    """Make this parser read the generated gateways (the others as before)."""
    overrides = dict(parser.OVERRIDE_PARSER_CLASSES)
    for kind in ("parallelGateway", "inclusiveGateway", "exclusiveGateway"):
        tag = bpmn(kind)
        node_parser, spec_class = parser._get_parser_class(tag)
        overrides[tag] = (_dispatch(node_parser, spec_class), spec_class)
    parser.OVERRIDE_PARSER_CLASSES = overrides


def _dispatch(node_parser: type[TaskParser], spec_class: type) -> ParserFactory:
    merge_parser = _merge_parser(node_parser)

    def parser_for(process_parser: Any, _spec_class: type, node: Element, nsmap: Any, lane: Any = None) -> TaskParser:
        role = node.get(MARKER)
        if role == "split":
            return _SplitParser(process_parser, ImplicitSplit, node, nsmap, lane=lane)
        chosen = merge_parser if role == "merge" else node_parser
        return chosen(process_parser, spec_class, node, nsmap, lane=lane)

    return parser_for
