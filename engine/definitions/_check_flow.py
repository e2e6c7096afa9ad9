"""Checks on the shape of the flow: gateways, splits, start and end events, timers, loops, scripts.

Each check mirrors a place where SpiffWorkflow's parser stops at the first error (or, worse,
accepts a diagram that cannot run), and reports every occurrence in words a clinical lead can act on.
Nothing is evaluated: conditions, scripts and timer expressions are only looked at, never run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from ..errors import Problem
from ._describe import describe, problem_at
from ._documents import Element, bpmn, is_bpmn, local_name
from ._families import PARSER_CLASSES
from ._walk import ScopeGraph, Site, WalkedScope

_CONDITIONAL_GATEWAYS = frozenset({"exclusiveGateway", "inclusiveGateway"})
_WAITABLE_TRIGGERS = frozenset({"cancelEventDefinition", "errorEventDefinition", "escalationEventDefinition",
                                "messageEventDefinition", "signalEventDefinition", "timerEventDefinition",
                                "conditionalEventDefinition"})
_TIMER_VALUES = ("timeDate", "timeDuration", "timeCycle")
_PYTHON_SCRIPT_FORMATS = frozenset({"", "python", "python3", "py", "text/python", "text/x-python"})
OTHER_SCRIPT_LANGUAGES = frozenset({
    "javascript", "js", "ecmascript", "nashorn", "graal.js", "groovy", "xslt", "juel", "ruby", "jruby",
    "feel", "freemarker", "velocity", "kotlin", "mvel", "java",
})


def children_named(element: Element, *names: str) -> list[Element]:
    """The element's BPMN children with one of the local names."""
    return [child for child in element if is_bpmn(child, *names)]


def has_condition(flow: Element) -> bool:
    expression = next(flow.iter(bpmn("conditionExpression")), None)
    return expression is not None and bool((expression.text or "").strip())


def check_scope(walked: WalkedScope) -> list[Problem]:
    """Problems of a process as a whole (a subprocess's own are checked where its parent reaches it)."""
    scope = walked.graph.scope
    if local_name(scope) == "process" and not children_named(scope, "startEvent"):
        return [problem_at(walked.document, scope,
                           f"{describe(scope)} has no start event. Add a start event where the pathway "
                           "begins.")]
    return []


def _unsupported_element(site: Site) -> Iterator[Problem]:
    parser_class = PARSER_CLASSES[site.index.family]
    tag = site.element.tag
    if tag in parser_class.OVERRIDE_PARSER_CLASSES or tag in parser_class.PARSER_CLASSES:
        return
    if local_name(site.element) == "businessRuleTask":
        return  # reported with the decision it should use
    advice = ("Use an inclusive gateway with a condition on each outgoing flow instead."
              if local_name(site.element) == "complexGateway" else "Replace it with a supported task or "
                                                                   "gateway.")
    yield site.problem(f"{describe(site.element)} is a kind of element CarePath cannot run. {advice}")


def _unconditioned_flows(site: Site, graph: ScopeGraph) -> Iterator[Problem]:
    if local_name(site.element) not in _CONDITIONAL_GATEWAYS:
        return
    outgoing = graph.outgoing.get(site.element.get("id") or "", [])
    if len(outgoing) < 2:
        return  # SpiffWorkflow takes a single unconditioned flow as the default
    default_id = site.element.get("default")
    default = next((flow for flow in outgoing if flow.get("id") == default_id), None)
    missing = [flow for flow in outgoing if flow is not default and not has_condition(flow)]
    if missing:
        yield site.problem(unconditioned_message(site.element, missing, default))


def unconditioned_message(gateway: Element, missing: list[Element], default: Element | None) -> str:
    names = ", ".join(f"'{flow.get('id')}'" for flow in missing)
    if default is not None:
        return (f"{describe(gateway)} has an outgoing flow with no condition ({names}). Only the default "
                f"flow ('{default.get('id')}') may go without one: add a condition to {names}.")
    if len(missing) == 1:
        return (f"{describe(gateway)} has an outgoing flow with no condition and no default flow. Add a "
                f"condition to flow {names} or mark one flow as the default.")
    return (f"{describe(gateway)} has {len(missing)} outgoing flows with no condition ({names}) and no "
            "default flow. Add a condition to each of them; one of them may instead be marked as the "
            "default.")


def _dangling_flows(site: Site, graph: ScopeGraph) -> Iterator[Problem]:
    for flow in graph.outgoing.get(site.element.get("id") or "", []):
        target = flow.get("targetRef") or ""
        if target not in graph.nodes:
            yield site.problem(
                f"Flow '{flow.get('id')}' leaves {describe(site.element)} but points to '{target}', which "
                "is not a step of the same process or subprocess. Reconnect the flow in the editor.")


def _subprocess_shape(site: Site) -> Iterator[Problem]:
    element, name = site.element, local_name(site.element)
    if name in {"subProcess", "transaction"}:
        starts, ends = children_named(element, "startEvent"), children_named(element, "endEvent")
        if not starts:
            yield site.problem(f"{describe(element)} has no start event. Open it and add one start event "
                               "where its steps begin.")
        elif len(starts) > 1:
            yield site.problem(f"{describe(element)} has {len(starts)} start events, but a subprocess must "
                               "have exactly one. Remove the extra start events.")
        if not ends:
            yield site.problem(f"{describe(element)} has no end event. Open it and add an end event where "
                               "its steps finish.")
        if element.get("triggeredByEvent") == "true" and any(
                children_named(start, "messageEventDefinition", "signalEventDefinition") for start in starts):
            yield site.problem(
                f"{describe(element)} is an event subprocess started by a message or signal, which CarePath "
                "cannot deliver yet (the message would wait unanswered). Draw it as a message boundary event "
                "on a subprocess around the work it interrupts, or as a parallel branch that waits for the "
                "message (with terminate end events, as the shipped transition-of-care pathway does).")
    elif name == "adHocSubProcess":
        if children_named(element, "startEvent", "endEvent"):
            yield site.problem(f"{describe(element)} contains start or end events, which an ad hoc "
                               "subprocess may not have. Remove them.")
        if element.get("ordering") == "sequential":
            yield site.problem(f"{describe(element)} is set to sequential ordering, which CarePath does not "
                               "support. Set ordering to parallel, or use a normal subprocess.")


def _event_triggers(site: Site) -> Iterator[Problem]:
    element = site.element
    definitions = [local_name(child) for child in element if is_bpmn(child) and
                   local_name(child).endswith("EventDefinition")]
    if "linkEventDefinition" in definitions:
        yield site.problem(f"{describe(element)} is a link event, which CarePath does not follow. Connect "
                           "the two parts of the diagram with a sequence flow instead.")
    if "compensateEventDefinition" in definitions:
        yield site.problem(f"{describe(element)} uses compensation, which CarePath does not support. Model "
                           "the undo steps as ordinary tasks.")
    elif local_name(element) == "boundaryEvent" and not _WAITABLE_TRIGGERS.intersection(definitions):
        yield site.problem(f"{describe(element)} has no trigger CarePath can wait for. Make it a timer, "
                           "message, signal, error, escalation or conditional event, or remove it.")
    for condition_event in children_named(element, "conditionalEventDefinition"):
        if next(condition_event.iter(bpmn("condition")), None) is None:
            yield site.problem(f"{describe(element)} has a conditional trigger with no condition. Write the "
                               "condition in the properties panel.")


def _timers(site: Site) -> Iterator[Problem]:
    for timer in children_named(site.element, "timerEventDefinition"):
        values = list(timer.iter(*(bpmn(name) for name in _TIMER_VALUES)))
        if not values or not (values[0].text or "").strip():
            yield site.problem(
                f"{describe(site.element)} is a timer with no time set. In the properties panel set a date, "
                "a duration (such as P7D for seven days) or a cycle (such as R3/P1D).")


def _scripts(site: Site) -> Iterator[Problem]:
    if local_name(site.element) != "scriptTask":
        return
    if (site.element.get("scriptFormat") or "").strip().lower() in OTHER_SCRIPT_LANGUAGES:
        yield site.problem(f"{describe(site.element)} is written in '{site.element.get('scriptFormat')}', "
                           "but CarePath runs Python scripts only. Rewrite the script in Python.")
    scripts = list(site.element.iter(bpmn("script")))
    if len(scripts) != 1 or not (scripts[0].text or "").strip():
        yield site.problem(f"{describe(site.element)} has no script. Write the script in the properties "
                           "panel, or change the element to a plain task.")


def _loops(site: Site) -> Iterator[Problem]:
    for loop in children_named(site.element, "standardLoopCharacteristics"):
        maximum = (loop.get("loopMaximum") or "").strip()
        if maximum and not maximum.isdigit():
            yield site.problem(f"{describe(site.element)} has loop maximum '{maximum}', which is not a "
                               "whole number.")
        elif not maximum and not children_named(loop, "loopCondition"):
            yield site.problem(f"{describe(site.element)} has a loop marker but neither a loop condition "
                               "nor a maximum number of loops. Set one of them, or remove the loop marker.")
    for loop in children_named(site.element, "multiInstanceLoopCharacteristics"):
        yield from _multi_instance(site, loop)


def _multi_instance(site: Site, loop: Element) -> Iterator[Problem]:
    cardinality = bool(children_named(loop, "loopCardinality"))
    if site.index.family == "camunda":
        collection = bool(loop.get("{http://camunda.org/schema/1.0/bpmn}collection"))
    else:
        collection = bool(children_named(loop, "loopDataInputRef"))
    if not cardinality and not collection:
        yield site.problem(f"{describe(site.element)} is marked as multi-instance but does not say how many "
                           "instances to create. Set a loop cardinality or an input collection.")
    elif cardinality and collection and site.index.family != "camunda":
        yield site.problem(f"{describe(site.element)} sets both a loop cardinality and an input collection "
                           "for its instances. Keep only one of them.")


NODE_CHECKS: tuple[Callable[[Site], Iterator[Problem]], ...] = (
    _unsupported_element, _subprocess_shape, _event_triggers, _timers, _scripts, _loops,
)
def _unknown_script_format(site: Site) -> Iterator[Problem]:
    script_format = (site.element.get("scriptFormat") or "").strip().lower()
    if local_name(site.element) != "scriptTask" or script_format in _PYTHON_SCRIPT_FORMATS:
        return
    if script_format not in OTHER_SCRIPT_LANGUAGES:
        yield site.problem(f"{describe(site.element)} gives its script format as "
                           f"'{site.element.get('scriptFormat')}'. CarePath runs every script as Python.")


FLOW_WARNINGS: tuple[Callable[[Site], Iterator[Problem]], ...] = (_unknown_script_format,)
GRAPH_CHECKS: tuple[Callable[[Site, ScopeGraph], Iterator[Problem]], ...] = (
    _unconditioned_flows, _dangling_flows,
)
