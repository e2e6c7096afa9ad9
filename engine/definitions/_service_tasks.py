"""What does a service task's work: an external worker for a topic, or something CarePath cannot run.

A service task for a topic waits for an external worker (runtime/external_tasks.py):
    Camunda 7      camunda:type="external" camunda:topic="send-sms"  (camunda:taskPriority, optional)
    Camunda 8      <zeebe:taskDefinition type="send-sms"/>
    CarePath       carepath:topic="send-sms" carepath:variables="phone, message" carepath:priority="10"
                   (xmlns:carepath="http://carepath.org/schema/bpmn/1.0"); on a Camunda 7 task the variables
                   may also be the property carepath.variables (the element template writes it there)
A built-in connector (HTTP, FHIR, notification: _connectors.py) is an external task on a reserved topic that
CarePath's own deliverer does (usecases/connector_calls.py).
Anything else that names an implementation (a Java class, a delegate or method expression, another connector,
another SpiffWorkflow service operator) cannot run here: the deploy refuses it and says how to make it an external
task, unless the deployment opts in (CAREPATH_UNKNOWN_SERVICE_TASKS=external): then it becomes an external
task on a topic named after it, with a warning saying so. Never accepted and then silent.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import Problem
from ..runtime.external_tasks import external_spec_class
from ._connectors import CONNECTOR_TOPICS, TOPIC_PREFIX, connector_problems, declared_connector
from ._describe import describe
from ._documents import CAMUNDA_NS, NSMAP, ZEEBE_NS, Element, local_name
from ._walk import Site

CAREPATH_NS = "http://carepath.org/schema/bpmn/1.0"
UNKNOWN_AS_EXTERNAL = "external"  # the opt-in value of CAREPATH_UNKNOWN_SERVICE_TASKS
REFUSE_UNKNOWN = "refuse"
MAX_TOPIC = 255
_NAMESPACES = {**NSMAP, "carepath": CAREPATH_NS}
_JAVA = {"class": "a Java class", "delegateExpression": "a delegate expression", "expression": "an expression"}
_EXPRESSION_NAME = re.compile(r"^\s*[$#]\{\s*([A-Za-z_][\w.]*)")


@dataclass(frozen=True)
class Implementation:
    """What a service task names as its implementation. `external`: it asks for a worker by topic;
    otherwise `written` says what CarePath cannot run, and `topic` is the name it would wait on if allowed."""

    external: bool
    topic: str
    written: str  # e.g. "camunda:class 'org.example.SendSms'"
    what: str = ""  # e.g. "a Java class"
    variables: tuple[str, ...] | None = None
    priority: str | None = None
    connector: str | None = None  # a built-in connector's kind (http, fhir, notification)


def implementation_of(element: Element) -> Implementation | None:
    """The implementation a service or send task names, or None (it names none)."""
    if local_name(element) not in {"serviceTask", "sendTask"}:
        return None
    variables, priority = _requested_variables(element), _priority(element)
    connector = declared_connector(element)
    if connector is not None:  # hands its worker (CarePath) its inputs only, never the rest of the data
        kind, written = connector
        return Implementation(True, CONNECTOR_TOPICS[kind], written, "", (), priority, kind)
    topic = element.get(f"{{{CAREPATH_NS}}}topic")
    if topic is not None:
        return Implementation(True, topic.strip(), f"carepath:topic '{topic}'", "", variables, priority)
    camunda_type = element.get(f"{{{CAMUNDA_NS}}}type")
    if camunda_type == "external":
        topic = (element.get(f"{{{CAMUNDA_NS}}}topic") or "").strip()
        return Implementation(True, topic, f"camunda:topic '{topic}'", "", variables, priority)
    zeebe = _first(element, "./bpmn:extensionElements/zeebe:taskDefinition/@type")
    if zeebe is not None and not zeebe.startswith("io.camunda:"):
        return Implementation(True, zeebe.strip(), f"zeebe:taskDefinition type '{zeebe}'", "", variables, priority)
    return _unknown(element, camunda_type, zeebe)


def _unknown(element: Element, camunda_type: str | None, zeebe: str | None) -> Implementation | None:
    for attribute, what in _JAVA.items():
        value = element.get(f"{{{CAMUNDA_NS}}}{attribute}")
        if value:
            return Implementation(False, _topic_from(value), f"camunda:{attribute} '{value}'", what)
    connector = _first(element, "./bpmn:extensionElements/camunda:connector/camunda:connectorId/text()")
    if connector:
        return Implementation(False, connector.strip(), f"the Camunda connector '{connector.strip()}'", "a connector")
    if zeebe:
        return Implementation(False, zeebe, f"the Camunda 8 connector '{zeebe}'", "a connector")
    operator = _first(element, "./bpmn:extensionElements/spiffworkflow:serviceTaskOperator/@id")
    if operator:
        return Implementation(False, operator, f"the SpiffWorkflow service operator '{operator}'", "a connector")
    if camunda_type:
        return Implementation(False, camunda_type, f"camunda:type '{camunda_type}'", "a connector")
    return None


def _first(element: Element, path: str) -> str | None:
    found = element.xpath(path, namespaces=_NAMESPACES)
    return str(found[0]) if found else None


def _topic_from(value: str) -> str:
    """The topic an opted-in Java implementation waits on: the class name, or the bean and method an
    expression names (`${mailer.send(x)}` -> `mailer.send`)."""
    match = _EXPRESSION_NAME.match(value)
    return match.group(1) if match else value.strip()[:MAX_TOPIC]


def _requested_variables(element: Element) -> tuple[str, ...] | None:
    text = element.get(f"{{{CAREPATH_NS}}}variables")
    if text is None:
        text = _first(element, "./bpmn:extensionElements/camunda:properties/camunda:property"
                               "[@name='carepath.variables']/@value")
    if text is None:
        return None
    return tuple(name for name in (part.strip() for part in text.replace(";", ",").split(",")) if name)


def _priority(element: Element) -> str | None:
    return element.get(f"{{{CAREPATH_NS}}}priority") or element.get(f"{{{CAMUNDA_NS}}}taskPriority")


def opted_in(site: Site) -> bool:
    return getattr(site.index, "unknown_service_tasks", REFUSE_UNKNOWN) == UNKNOWN_AS_EXTERNAL


def service_task_problems(site: Site) -> Iterator[Problem]:
    """Refusals: an external task without a usable topic or priority; anything else unless opted in."""
    found = implementation_of(site.element)
    if found is None or _sends_message(site.element):
        return
    if found.connector:
        destinations = getattr(site.index, "connector_destinations", None) or {}
        for why in connector_problems(site, destinations):
            yield site.problem(f"{describe(site.element)} uses {found.written}, which CarePath cannot run as "
                               f"written: {why}. See docs/connectors.md.")
    elif found.external:
        yield from _external_problems(site, found)
    elif not opted_in(site):
        yield site.problem(
            f"{describe(site.element)} is implemented with {found.written}, {found.what} CarePath cannot run. "
            "Make it an external task, done by a worker that fetches it from CarePath (docs/external-tasks.md): "
            "in Camunda Modeler select the task, set Implementation to 'External' and enter a Topic (Camunda 8: "
            "a job type; other editors: the attribute carepath:topic), or use a built-in connector (HTTP, FHIR, "
            "notification: docs/connectors.md). To "
            "accept such diagrams as they are, the server's administrator can set "
            f"CAREPATH_UNKNOWN_SERVICE_TASKS=external: the task then waits for a worker on topic '{found.topic}'.")


def _external_problems(site: Site, found: Implementation) -> Iterator[Problem]:
    if not found.topic:
        yield site.problem(f"{describe(site.element)} is an external task without a topic. Enter the Topic "
                           "its workers fetch (Camunda Modeler: Implementation 'External' → Topic).")
    elif "${" in found.topic or "#{" in found.topic or found.topic.startswith("="):
        yield site.problem(f"{describe(site.element)} chooses its topic with the expression '{found.topic}'. "
                           "CarePath needs a fixed topic name, such as send-reminder.")
    elif found.topic.startswith(TOPIC_PREFIX):
        yield site.problem(f"{describe(site.element)} has the topic '{found.topic}', reserved for CarePath's "
                           "built-in connectors. Choose another topic, or declare the connector (docs/connectors.md).")
    elif len(found.topic) > MAX_TOPIC:
        yield site.problem(f"{describe(site.element)} has a topic longer than {MAX_TOPIC} characters.")
    if found.priority is not None and not re.fullmatch(r"-?\d{1,9}", found.priority.strip()):
        yield site.problem(f"{describe(site.element)} has the task priority '{found.priority}'. CarePath needs a "
                           "whole number (higher is fetched first).")


def service_task_warnings(site: Site) -> Iterator[Problem]:
    """Warnings: an opted-in implementation now waits for a worker; a send task's implementation is not run;
    a service task that names nothing does nothing."""
    element = site.element
    found = implementation_of(element)
    if found is None:
        if local_name(element) == "serviceTask" and site.index.family != "spiff":
            yield site.problem(f"{describe(element)} says nothing about what does its work, so CarePath passes "
                               "it without doing anything. To have a worker do it, make it an external task "
                               "with a topic (docs/external-tasks.md).")
        return
    if _sends_message(element):
        yield site.problem(f"{describe(element)} sends its message; its {found.written} is not run.")
    elif not found.external and opted_in(site):
        yield site.problem(f"{describe(element)} is implemented with {found.written}, {found.what} CarePath "
                           "cannot run. As the setting CAREPATH_UNKNOWN_SERVICE_TASKS=external says, it becomes "
                           f"an external task: it waits for a worker on topic '{found.topic}'.")


def _sends_message(element: Element) -> bool:
    return local_name(element) == "sendTask" and bool(
        element.get("messageRef") or element.xpath("./bpmn:messageEventDefinition", namespaces=NSMAP))


def external_task_parser(base: type, family: str) -> type:
    """A subclass of the family's service task parser that makes a task with an implementation an external
    task (the checks have refused those that may not be one); a task without one is parsed as before."""

    class ExternalTaskParser(base):
        def create_task(self) -> Any:
            found = implementation_of(self.node)
            if found is None or _sends_message(self.node):
                return super().create_task()
            extra: dict[str, Any] = {}
            if family == "spiff":
                extensions = self.parse_extensions()
                extra = {"prescript": extensions.get("preScript"), "postscript": extensions.get("postScript")}
            priority = int(found.priority.strip()) if found.priority else 0
            variables = list(found.variables) if found.variables is not None else None
            return external_spec_class(family)(self.spec, self.bpmn_id, topic=found.topic, variables=variables,
                                               priority=priority, **extra, **self.bpmn_attributes)

    ExternalTaskParser.__name__ = f"ExternalTaskParser_{family}"
    return ExternalTaskParser


__all__ = ["CAREPATH_NS", "REFUSE_UNKNOWN", "UNKNOWN_AS_EXTERNAL", "ZEEBE_NS", "Implementation",
           "external_task_parser", "implementation_of", "service_task_problems", "service_task_warnings"]
