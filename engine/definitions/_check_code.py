"""Deploy-time checks of the code in a diagram: conditions, scripts and timer expressions.

They are checked with the same sandbox that will run them (Camunda conditions are already
translated, see _camunda_conditions), so a condition outside the translated subset, a script that
imports `os` or a timer that is neither ISO 8601 nor an allowed expression is refused at upload
with its line, not discovered on a patient's instance.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..calendars import is_duration
from ..errors import Problem
from ..runtime.timers import looks_like_iso
from ..sandbox import SandboxError, check_expression, check_script
from ._camunda_conditions import condition_refusal, other_language
from ._check_flow import OTHER_SCRIPT_LANGUAGES, children_named
from ._describe import describe
from ._documents import Element, bpmn, local_name
from ._walk import ScopeGraph, Site

_TIMER_VALUES = ("timeDate", "timeDuration", "timeCycle")


def _reason(error: SandboxError) -> str:
    return getattr(error, "message", None) or str(error)


def _condition_problems(site: Site, graph: ScopeGraph) -> Iterator[Problem]:
    for flow in graph.outgoing.get(site.element.get("id") or "", []):
        expression = next(flow.iter(bpmn("conditionExpression")), None)
        if expression is None:
            continue
        refusal = _condition_refusal(expression)
        if refusal is not None:
            yield Problem(f"The condition on flow '{flow.get('id')}' from {describe(site.element)} cannot run: "
                          f"{refusal}", site.document.name, expression.sourceline or flow.sourceline, flow.get("id"))


def _event_condition_problems(site: Site) -> Iterator[Problem]:
    for definition in children_named(site.element, "conditionalEventDefinition"):
        for condition in definition.iter(bpmn("condition")):
            refusal = _condition_refusal(condition)
            if refusal is not None:
                yield Problem(f"The condition of {describe(site.element)} cannot run: {refusal}", site.document.name,
                              condition.sourceline or site.element.sourceline, site.element.get("id"))


def _condition_refusal(expression: Element) -> str | None:
    """None when the condition (already translated if it was Camunda's) runs in the sandbox."""
    text = (expression.text or "").strip()
    if not text:
        return None
    try:
        check_expression(text)
    except SandboxError as error:
        return condition_refusal(text, expression.get("language"), _reason(error))
    return other_language(text, expression.get("language"))  # JavaScript that happens to parse as Python


def _script_problems(site: Site) -> Iterator[Problem]:
    if local_name(site.element) != "scriptTask":
        return
    if (site.element.get("scriptFormat") or "").strip().lower() in OTHER_SCRIPT_LANGUAGES:
        return  # refused as not Python (_check_flow); anything else runs as Python, so check it as Python
    script = next(site.element.iter(bpmn("script")), None)
    text = (script.text or "") if script is not None else ""
    if not text.strip():
        return
    try:
        check_script(text)
    except SandboxError as error:
        line = (script.sourceline or 0) + max((getattr(error, "line", None) or 1) - 1, 0) if script is not None \
            else site.element.sourceline
        yield Problem(f"The script of {describe(site.element)} cannot run: {_reason(error)}.",
                      site.document.name, line, site.element.get("id"))


def _timer_problems(site: Site) -> Iterator[Problem]:
    for timer in children_named(site.element, "timerEventDefinition"):
        for value in timer.iter(*(bpmn(name) for name in _TIMER_VALUES)):
            text = (value.text or "").strip()
            kind = local_name(value)
            if kind == "timeDate" and is_duration(text):
                yield Problem(f"The timer of {describe(site.element)} has the date '{text[:120]}', which is a "
                              f"duration. For 'wait {text}' set the timer type to Duration; for a date counted "
                              f"from the patient's data write it as '{text} after <variable>'.",
                              site.document.name, value.sourceline, site.element.get("id"))
                continue
            if not text or looks_like_iso(text):
                continue
            try:
                check_expression(text)
            except SandboxError as error:
                yield Problem(f"The timer of {describe(site.element)} has the value '{text[:120]}', which is "
                              f"neither ISO 8601 (such as P7D, PT4H, R3/P1D or 2026-01-31T09:00:00Z) nor an "
                              f"expression CarePath can run: {_reason(error)}.", site.document.name,
                              value.sourceline, site.element.get("id"))


CODE_NODE_CHECKS = (_script_problems, _timer_problems, _event_condition_problems)
CODE_GRAPH_CHECKS = (_condition_problems,)
