"""Which processes of a package are meant to run.

`isExecutable="true"` runs and `"false"` does not. Many editors (Signavio, ARIS, older bpmn.io
exports, hand-written files) leave the attribute out, so a process without it is taken as meant to
run, with a warning, when it has steps and no process of its file says "true": in a collaboration
where one pool is marked executable, the unmarked pools are the other participants' parts, drawn
for documentation, and are left out with a note.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import Problem
from ._describe import describe, problem_at
from ._documents import Document, Element, is_bpmn, local_name

if TYPE_CHECKING:
    from ._index import PackageIndex

NOT_EXECUTABLE_FIX = (
    "In Camunda Modeler / bpmn.io select the process (click on empty canvas) and tick 'Executable' in the "
    "properties panel; in Signavio set the process attribute 'isExecutable' to true."
)
_TRUE = frozenset({"true", "1"})
_ACTIVITIES = frozenset({"subProcess", "callActivity", "transaction", "adHocSubProcess", "task"})


def declared(process: Element) -> str | None:
    """The isExecutable attribute as written (lower case), None when the process does not have one."""
    value = process.get("isExecutable")
    return None if value is None else value.strip().lower()


def has_steps(process: Element) -> bool:
    """A start event or an activity to run: an empty pool (lanes only, or nothing) is a drawing."""
    return any(is_bpmn(child) and (local_name(child) in _ACTIVITIES or local_name(child) == "startEvent"
                                   or local_name(child).endswith("Task")) for child in process)


def _file_marks_one_true(process: Element) -> bool:
    root = process.getroottree().getroot()
    return any(declared(other) in _TRUE for other in root.iter(process.tag))


def is_executable(process: Element) -> bool:
    """Marked "true", or unmarked with steps to run in a file where no process is marked "true"."""
    flag = declared(process)
    if flag is not None:
        return flag in _TRUE
    return has_steps(process) and not _file_marks_one_true(process)


class Executability:
    """What the package's isExecutable attributes mean: refusals when nothing can run, else notes."""

    def __init__(self) -> None:
        self.refusals: list[Problem] = []
        self.warnings: list[Problem] = []


def executability(index: PackageIndex) -> Executability:
    result = Executability()
    bpmn_documents = [document for document in index.documents if document.kind == "bpmn"]
    if index.documents and not bpmn_documents:
        result.refusals.extend(Problem("The upload has only DMN files. Upload the .bpmn file of the "
                                       "pathway together with its .dmn files.", document.name)
                               for document in index.documents)
    elif bpmn_documents and not index.processes:
        result.refusals.extend(Problem("The file has no BPMN process (only a collaboration or "
                                       "definitions). Export the pathway's process diagram.", document.name)
                               for document in bpmn_documents)
    for process_id, (document, process) in index.processes.items():
        if process_id in index.executable_ids:
            if declared(process) is None:
                result.warnings.append(_taken_to_run(document, process))
            continue
        if index.executable_ids:
            result.warnings.append(_left_out(document, process))
        else:
            result.refusals.append(_cannot_run(document, process))
    return result


def _taken_to_run(document: Document, process: Element) -> Problem:
    return problem_at(document, process, (
        f"Process '{process.get('id')}' does not say whether it is executable (it has no isExecutable "
        "attribute), so CarePath takes it as meant to run. Tick 'Executable' in your modelling tool to say so, "
        "or untick it if the process is only a drawing."))


def _left_out(document: Document, process: Element) -> Problem:
    if declared(process) is None and _file_marks_one_true(process):
        return problem_at(document, process, (
            f"{describe(process)} is not marked executable while another process of the same file is, so "
            "CarePath takes it as documentation (another participant's part of the collaboration) and leaves "
            "it out."))
    return problem_at(document, process, f"{describe(process)} is not marked executable, so CarePath skips it.")


def _cannot_run(document: Document, process: Element) -> Problem:
    if declared(process) is None:
        return problem_at(document, process, (
            f"Process '{process.get('id')}' has no start event or activity, so there is nothing to run. Draw "
            "the pathway's steps in it, or upload the file that has them."))
    return problem_at(document, process, f"Process '{process.get('id')}' is not marked executable. "
                                         f"{NOT_EXECUTABLE_FIX}")
