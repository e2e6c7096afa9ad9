"""What the package holds, indexed once: processes, executability, DMN decisions, and where findings sit."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import Problem
from ._documents import Document, Element, bpmn, local_name
from ._executability import is_executable

# Elements SpiffWorkflow parses with a process parser of their own.
SCOPE_TAGS = frozenset({"process", "subProcess", "transaction", "adHocSubProcess"})


def enclosing_scope(element: Element) -> Element | None:
    """The process or subprocess whose SpiffWorkflow parser reads `element` (a process is its own)."""
    if local_name(element) == "process":
        return element
    parent = element.getparent()
    while parent is not None and local_name(parent) not in SCOPE_TAGS:
        parent = parent.getparent()
    return parent


def parse_scope_id(scope: Element) -> str | None:
    """The id of the process or subprocess whose get_spec parses `scope`'s content.

    SpiffWorkflow parses an event subprocess while it parses the process around it.
    """
    while local_name(scope) == "subProcess" and scope.get("triggeredByEvent") == "true":
        parent = scope.getparent()
        outer = enclosing_scope(parent) if parent is not None else None
        if outer is None:
            break
        scope = outer
    return scope.get("id")


@dataclass(frozen=True)
class Finding:
    """A refusing problem and the id of the process or subprocess where SpiffWorkflow would trip on it."""

    problem: Problem
    scope_id: str | None


@dataclass
class PackageIndex:
    documents: list[Document]
    family: str
    known_process_ids: frozenset[str]
    processes: dict[str, tuple[Document, Element]] = field(default_factory=dict)
    executable_ids: list[str] = field(default_factory=list)
    decisions: dict[str, tuple[Document, Element]] = field(default_factory=dict)
    # SpiffWorkflow registers only the first decision of each DMN file.
    registered_decisions: set[str] = field(default_factory=set)
    duplicate_processes: list[tuple[Document, Element]] = field(default_factory=list)
    # What a service task CarePath cannot run becomes: "refuse" it, or an "external" task (_service_tasks.py).
    unknown_service_tasks: str = "refuse"
    # Where HTTP and FHIR connectors may send (CAREPATH_CONNECTOR_DESTINATIONS): name -> Destination.
    connector_destinations: dict[str, Any] = field(default_factory=dict)

    def document_named(self, name: str | None) -> Document | None:
        return next((document for document in self.documents if document.name == name), None)

    def locate(self, file_name: str | None, element_id: str | None) -> tuple[Document, Element] | None:
        """Find an element by id, in the named file if there is one, else in any file of the package."""
        named = self.document_named(file_name)
        candidates = [named] if named is not None else self.documents
        for document in candidates:
            element = document.find(element_id)
            if element is not None:
                return document, element
        return None

    def definition(self, document: Document, ref: str | None, tag: str) -> Element | None:
        """The bpmn:message/signal/error/escalation a reference points to, as the chosen parser resolves it.

        The plain parser collects definitions across the whole package; the Camunda and SpiffWorkflow
        parsers look only in the referring file.
        """
        if not ref:
            return None
        documents = [d for d in self.documents if d.kind == "bpmn"] if self.family == "bpmn" else [document]
        for candidate in documents:
            element = candidate.find(ref)
            if element is not None and element.tag == bpmn(tag):
                return element
        return None


def build_index(documents: Sequence[Document], family: str,
                known_process_ids: Collection[str]) -> PackageIndex:
    index = PackageIndex(list(documents), family, frozenset(known_process_ids))
    for document in documents:
        if document.kind == "bpmn":
            _index_processes(index, document)
        else:
            _index_decisions(index, document)
    return index


def _index_processes(index: PackageIndex, document: Document) -> None:
    for process in document.processes():
        process_id = process.get("id")
        if not process_id:
            continue
        if process_id in index.processes:
            index.duplicate_processes.append((document, process))
            continue
        index.processes[process_id] = (document, process)
        if is_executable(process):
            index.executable_ids.append(process_id)


def _index_decisions(index: PackageIndex, document: Document) -> None:
    decisions = [child for child in document.root if local_name(child) == "decision"]
    for position, decision in enumerate(decisions):
        decision_id = decision.get("id")
        if decision_id and decision_id not in index.decisions:
            index.decisions[decision_id] = (document, decision)
            if position == 0:
                index.registered_decisions.add(decision_id)
