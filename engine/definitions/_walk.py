"""Walk executable processes the way SpiffWorkflow's parser does: from the start events along the flows.

SpiffWorkflow only ever looks at elements it reaches this way, so the importer's checks look at the
same elements (and warn about the ones nothing reaches: they would never run).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from ..errors import Problem
from ._describe import describe, problem_at
from ._documents import Document, Element, is_bpmn, local_name
from ._index import SCOPE_TAGS, PackageIndex

FLOW_NODE_NAMES = frozenset({
    "task", "userTask", "manualTask", "serviceTask", "scriptTask", "businessRuleTask", "sendTask",
    "receiveTask", "callActivity", "subProcess", "transaction", "adHocSubProcess", "exclusiveGateway",
    "inclusiveGateway", "parallelGateway", "eventBasedGateway", "complexGateway", "startEvent", "endEvent",
    "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent",
})
_MAX_LISTED = 5


@dataclass(frozen=True)
class Site:
    """An element SpiffWorkflow will parse, with the file and the process or subprocess around it."""

    index: PackageIndex
    document: Document
    scope: Element
    element: Element

    def problem(self, message: str) -> Problem:
        return problem_at(self.document, self.element, message)


@dataclass
class ScopeGraph:
    scope: Element
    nodes: dict[str, Element] = field(default_factory=dict)
    flows: list[Element] = field(default_factory=list)
    outgoing: dict[str, list[Element]] = field(default_factory=dict)
    boundaries: dict[str, list[Element]] = field(default_factory=dict)

    @classmethod
    def of(cls, scope: Element) -> ScopeGraph:
        graph = cls(scope)
        for child in scope:
            if not is_bpmn(child):
                continue
            name = local_name(child)
            if name in FLOW_NODE_NAMES and child.get("id"):
                graph.nodes[child.get("id")] = child
                if name == "boundaryEvent":
                    graph.boundaries.setdefault(child.get("attachedToRef") or "", []).append(child)
            elif name == "sequenceFlow":
                graph.flows.append(child)
                graph.outgoing.setdefault(child.get("sourceRef") or "", []).append(child)
        return graph

    def starts(self) -> list[Element]:
        if local_name(self.scope) == "adHocSubProcess":
            return [node for node in self.nodes.values()
                    if not any(is_bpmn(child, "incoming") for child in node)]
        return [node for node in self.nodes.values() if local_name(node) == "startEvent"
                or (local_name(node) == "subProcess" and node.get("triggeredByEvent") == "true")]

    def reachable(self) -> list[Element]:
        seen: dict[str, Element] = {}
        pending = list(self.starts())
        while pending:
            node = pending.pop()
            node_id = node.get("id") or ""
            if node_id in seen:
                continue
            seen[node_id] = node
            pending.extend(self.boundaries.get(node_id, []))
            for flow in self.outgoing.get(node_id, []):
                target = self.nodes.get(flow.get("targetRef") or "")
                if target is not None:
                    pending.append(target)
        return list(seen.values())


@dataclass
class WalkedScope:
    document: Document
    graph: ScopeGraph
    reached: list[Element]


def walk_executable(index: PackageIndex) -> Iterator[WalkedScope]:
    """Every process and (nested) subprocess SpiffWorkflow will parse, with the elements it reaches."""
    for process_id in index.executable_ids:
        document, process = index.processes[process_id]
        pending = [process]
        while pending:
            graph = ScopeGraph.of(pending.pop())
            reached = graph.reachable()
            yield WalkedScope(document, graph, reached)
            pending.extend(node for node in reached if local_name(node) in SCOPE_TAGS)


def unreachable_warning(walked: WalkedScope) -> Problem | None:
    reached_ids = {node.get("id") for node in walked.reached}
    missed = [node for node in walked.graph.nodes.values()
              if node.get("id") not in reached_ids and not _is_link_catch(node)]
    if not missed:
        return None
    listed = ", ".join(describe(node) for node in missed[:_MAX_LISTED])
    more = f" and {len(missed) - _MAX_LISTED} more" if len(missed) > _MAX_LISTED else ""
    return problem_at(walked.document, walked.graph.scope,
                      f"{describe(walked.graph.scope)} has {len(missed)} element(s) that no start event "
                      f"leads to, so they will never run: {listed}{more}. Connect them with sequence flows "
                      "or remove them.")


def _is_link_catch(node: Element) -> bool:
    return any(is_bpmn(child, "linkEventDefinition") for child in node)
