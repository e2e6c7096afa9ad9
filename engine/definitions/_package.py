"""parse_package: from uploaded files to deployable process specs, or every reason they are not."""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Sequence
from typing import Any

from ..errors import DiagramInvalid, Problem
from ._camunda_conditions import translate_conditions
from ._describe import problem_at
from ._executability import executability
from ._families import choose_family
from ._identity import used_files
from ._index import PackageIndex, build_index
from ._io_mappings import shown_mappings
from ._json_forms import attach_forms, is_form_file, load_form_schemas
from ._library import LibraryRun
from ._model import ImportLimits, ParsedPackage, ParsedProcess, SourceFile
from ._pathway_meta import attach_sidecars, is_sidecar
from ._process_info import parsed_process
from ._safe_xml import load_documents
from ._schema import schema_warnings
from ._start_data import attach_start_forms
from ._static_checks import StaticReport, run_static_checks
from ._translate import INTERNAL_PREFIX

log = logging.getLogger(__name__)


def parse_package(files: Sequence[SourceFile], *, known_process_ids: Collection[str] = (),
                  limits: ImportLimits | None = None, unknown_service_tasks: str = "refuse",
                  connector_destinations: dict[str, Any] | None = None) -> ParsedPackage:
    """Read an uploaded package of .bpmn/.dmn files into one ParsedProcess per executable process.
    `unknown_service_tasks`: "external" makes a service task CarePath cannot run an external task (with a
    warning) instead of refusing it (CAREPATH_UNKNOWN_SERVICE_TASKS). `connector_destinations`: where HTTP and
    FHIR connectors may send (CAREPATH_CONNECTOR_DESTINATIONS); a connector's URL outside them is refused.

    Raises DiagramInvalid with every problem found when the package cannot be deployed.
    """
    limits = limits or ImportLimits()
    sidecars = [f for f in files if is_sidecar(f.name)]
    schemas, problems = load_form_schemas([f for f in files if is_form_file(f) and not is_sidecar(f.name)])
    documents, xml_problems = load_documents([f for f in files if not is_form_file(f)], limits)
    problems += xml_problems
    translated = translate_conditions(documents)  # before anything reads a condition: see _camunda_conditions
    warnings: list[Problem] = []
    for document in documents:
        if document.kind == "bpmn":
            warnings.extend(schema_warnings(document, limits.max_warnings_per_file))
    choice = choose_family(documents)
    warnings.extend(choice.warnings)
    index = build_index(documents, choice.family, known_process_ids)
    index.unknown_service_tasks = unknown_service_tasks
    index.connector_destinations = dict(connector_destinations or {})
    executable = executability(index)
    if executable.refusals or not documents:
        _refuse(problems + executable.refusals, warnings + executable.warnings)
    warnings.extend(executable.warnings)
    report = _checked(index)
    processes, library_problems = _parse_with_library(index, report, limits.max_parse_seconds)
    for process in processes:
        process.used_files = used_files(index, process.key)
    problems += [finding.problem for finding in report.findings] + library_problems
    problems += attach_forms(processes, schemas)
    problems += attach_start_forms(processes, index, schemas)
    problems += attach_sidecars(processes, sidecars, [d.name for d in documents if d.kind == "bpmn"])
    if problems:
        _refuse(problems, warnings + report.warnings)
    return ParsedPackage(processes, warnings + report.warnings + _default_id_warnings(index, processes),
                         [condition for condition in translated if condition.process_id in index.executable_ids],
                         shown_mappings(documents))


# The ids bpmn.io and Camunda Modeler give a new diagram's process: Process_1, Process_0x7f9k2c.
_DEFAULT_PROCESS_ID = re.compile(r"Process_[0-9a-z]{1,7}")


def _default_id_warnings(index: PackageIndex, processes: Sequence[ParsedProcess]) -> list[Problem]:
    """CarePath knows a pathway by its process id: every diagram left with the editor's default id is a
    version of the same pathway."""
    warnings = []
    for proc in processes:
        if not _DEFAULT_PROCESS_ID.fullmatch(proc.key):
            continue
        document, process = index.processes[proc.key]
        unnamed = "" if proc.name else " and no name"
        deployed = (f" '{proc.key}' is already deployed, so this upload becomes its next version."
                    if proc.key in index.known_process_ids else "")
        warnings.append(problem_at(document, process, (
            f"Process '{proc.key}' has the id the modeler gives every new diagram{unnamed}: CarePath knows a "
            f"pathway by its process id, so every diagram deployed with this id is a version of the same "
            f"pathway.{deployed} Give the process an id of its own (select the pool or the canvas, General → "
            "ID, e.g. post-ed-follow-up) and a name.")))
    return warnings


def _checked(index: PackageIndex) -> StaticReport:
    try:
        return run_static_checks(index)
    except Exception as error:  # a defect in the checks must not turn into a server error
        log.exception("importer checks failed")
        report = StaticReport()
        report.refuse([Problem(f"{INTERNAL_PREFIX}: the importer's checks failed ({type(error).__name__}). "
                               "Please report this diagram to the CarePath team.")], None)
        return report


def _parse_with_library(index: PackageIndex, report: StaticReport,
                        seconds: float) -> tuple[list[ParsedProcess], list[Problem]]:
    run = LibraryRun(index, report.files_with_findings(), report.scopes_with_findings(), seconds)
    run.add_documents()
    processes = []
    for process_id in index.executable_ids:
        parsed = parsed_process(run, index, process_id)
        if parsed is not None:
            processes.append(parsed)
    return processes, run.problems


def _refuse(problems: list[Problem], warnings: list[Problem]) -> None:
    count = len(problems)
    raise DiagramInvalid(f"The upload cannot be deployed: {count} problem{'s' if count != 1 else ''} found.",
                         problems, warnings)
