"""Choose the SpiffWorkflow parser from the extension namespaces a package really uses.

Editors declare namespaces they never use (every bpmn.io file declares camunda:), and the
`exporter` attribute says nothing about the content, so the choice counts elements and attributes
actually written in the Camunda or SpiffWorkflow namespace. One parser reads the whole package.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from lxml import etree
from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnParser, full_tag
from SpiffWorkflow.camunda.parser.CamundaParser import CamundaParser
from SpiffWorkflow.dmn.parser.BpmnDmnParser import BpmnDmnParser
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser

from ..errors import Problem
from ._connectors import connector_parameters, declared_connector
from ._documents import ACTIVITI_NS, BPMN_NS, CAMUNDA_NS, SPIFF_NS, ZEEBE_NS, Document, iter_elements
from ._io_mappings import TASK_NAMES, io_mapping_parser
from ._service_tasks import external_task_parser


def _with_external_tasks(parser: type[BpmnDmnParser], family: str) -> type[BpmnDmnParser]:
    """The family's parser, reading service and send tasks that name an implementation as external tasks,
    and every task's camunda:inputOutput (_io_mappings.py)."""
    overrides = dict(parser.OVERRIDE_PARSER_CLASSES)
    for tag in (full_tag("serviceTask"), full_tag("sendTask")):
        base_parser, spec_class = overrides.get(tag) or BpmnParser.PARSER_CLASSES[tag]
        overrides[tag] = (external_task_parser(base_parser, family), spec_class)
    for name in TASK_NAMES:
        tag = full_tag(name)
        found = overrides.get(tag) or BpmnParser.PARSER_CLASSES.get(tag)
        if found is not None:  # the plain BPMN parser has no business rule task
            overrides[tag] = (io_mapping_parser(found[0], connector_parameters), found[1])
    return type(f"CarePath{parser.__name__}", (parser,), {"OVERRIDE_PARSER_CLASSES": overrides})


PARSER_CLASSES: dict[str, type[BpmnDmnParser]] = {
    "bpmn": _with_external_tasks(BpmnDmnParser, "bpmn"),
    "camunda": _with_external_tasks(CamundaParser, "camunda"),
    "spiff": _with_external_tasks(SpiffBpmnParser, "spiff"),
}

_IGNORED_DIALECTS = {
    ZEEBE_NS: ("Camunda 8 (Zeebe)", "zeebe:calledElement, zeebe:calledDecision, zeebe:ioMapping"),
    ACTIVITI_NS: ("Activiti", "activiti:assignee, activiti:formKey"),
}


@dataclass
class FamilyChoice:
    family: str
    warnings: list[Problem] = field(default_factory=list)


def new_parser(family: str) -> BpmnDmnParser:
    """A fresh parser of the family; validation is done by the importer, so none is attached."""
    return PARSER_CLASSES[family]()


def choose_family(documents: Sequence[Document]) -> FamilyChoice:
    uses = {document.name: namespace_uses(document) for document in documents if document.kind == "bpmn"}
    camunda = sum(counts[CAMUNDA_NS] for counts in uses.values())
    spiff = sum(counts[SPIFF_NS] for counts in uses.values())
    # SpiffWorkflow's own dialect wins a tie: it is the one the engine underneath speaks natively.
    family = "spiff" if spiff and spiff >= camunda else "camunda" if camunda else "bpmn"
    choice = FamilyChoice(family)
    if camunda and spiff:
        ignored, ignored_count = ("Camunda", camunda) if family == "spiff" else ("SpiffWorkflow", spiff)
        choice.warnings.append(Problem(
            f"The upload uses both Camunda extensions ({camunda}) and SpiffWorkflow extensions ({spiff}). "
            f"CarePath reads it with the {'SpiffWorkflow' if family == 'spiff' else 'Camunda'} parser and "
            f"ignores the {ignored_count} {ignored} extension(s). Keep to one modelling tool per pathway."))
    for name, counts in uses.items():
        for namespace, (dialect, examples) in _IGNORED_DIALECTS.items():
            if counts[namespace]:
                choice.warnings.append(Problem(
                    f"The file uses {counts[namespace]} {dialect} extension(s) (such as {examples}), which "
                    "CarePath does not read; they are ignored.", name))
    return choice


_CONNECTOR_PARTS = frozenset({"ioMapping", "input", "taskHeaders", "header"})
# Camunda Modeler's marks of an applied Camunda 8 element template: they do nothing when the diagram runs.
_TEMPLATE_MARKS = frozenset(f"{{{ZEEBE_NS}}}{name}" for name in ("modelerTemplate", "modelerTemplateVersion",
                                                                  "modelerTemplateIcon"))


def namespace_uses(document: Document) -> Counter[str]:
    """How many elements and attributes of the document are in each namespace (a Camunda 8 task definition
    of a service or send task is not counted: CarePath reads it as an external task's topic or a connector, nor are
    a connector's inputs and headers)."""
    counts: Counter[str] = Counter()
    for element in iter_elements(document.root):
        if _read_task_definition(element):
            continue
        counts[etree.QName(element).namespace or ""] += 1
        for attribute in element.attrib:
            if attribute.startswith("{") and attribute not in _TEMPLATE_MARKS:
                counts[etree.QName(attribute).namespace or ""] += 1
    return counts


def _read_task_definition(element: etree._Element) -> bool:
    """A Camunda 8 element CarePath reads: a service or send task's task definition (a topic, a connector), and
    a built-in connector's inputs and task headers (_connectors.py)."""
    if etree.QName(element).namespace != ZEEBE_NS:
        return False
    owner = next((ancestor for ancestor in element.iterancestors()
                  if ancestor.tag in {f"{{{BPMN_NS}}}serviceTask", f"{{{BPMN_NS}}}sendTask"}), None)
    if owner is None:
        return False
    return element.tag == f"{{{ZEEBE_NS}}}taskDefinition" or (
        etree.QName(element).localname in _CONNECTOR_PARTS and declared_connector(owner) is not None)
