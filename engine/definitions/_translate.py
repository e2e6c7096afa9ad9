"""Turn whatever SpiffWorkflow raises while parsing into a located problem a clinical lead can act on.

SpiffWorkflow 3.2 raises `ValidationException` with the element's id but no usable line (it reads
`node.line_number`, which lxml elements do not have), wraps any other error of a task parser into a
`ValidationException` whose message is the `repr` of the original (`TypeError(...)` from its own
`raise_validation_exception(node=...)` calls, `AssertionError(...)`, `KeyError(...)`), and raises bare
`KeyError`/`AttributeError` while a file is added. The line always comes from our own tree.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException

from ..errors import Problem
from ._check_flow import unconditioned_message
from ._check_links import NOT_EXECUTABLE_FIX
from ._describe import describe
from ._documents import Document, Element, local_name
from ._index import PackageIndex

INTERNAL_PREFIX = "The diagram could not be read"
_SHORT = 160


@dataclass(frozen=True)
class Place:
    """Where SpiffWorkflow was working when it failed: a file, and the process it was parsing if any."""

    document: Document
    element: Element | None = None


def translate(error: BaseException, index: PackageIndex, place: Place) -> Problem:
    if _is_recursion(error):
        return _at(place, place.element, _too_long(place.element))
    if isinstance(error, ValidationException):
        return _translate_validation(error, index, place)
    return _at(place, place.element, _could_not_read(place.element, error))


def _translate_validation(error: ValidationException, index: PackageIndex, place: Place) -> Problem:
    raw = str(error.args[0]) if error.args else str(error)
    located = index.locate(error.file_name or place.document.name, getattr(error, "id", None))
    document, element = located if located is not None else (place.document, None)
    here = Place(document, element)
    for pattern, explain in _EXPLANATIONS:
        match = pattern.search(raw)
        if match is not None:
            found = explain(match, here)
            if found is not None:
                return found
    target = element if element is not None else place.element
    return _at(here, target, _could_not_read(target, raw))


def _at(place: Place, element: Element | None, message: str) -> Problem:
    if element is None:
        return Problem(message, place.document.name)
    return Problem(message, place.document.name, element.sourceline, element.get("id"))


def _could_not_read(element: Element | None, error: BaseException | str) -> str:
    detail = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    detail = " ".join(str(detail).split())
    detail = detail if len(detail) <= _SHORT else detail[: _SHORT - 1] + "…"
    where = f" at {describe(element)}" if element is not None else ""
    return f"{INTERNAL_PREFIX}{where}: {detail}. Check this part of the diagram in your modelling tool."


def _too_long(element: Element | None) -> str:
    what = describe(element) if element is not None else "The diagram"
    return (f"{what} is too long for CarePath to read: it has a path of several hundred steps in a row. "
            "Split it into subprocesses or call activities.")


def _is_recursion(error: BaseException) -> bool:
    return isinstance(error, RecursionError) or "RecursionError" in str(error)


Explain = Callable[[re.Match[str], Place], Problem | None]


def _about_element(template: str) -> Explain:
    def explain(match: re.Match[str], place: Place) -> Problem | None:
        if place.element is None:
            return None
        return _at(place, place.element, template.format(what=describe(place.element), **match.groupdict()))
    return explain


def _about_reference(template: str) -> Explain:
    """For errors raised without an element: find the element by the id in the message."""
    def explain(match: re.Match[str], place: Place) -> Problem | None:
        element = place.document.find(match.group("ref"))
        return _at(place, element, template.format(**match.groupdict()))
    return explain


def _unconditioned(match: re.Match[str], place: Place) -> Problem | None:
    flow = place.element
    if flow is None:
        return None
    gateway = place.document.find(flow.get("sourceRef"))
    if gateway is None or gateway.getparent() is None:
        return None
    outgoing = [node for node in gateway.getparent() if local_name(node) == "sequenceFlow"
                and node.get("sourceRef") == gateway.get("id")]
    default = next((node for node in outgoing if node.get("id") == gateway.get("default")), None)
    return _at(place, gateway, unconditioned_message(gateway, [flow], default))


def _data_store(match: re.Match[str], place: Place) -> Problem:
    name = match.group("name") if "name" in match.groupdict() else ""
    return Problem(f"The diagram uses data store '{name}', but CarePath has no connection to data stores. "
                   "Remove it from the diagram and keep the information in form fields or process "
                   "variables.",
                   place.document.name)


_HIDDEN_REFERENCE = ("{what} refers to a message, signal, error or escalation that is not defined in the "
                     "diagram. Choose it again in the properties panel, or create it.")

_EXPLANATIONS: list[tuple[re.Pattern[str], Explain]] = [
    (re.compile(r"Non-default exclusive outgoing sequence flow without condition"), _unconditioned),
    (re.compile(r"No start event found"),
     _about_element("{what} has no start event. Add a start event where the pathway begins.")),
    (re.compile(r"Exactly one start event is required in a SubWorkflow Task; found (?P<count>\d+)"),
     _about_element("{what} must have exactly one start event but has {count}. Open it and fix its start.")),
    (re.compile(r"A SubWorkflow Must contain an End event"),
     _about_element("{what} has no end event. Open it and add an end event where its steps finish.")),
    (re.compile(r"Data Store with name (?P<name>.*) has no implementation"), _data_store),
    (re.compile(r"Data Store (name|identifier) is missing"), _data_store),
    (re.compile(r"Cannot resolve data(Input|Output)Association"),
     _about_element("{what} has a data association CarePath cannot resolve. Connect it to a data object of "
                    "the same process, or remove it.")),
    (re.compile(r"There is no support implemented for this task type"),
     _about_element("{what} is a kind of element CarePath cannot run. Replace it with a supported task.")),
    (re.compile(r"Multiple outgoing flows are not supported"),
     _about_element("{what} has several outgoing flows, but only gateways may split the path. Add a "
                    "parallel or exclusive gateway after it.")),
    (re.compile(r"When looking for a task spec, we found two items.*\((?P<target>.*)\)"),
     _about_element("A flow leaving {what} points to '{target}', which is not a step of the same process. "
                    "Reconnect the flow in the editor.")),
    (re.compile(r"Time Specification Error"),
     _about_element("{what} has a timer CarePath cannot read. Set a date, a duration (such as P7D) or a "
                    "cycle (such as R3/P1D) in the timer properties.")),
    (re.compile(r'No "calledElement" attribute'),
     _about_element("{what} does not say which process it calls. Set 'Called element' in the properties "
                    "panel.")),
    (re.compile(r"(multiinstance task must specify|loopMaximum or loopCondition|loop (in|out)put data ref)"),
     _about_element("{what} has loop or multi-instance settings CarePath cannot use. Check its loop "
                    "cardinality, collection and condition.")),
    (re.compile(r"Invalid Script Task"),
     _about_element("{what} has no script. Write the script in the properties panel, or change it to a "
                    "plain task.")),
    (re.compile(r'No DMN Diagram available with id "(?P<ref>[^"]*)"'),
     _about_element("{what} refers to decision '{ref}' but no uploaded DMN file defines it. Upload the "
                    ".dmn file together with the .bpmn file.")),
    (re.compile(r"Process (?P<ref>\S+) is not executable"),
     _about_element("Process '{ref}' is not marked executable. " + NOT_EXECUTABLE_FIX)),
    (re.compile(r"The process '(?P<ref>[^']*)' was not found"),
     _about_element("{what} calls process '{ref}', which is neither in this upload nor deployed.")),
    (re.compile(r"Duplicate process ID: (?P<ref>.*)"),
     _about_element("Process '{ref}' is defined twice in the upload. Give each process its own id.")),
    (re.compile(r"Cancel Events may only be used with transactions"),
     _about_element("{what} has a cancel boundary event, but cancel events may only be attached to a "
                    "transaction. Remove it, or make the activity a transaction.")),
    (re.compile(r"Correlation is missing correlation property retrieval expressions: (?P<ref>\S+)"),
     _about_reference("Correlation property '{ref}' has no retrieval expression, so CarePath cannot tell "
                      "which message value to correlate on. Add one for each message, or remove the "
                      "property.")),
    (re.compile(r"A Service Task must have an operator"),
     _about_element("{what} does not say which service to call. Give it the topic its external workers fetch "
                    "(carepath:topic, docs/external-tasks.md), or change it to a plain task.")),
    (re.compile(r"Conditional event definition with missing condition"),
     _about_element("{what} has a conditional trigger with no condition. Write the condition in the "
                    "properties panel.")),
    (re.compile(r"Malformed Output Expression '(?P<expression>.*?)'"),
     _about_element("{what} in the decision table has the output '{expression}', which is not a valid "
                    "expression. Correct it in the DMN editor.")),
    (re.compile(r"Unknown type in decision table"),
     _about_element("{what} is something CarePath cannot read inside a decision table. Remove it in the "
                    "DMN editor.")),
    (re.compile(r"Expected an? (Message|Signal|Error|Escalation) node|raise_validation_exception\(\) got an "
                r"unexpected keyword|Expected 1 result\. Received 0 results"),
     _about_element(_HIDDEN_REFERENCE)),
    (re.compile(r"Unsupported Catch Event"),
     _about_element("{what} has no trigger CarePath can wait for. Make it a timer, message, signal, error, "
                    "escalation or conditional event, or remove it.")),
]
