"""Built-in connectors declared in a diagram: an HTTP request, a FHIR create/update, a notification.

Read from what editors write (docs/connectors.md):
    Camunda 8   <zeebe:taskDefinition type="io.camunda:http-json:1" retries="3"/> (carepath:fhir:1,
                carepath:notification:1) with zeebe:ioMapping inputs (source -> target) and the task headers
                resultVariable, resultExpression (a FEEL context {a: x.y}) and retryBackoff (PT10S)
    Camunda 7   <camunda:connector> with connectorId http-connector (carepath-fhir, carepath-notification) and
                its camunda:inputOutput: input parameters, output parameters over response/statusCode/headers
    spiff-arena <spiffworkflow:serviceTaskOperator id="http/GetRequestV2" resultVariable="r"> (Post, Put, Patch,
                Delete too) with spiffworkflow:parameter url, headers, params, data, attempts
A connector task is an external task on a reserved topic (CONNECTOR_TOPICS) that CarePath's own deliverer
fetches (usecases/connector_calls.py). Its inputs become the task's input parameters (local variables,
evaluated when the task starts, stored with its row), its result names (`response`, and Camunda 7's
`statusCode`, `headers`) are local too, and its result mapping becomes output parameters
(runtime/io_mappings.py), so the completion maps the response into the process data and drops the rest.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass

from ..connector_destinations import FHIR_DESTINATION, Destination, OutsideDestinations, destination_for
from ..runtime.io_mappings import Parameter, Value
from ..sandbox.expressions import check_expression
from ._camunda_expressions import translate
from ._camunda_syntax import OutsideSubset
from ._documents import NSMAP, Element
from ._io_mappings import Unsupported, parameters_in, text_value
from ._walk import Site

HTTP, FHIR, NOTIFICATION = "http", "fhir", "notification"
TOPIC_PREFIX = "carepath.connector."
CONNECTOR_TOPICS = {kind: TOPIC_PREFIX + kind for kind in (HTTP, FHIR, NOTIFICATION)}
CONFIG = "carepath.connector"  # the input holding the call's settings (never a variable a diagram writes)
CAMUNDA8_TYPES = {"io.camunda:http-json:1": HTTP, "carepath:fhir:1": FHIR, "carepath:notification:1": NOTIFICATION}
CAMUNDA7_IDS = {"http-connector": HTTP, "carepath-fhir": FHIR, "carepath-notification": NOTIFICATION}
# spiff-arena's HTTP operators (its connector-http, version 2 responses): the method each sends.
SPIFF_OPERATORS = {f"http/{verb.title()}RequestV2": verb for verb in ("GET", "POST", "PUT", "PATCH", "DELETE")}
SPIFF_PARAMETERS = {"url": "url", "headers": "headers", "params": "queryParameters", "data": "body"}
RESULTS = {"camunda7": ("response", "statusCode", "headers"), "camunda8": ("response",), "spiff": ("response",)}
REQUIRED = {HTTP: ("method", "url"), FHIR: ("operation", "resourceType", "resource"),
            NOTIFICATION: ("recipients", "title", "message")}
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
DEFAULT_RETRIES = 3
_DURATION = re.compile(r"^PT(?:(\d{1,5})H)?(?:(\d{1,6})M)?(?:(\d{1,7})S)?$")
_KEY = re.compile(r"^[A-Za-z_][\w]*$")
_HEADERS = {"resultVariable", "resultExpression", "retryBackoff"}


@dataclass(frozen=True)
class Connector:
    kind: str
    style: str  # "camunda7" | "camunda8" | "spiff": the shape of the response the mapping reads
    written: str
    inputs: list[Parameter]
    outputs: list[Parameter]
    retries: int
    backoff_s: int


def declared_connector(element: Element) -> tuple[str, str] | None:
    """(kind, how it is written) when the element declares a built-in connector, without reading it further."""
    zeebe = element.xpath("./bpmn:extensionElements/zeebe:taskDefinition/@type", namespaces=NSMAP)
    if zeebe and str(zeebe[0]).strip() in CAMUNDA8_TYPES:
        return CAMUNDA8_TYPES[str(zeebe[0]).strip()], f"the Camunda 8 connector '{str(zeebe[0]).strip()}'"
    ids = element.xpath("./bpmn:extensionElements/camunda:connector/camunda:connectorId/text()", namespaces=NSMAP)
    if ids and str(ids[0]).strip() in CAMUNDA7_IDS:
        return CAMUNDA7_IDS[str(ids[0]).strip()], f"the Camunda connector '{str(ids[0]).strip()}'"
    operator = element.xpath("./bpmn:extensionElements/spiffworkflow:serviceTaskOperator/@id", namespaces=NSMAP)
    if operator and str(operator[0]) in SPIFF_OPERATORS:
        return HTTP, f"the SpiffWorkflow service operator '{operator[0]}'"
    return None


def connector_of(element: Element) -> Connector | None:
    """The element's built-in connector, or None; raises Unsupported saying what cannot run."""
    declared = declared_connector(element)
    if declared is None:
        return None
    kind, written = declared
    if element.xpath("./bpmn:extensionElements/zeebe:taskDefinition", namespaces=NSMAP):
        return _camunda8(element, kind, written)
    operator = element.xpath("./bpmn:extensionElements/spiffworkflow:serviceTaskOperator", namespaces=NSMAP)
    if operator and operator[0].get("id") in SPIFF_OPERATORS:
        return _spiff(operator[0], written)
    return _camunda7(element, kind, written)


def _camunda8(element: Element, kind: str, written: str) -> Connector:
    definition = element.xpath("./bpmn:extensionElements/zeebe:taskDefinition", namespaces=NSMAP)[0]
    retries = _whole(definition.get("retries") or str(DEFAULT_RETRIES), "retries", 0, 100)
    inputs: list[Parameter] = []
    for item in element.xpath("./bpmn:extensionElements/zeebe:ioMapping/*", namespaces=NSMAP):
        target = (item.get("target") or "").strip()
        if item.tag.endswith("}output"):
            raise Unsupported(f"zeebe:output '{target}' is not read on a connector; map its result with the task "
                              "headers resultVariable or resultExpression")
        if not target:
            raise Unsupported("a zeebe:input has no target")
        inputs.append((target, _feel_value(item.get("source") or "", target)))
    headers = {str(h.get("key")): str(h.get("value") or "") for h in element.xpath(
        "./bpmn:extensionElements/zeebe:taskHeaders/zeebe:header", namespaces=NSMAP)}
    unknown = sorted(set(headers) - _HEADERS)
    if unknown:
        raise Unsupported(f"the task header '{unknown[0]}' is not read (CarePath reads {', '.join(sorted(_HEADERS))})")
    outputs: list[Parameter] = []
    if headers.get("resultVariable", "").strip():
        outputs.append((headers["resultVariable"].strip(), _expression("=response", "resultVariable")))
    if headers.get("resultExpression", "").strip():
        outputs += _context_entries(headers["resultExpression"].strip(), "resultExpression")
    backoff = _backoff(headers.get("retryBackoff"))
    return Connector(kind, "camunda8", written, inputs, outputs, retries, backoff)


def _camunda7(element: Element, kind: str, written: str) -> Connector:
    mappings = list(element.xpath("./bpmn:extensionElements/camunda:connector/camunda:inputOutput",
                                  namespaces=NSMAP))
    inputs, outputs = parameters_in(mappings)
    return Connector(kind, "camunda7", written, inputs, outputs, DEFAULT_RETRIES, 0)


def _spiff(operator: Element, written: str) -> Connector:
    """spiff-arena's operator: each parameter's value is an expression of the sandbox language (a quoted text
    is a literal); basic-auth credentials are refused (they belong to the destination)."""
    inputs: list[Parameter] = [("method", {"literal": SPIFF_OPERATORS[str(operator.get("id"))]})]
    retries = DEFAULT_RETRIES
    for parameter in operator.xpath("./spiffworkflow:parameters/spiffworkflow:parameter", namespaces=NSMAP):
        name, value = str(parameter.get("id") or ""), (parameter.get("value") or "").strip()
        if not value:
            continue
        if name.startswith("basic_auth"):
            raise Unsupported(f"it sets {name}; credentials never sit in a diagram: set them on the destination "
                              "(CAREPATH_CONNECTOR_DESTINATIONS, bearer_token_env)")
        if name == "attempts":
            retries = _whole(value, "attempts", 0, 100)
        elif name in SPIFF_PARAMETERS:
            inputs.append((SPIFF_PARAMETERS[name], _sandbox_value(value, name)))
        else:
            raise Unsupported(f"the parameter '{name[:40]}' is not one CarePath reads "
                              f"({', '.join([*SPIFF_PARAMETERS, 'attempts'])})")
    result = (operator.get("resultVariable") or "").strip()
    outputs = [(result, _expression("=response", "resultVariable"))] if result else []
    return Connector(HTTP, "spiff", written, inputs, outputs, retries, 0)


def _sandbox_value(text: str, name: str) -> Value:
    try:
        literal = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        literal = None
    if isinstance(literal, str):
        return {"literal": literal}
    try:
        check_expression(text)
    except Exception as exc:  # the sandbox refuses it
        raise Unsupported(f"the parameter '{name}', '{text[:80]}', cannot be evaluated: {exc}") from None
    return {"expression": text, "original": text}


def connector_parameters(element: Element) -> tuple[list[Parameter], list[Parameter]] | None:
    """The input and output parameters the connector adds to its task (None: no connector): its settings,
    its inputs, its result names (local), its result mapping."""
    try:
        connector = connector_of(element)
    except Unsupported:
        return None  # refused by the checks
    if connector is None:
        return None
    config = {"kind": connector.kind, "style": connector.style, "retries": connector.retries,
              "backoff_s": connector.backoff_s}
    settings: Value = {"map": [[key, {"literal": value}] for key, value in config.items()]}
    names = {name for name, _ in connector.inputs}
    results = [(name, {"literal": None}) for name in RESULTS[connector.style] if name not in names]
    return [(CONFIG, settings), *connector.inputs, *results], connector.outputs


def _feel_value(source: str, target: str) -> Value:
    """A Camunda 8 input's source: a literal, a FEEL expression, or a FEEL context literal ={a: x, b: "y"}."""
    stripped = source.strip()
    if stripped.startswith("={") and stripped.endswith("}"):
        return {"map": [[key, value] for key, value in _context_entries(stripped, target)]}
    return text_value(source, target)


def _expression(text: str, name: str) -> Value:
    try:
        return {"expression": translate(text).text, "original": text}
    except OutsideSubset as outside:
        raise Unsupported(f"the {name} '{text[:80]}' uses '{outside.fragment[:80]}': {outside.message}") from None


def _context_entries(text: str, name: str) -> list[Parameter]:
    """The entries of a FEEL context literal `={a: x.y, "b": {c: 1}}`, each value translated."""
    body = text[1:].strip() if text.startswith("=") else text
    if not (body.startswith("{") and body.endswith("}")):
        raise Unsupported(f"the {name} '{text[:80]}' is not a FEEL context such as ={{id: response.body.id}}")
    entries: list[Parameter] = []
    for entry in _split_top(body[1:-1], ","):
        key, separator, value = entry.partition(":")
        key = key.strip().strip('"')
        if not separator or not _KEY.match(key) or not value.strip():
            raise Unsupported(f"the {name} '{text[:80]}' has the entry '{entry.strip()[:60]}'; write name: value")
        value = value.strip()
        nested = value.startswith("{") and value.endswith("}")
        entries.append((key, {"map": [[k, v] for k, v in _context_entries(value, name)]} if nested
                        else _expression("=" + value, name)))
    return entries


def _split_top(text: str, separator: str) -> list[str]:
    """`text` split at the separators outside brackets and strings."""
    parts, depth, quote, start = [], 0, "", 0
    for position, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == separator and depth == 0:
            parts.append(text[start:position])
            start = position + 1
    tail = text[start:]
    return [*parts, tail] if tail.strip() or parts else parts


def _whole(text: str, name: str, low: int, high: int) -> int:
    if not text.strip().isdigit() or not low <= int(text) <= high:
        raise Unsupported(f"{name} '{text[:20]}' is not a whole number from {low} to {high}")
    return int(text)


def _backoff(text: str | None) -> int:
    if not text:
        return 0  # the server's default (CAREPATH_CONNECTOR_RETRY_SECONDS)
    match = _DURATION.match(text.strip())
    if not match or not any(match.groups()):
        raise Unsupported(f"retryBackoff '{text[:40]}' is not a duration such as PT10S or PT5M")
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def connector_problems(site: Site, destinations: dict[str, Destination]) -> Iterator[str]:
    """Why the element's connector cannot run, in words (the caller locates them)."""
    try:
        connector = connector_of(site.element)
    except Unsupported as unsupported:
        yield f"{unsupported}"
        return
    if connector is None:
        return
    if site.element.xpath("./bpmn:multiInstanceLoopCharacteristics | ./bpmn:standardLoopCharacteristics",
                          namespaces=NSMAP):
        yield ("it repeats (multi-instance or loop), and CarePath does not run a connector on a repeating task yet; "
               "put the connector in a subprocess that repeats")
        return
    given = dict(connector.inputs)
    missing = [name for name in REQUIRED[connector.kind] if name not in given]
    if connector.kind == HTTP and connector.style != "camunda7" and "url" in missing:
        missing.remove("url")
        yield "it has no input 'url'"
    if missing:
        yield f"it has no input {', '.join(repr(name) for name in missing)}"
    yield from _literal_problems(connector, given, destinations)


def _literal_problems(connector: Connector, given: dict[str, Value], destinations: dict[str, Destination]
                      ) -> Iterator[str]:
    method, url = _literal(given.get("method")), given.get("url")
    if connector.kind == HTTP:
        if method is not None and method.upper() not in METHODS:
            yield f"the method '{method}' is not one of {', '.join(sorted(METHODS))}"
        if url is not None and _literal(url) is None:
            yield ("its url is an expression; CarePath needs the URL written out, under a destination of "
                   "CAREPATH_CONNECTOR_DESTINATIONS, so that a diagram cannot choose the host")
        elif url is not None:
            try:
                destination_for(str(_literal(url)), destinations)
            except OutsideDestinations as outside:
                yield f"its url {outside}"
        auth = _literal(given.get("authentication.type"))
        if auth not in {None, "noAuth"}:
            yield (f"its authentication is '{auth}'; credentials never sit in a diagram: set them on the "
                   "destination (CAREPATH_CONNECTOR_DESTINATIONS, bearer_token_env) and choose noAuth")
    if connector.kind == FHIR:
        if FHIR_DESTINATION not in destinations:
            yield (f"no FHIR server is configured: add a destination named '{FHIR_DESTINATION}' to "
                   "CAREPATH_CONNECTOR_DESTINATIONS")
        operation = _literal(given.get("operation"))
        if operation is not None and operation not in {"create", "update"}:
            yield f"the operation '{operation}' is not create or update"
        if operation == "update" and "resourceId" not in given:
            yield "an update needs the input 'resourceId'"
        resource_type = _literal(given.get("resourceType"))
        if resource_type is not None and not re.fullmatch(r"[A-Z][A-Za-z]{1,63}", resource_type):
            yield f"the resourceType '{resource_type[:64]}' is not a FHIR resource type such as ServiceRequest"
    if connector.kind == NOTIFICATION:
        recipients = _literal(given.get("recipients"))
        for recipient in (recipients or "").replace(";", ",").split(",") if recipients else ():
            if recipient.strip() and recipient.strip().split(":", 1)[0] not in {"group", "user", "role"}:
                yield f"the recipient '{recipient.strip()[:80]}' is not group:NAME, user:NAME or role:NAME"


def _literal(value: Value | None) -> str | None:
    if value is None or "literal" not in value or value["literal"] is None:
        return None
    return str(value["literal"]).strip()


__all__ = ["CONFIG", "CONNECTOR_TOPICS", "FHIR", "HTTP", "NOTIFICATION", "TOPIC_PREFIX", "Connector",
           "connector_of", "connector_parameters", "connector_problems", "declared_connector"]
