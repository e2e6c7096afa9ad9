"""Name BPMN elements the way a clinical lead sees them in the editor: kind, id, label and line."""

from __future__ import annotations

from ..errors import Problem
from ._documents import Document, Element, local_name

_KINDS = {
    "process": "Process",
    "task": "Task",
    "userTask": "User task",
    "manualTask": "Manual task",
    "serviceTask": "Service task",
    "scriptTask": "Script task",
    "businessRuleTask": "Business rule task",
    "sendTask": "Send task",
    "receiveTask": "Receive task",
    "callActivity": "Call activity",
    "subProcess": "Subprocess",
    "transaction": "Transaction",
    "adHocSubProcess": "Ad hoc subprocess",
    "exclusiveGateway": "Exclusive gateway",
    "inclusiveGateway": "Inclusive gateway",
    "parallelGateway": "Parallel gateway",
    "eventBasedGateway": "Event-based gateway",
    "complexGateway": "Complex gateway",
    "startEvent": "Start event",
    "endEvent": "End event",
    "intermediateCatchEvent": "Intermediate event",
    "intermediateThrowEvent": "Intermediate event",
    "boundaryEvent": "Boundary event",
    "sequenceFlow": "Flow",
    "dataStore": "Data store",
    "dataStoreReference": "Data store",
    "dataObjectReference": "Data object",
    "message": "Message",
    "signal": "Signal",
    "error": "Error",
    "escalation": "Escalation",
    "decision": "Decision",
}
_MAX_LABEL = 60


def kind_of(element: Element) -> str:
    name = local_name(element)
    if name == "subProcess" and element.get("triggeredByEvent") == "true":
        return "Event subprocess"
    return _KINDS.get(name, name[:1].upper() + name[1:])


def label_of(element: Element) -> str | None:
    """The element's name as shown on the canvas, on one line and shortened."""
    name = " ".join((element.get("name") or "").split())
    if not name or name == element.get("id"):
        return None
    return name if len(name) <= _MAX_LABEL else name[: _MAX_LABEL - 1] + "…"


def describe(element: Element, *, with_line: bool = True) -> str:
    """E.g. "Exclusive gateway 'Gateway_1' (Check risk) at line 84"."""
    text = f"{kind_of(element)} '{element.get('id') or '?'}'"
    label = label_of(element)
    if label:
        text += f" ({label})"
    if with_line and element.sourceline:
        text += f" at line {element.sourceline}"
    return text


def problem_at(document: Document, element: Element, message: str) -> Problem:
    return Problem(message, document.name, element.sourceline, element.get("id"))
