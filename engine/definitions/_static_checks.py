"""Run every check on the package before SpiffWorkflow parses it, so all problems come back at once.

SpiffWorkflow stops at the first error of each process and some of its errors hide the real one;
these checks find each occurrence, say where it is, and say what to do about it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from lxml import etree

from ..errors import Problem
from ._check_code import CODE_GRAPH_CHECKS, CODE_NODE_CHECKS
from ._check_flow import FLOW_WARNINGS, GRAPH_CHECKS, NODE_CHECKS, check_scope
from ._check_links import (
    LINK_CHECKS,
    LINK_WARNINGS,
    data_store_problems,
    decision_ref,
    missing_decision_ref,
)
from ._describe import describe, problem_at
from ._documents import Document, bpmn, local_name
from ._index import Finding, PackageIndex, enclosing_scope, parse_scope_id
from ._walk import Site, WalkedScope, unreachable_warning, walk_executable


@dataclass
class StaticReport:
    findings: list[Finding] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    def refuse(self, problems: Iterable[Problem], scope_id: str | None) -> None:
        self.findings.extend(Finding(problem, scope_id) for problem in problems)

    def files_with_findings(self) -> set[str | None]:
        return {finding.problem.file for finding in self.findings}

    def scopes_with_findings(self) -> set[str | None]:
        return {finding.scope_id for finding in self.findings}


def run_static_checks(index: PackageIndex) -> StaticReport:
    report = StaticReport()
    _check_duplicates(index, report)
    for document in index.documents:
        if document.kind == "dmn":
            report.refuse(dmn_file_problems(document), None)
    reached: set[tuple[str, str | None]] = set()
    for walked in walk_executable(index):
        _check_walked_scope(index, walked, report)
        reached.update((walked.document.name, node.get("id")) for node in walked.reached)
    _check_unreached_business_rules(index, reached, report)
    return report


def _check_walked_scope(index: PackageIndex, walked: WalkedScope, report: StaticReport) -> None:
    scope_id = parse_scope_id(walked.graph.scope)
    report.refuse(check_scope(walked), scope_id)
    report.refuse(data_store_problems(walked.document, walked.graph.scope), scope_id)
    warning = unreachable_warning(walked)
    if warning is not None:
        report.warnings.append(warning)
    for node in walked.reached:
        site = Site(index, walked.document, walked.graph.scope, node)
        for check in (*NODE_CHECKS, *LINK_CHECKS, *CODE_NODE_CHECKS):
            report.refuse(check(site), scope_id)
        for graph_check in (*GRAPH_CHECKS, *CODE_GRAPH_CHECKS):
            report.refuse(graph_check(site, walked.graph), scope_id)
        for warn in (*FLOW_WARNINGS, *LINK_WARNINGS):
            report.warnings.extend(warn(site))


def _check_duplicates(index: PackageIndex, report: StaticReport) -> None:
    for document, process in index.duplicate_processes:
        process_id = process.get("id")
        first_document, first = index.processes[process_id]
        report.refuse([problem_at(document, process,
                                  f"{describe(process)} has the same id as the process at line "
                                  f"{first.sourceline} of '{first_document.name}'. Give each process its "
                                  "own id.")], process_id)


def _check_unreached_business_rules(index: PackageIndex, reached: set[tuple[str, str | None]],
                                    report: StaticReport) -> None:
    """The plain and Camunda parsers read every business rule task's decision when a file is added."""
    if index.family == "spiff":
        return
    for process_id in index.executable_ids:
        document, process = index.processes[process_id]
        for task in process.iter(bpmn("businessRuleTask")):
            unreached = (document.name, task.get("id")) not in reached
            if unreached and decision_ref(task, index.family) is None:
                scope = enclosing_scope(task)
                site = Site(index, document, scope if scope is not None else process, task)
                report.refuse([missing_decision_ref(site)], parse_scope_id(site.scope))


def dmn_file_problems(document: Document) -> list[Problem]:
    root = document.root
    namespace = etree.QName(root).namespace
    bound = root.nsmap.get(None) if None in root.nsmap else root.nsmap.get("dmn")
    if bound != namespace:
        return [Problem("The DMN file writes its elements with a namespace prefix CarePath cannot read. "
                        "Save it again from Camunda Modeler or bpmn.io, which write DMN without a prefix.",
                        document.name, root.sourceline)]
    if not any(local_name(child) == "decision" for child in root):
        return [Problem("The DMN file has no decision. Add a decision table, or remove the file from the "
                        "upload.", document.name, root.sourceline)]
    return []
