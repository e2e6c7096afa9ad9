"""Camunda 7 input/output parameters (`<camunda:inputOutput>`) read from a task, checked, or refused.

Supported on tasks (task, user, manual, service/send (external), receive, script, business rule): a
`camunda:inputParameter` or `camunda:outputParameter` with a `name` and a value that is
  - a text: a literal string, or one JUEL `${...}` / `#{...}` or FEEL `=...` expression, translated at deploy
    into the sandbox language by the Camunda expression translator (_camunda_expressions.py);
  - nothing: null;
  - `<camunda:list>` of values, `<camunda:map>` of `<camunda:entry key="...">` values.
Anything else (`<camunda:script>`, text mixed with an expression, a mapping on an event, gateway, subprocess
or call activity) is refused with the element's location, quoting what was written. The runtime side
(evaluation, local variables, serializer converters) is runtime/io_mappings.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from ..errors import Problem
from ..runtime.io_mappings import INPUTS_ID, OUTPUTS_ID, InputParameters, OutputParameters, Parameter, Value
from ..sandbox.expressions import check_expression
from ._camunda_expressions import SUPPORTED, camunda_dialect, translate
from ._camunda_syntax import OutsideSubset
from ._describe import describe
from ._documents import CAMUNDA_NS, NSMAP, Document, Element, local_name
from ._model import ShownMapping
from ._walk import Site

TASK_NAMES = frozenset({"task", "userTask", "manualTask", "serviceTask", "sendTask", "receiveTask",
                        "scriptTask", "businessRuleTask"})
# Parameters an element adds of its own besides its camunda:inputOutput (a connector's), or None.
Extra = Callable[[Element], "tuple[list[Parameter], list[Parameter]] | None"]
_MAPPING_PATH = "./bpmn:extensionElements/camunda:inputOutput"
_MAX_DEPTH = 8
_MAX_NAME = 255


class Unsupported(ValueError):
    """A mapping CarePath does not run; the message quotes it."""


def mapping_elements(element: Element) -> list[Element]:
    return list(element.xpath(_MAPPING_PATH, namespaces=NSMAP))


def has_input_parameters(element: Element) -> bool:
    return any(child.tag == _camunda("inputParameter") for mapping in mapping_elements(element) for child in mapping)


def parameters_of(element: Element) -> tuple[list[Parameter], list[Parameter]]:
    """The input and output parameters of a task's `camunda:inputOutput`; raises Unsupported."""
    return parameters_in(mapping_elements(element))


def parameters_in(mappings: list[Element]) -> tuple[list[Parameter], list[Parameter]]:
    """The input and output parameters of `camunda:inputOutput` elements (a task's, a connector's)."""
    inputs: list[Parameter] = []
    outputs: list[Parameter] = []
    for mapping in mappings:
        for child in mapping:
            if not isinstance(child.tag, str):
                continue  # comments
            kind = local_name(child)
            if child.tag not in {_camunda("inputParameter"), _camunda("outputParameter")}:
                raise Unsupported(f"'{kind}' in camunda:inputOutput is not an input or output parameter")
            name = (child.get("name") or "").strip()
            if not name or name.startswith("_") or len(name) > _MAX_NAME or not name.isprintable():
                raise Unsupported(f"the {kind} name '{name[:_MAX_NAME]}' is not a variable name CarePath accepts "
                                  f"(1 to {_MAX_NAME} printable characters, not starting with _)")
            (inputs if kind == "inputParameter" else outputs).append((name, _value(child, name, 0)))
    return inputs, outputs


def _camunda(name: str) -> str:
    return f"{{{CAMUNDA_NS}}}{name}"


def _value(holder: Element, name: str, depth: int) -> Value:
    children = [child for child in holder if isinstance(child.tag, str)]
    if depth > _MAX_DEPTH:
        raise Unsupported(f"the value of '{name}' nests lists and maps more than {_MAX_DEPTH} deep")
    if not children:
        return text_value(holder.text, name)
    if len(children) > 1 or (holder.text or "").strip():
        raise Unsupported(f"the value of '{name}' mixes text and elements; write one text, list or map")
    child = children[0]
    if child.tag == _camunda("list"):
        return {"list": [_value(item, name, depth + 1) for item in _items(child, "value", name)]}
    if child.tag == _camunda("map"):
        return {"map": [[_entry_key(entry, name), _value(entry, name, depth + 1)]
                        for entry in _items(child, "entry", name)]}
    if child.tag == _camunda("script"):
        language = child.get("scriptFormat") or "unknown language"
        raise Unsupported(f"the value of '{name}' is a script ({language}), which CarePath does not run; write "
                          "a literal or an expression such as ${amount * 2} instead")
    raise Unsupported(f"the value of '{name}' is a '{local_name(child)}', which CarePath does not read")


def _items(container: Element, tag: str, name: str) -> list[Element]:
    items = [child for child in container if isinstance(child.tag, str)]
    for item in items:
        if item.tag != _camunda(tag):
            raise Unsupported(f"the {local_name(container)} of '{name}' holds a '{local_name(item)}', "
                              f"expected camunda:{tag}")
    return items


def _entry_key(entry: Element, name: str) -> str:
    key = entry.get("key")
    if key is None:
        raise Unsupported(f"an entry of the map of '{name}' has no key")
    return key


def text_value(text: str | None, name: str) -> Value:
    """A literal text, or one JUEL / FEEL expression translated into the sandbox language."""
    if text is None or not text.strip():
        return {"literal": None if text is None else text}
    stripped = text.strip()
    if camunda_dialect(stripped) is None:
        if "${" in stripped or "#{" in stripped:
            raise Unsupported(f"the value of '{name}', '{_short(stripped)}', mixes text and an expression; "
                              "CarePath takes a literal text or one expression")
        return {"literal": text}
    try:
        translated = translate(stripped).text
        check_expression(translated)
    except OutsideSubset as outside:
        raise Unsupported(f"the value of '{name}', '{_short(stripped)}', uses '{_short(outside.fragment)}': "
                          f"{outside.message}. {SUPPORTED}") from None
    except Exception as exc:  # the sandbox refuses the translation (e.g. too long)
        raise Unsupported(f"the value of '{name}', '{_short(stripped)}', cannot be evaluated: {exc}") from None
    return {"expression": translated, "original": stripped}


def _short(text: str) -> str:
    return text if len(text) <= 80 else text[:77] + "..."


def io_mapping_problems(site: Site) -> Iterator[Problem]:
    """Refuse a mapping CarePath would otherwise ignore: on an element that is not a task, or unsupported."""
    if not mapping_elements(site.element):
        return
    if local_name(site.element) not in TASK_NAMES:
        yield site.problem(f"{describe(site.element)} has camunda:inputOutput, which CarePath reads only on "
                           "tasks. Move the mapping onto a task, or remove it.")
        return
    if site.element.xpath("./bpmn:multiInstanceLoopCharacteristics | ./bpmn:standardLoopCharacteristics",
                          namespaces=NSMAP):
        yield site.problem(f"{describe(site.element)} repeats (multi-instance or loop) and has camunda:inputOutput, "
                           "which CarePath does not run on repeating tasks yet. Move the mapping onto a task "
                           "before or after it, or remove it.")
        return
    try:
        parameters_of(site.element)
    except Unsupported as unsupported:
        yield site.problem(f"{describe(site.element)} has an input/output mapping CarePath cannot run: "
                           f"{unsupported}.")


def data_specs_of(element: Element, extra: Extra | None = None) -> tuple[list[Any], list[Any]]:
    """The data specs the parser adds to the task's input and output associations (both when any mapping:
    the output spec also ends the task's local variables). `extra` adds parameters of the element's own
    (a connector's): its inputs after the task's, its outputs before the task's."""
    added = extra(element) if extra is not None else None
    if local_name(element) not in TASK_NAMES or not (mapping_elements(element) or added):
        return [], []
    inputs, outputs = parameters_of(element)
    if added:
        inputs, outputs = inputs + added[0], added[1] + outputs
    return [InputParameters(INPUTS_ID, parameters=inputs)], [OutputParameters(OUTPUTS_ID, parameters=outputs)]


def io_mapping_parser(base: type, extra: Extra | None = None) -> type:
    """The task parser `base`, also reading the task's camunda:inputOutput (and `extra`'s parameters) into its
    data associations."""

    class IoMappingParser(base):
        def parse_incoming_data_references(self) -> list[Any]:
            return list(super().parse_incoming_data_references()) + data_specs_of(self.node, extra)[0]

        def parse_outgoing_data_references(self) -> list[Any]:
            return list(super().parse_outgoing_data_references()) + data_specs_of(self.node, extra)[1]

    IoMappingParser.__name__ = f"IoMapping{base.__name__}"
    return IoMappingParser


def shown_mappings(documents: list[Document]) -> list[ShownMapping]:
    """Every supported mapping of the package, as `carepath validate` lists it."""
    shown: list[ShownMapping] = []
    for document in documents:
        if document.kind != "bpmn":
            continue
        for task in document.root.iter():
            mappings = mapping_elements(task) if isinstance(task.tag, str) else []
            if not mappings or local_name(task) not in TASK_NAMES:
                continue
            try:
                inputs, outputs = parameters_of(task)
            except Unsupported:
                continue  # refused by the checks
            for direction, parameters in (("input", inputs), ("output", outputs)):
                shown += [ShownMapping(document.name, mappings[0].sourceline, task.get("id"), direction, name,
                                       _shown(value)) for name, value in parameters]
    return shown


def _shown(value: Value) -> str:
    if "literal" in value:
        return repr(value["literal"])
    if "expression" in value:
        return f"{value['original']} -> {value['expression']}"
    if "list" in value:
        return "[" + ", ".join(_shown(item) for item in value["list"]) + "]"
    return "{" + ", ".join(f"{key!r}: {_shown(item)}" for key, item in value["map"]) + "}"
