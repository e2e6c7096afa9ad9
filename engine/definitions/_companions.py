"""The files a pathway needs that were not named: DMN decisions, called processes and form schemas
found beside the given files (same folder), as a pathway repository keeps them.

Only what an unresolved reference asks for is added, following references through the files added,
so an unrelated or broken file in the folder does not change the answer. Files are read with the
importer's safe XML loader.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import Problem
from ._assignment import form_file_name
from ._check_links import decision_ref
from ._documents import Document
from ._model import ImportLimits, SourceFile
from ._pathway_meta import sidecar_path
from ._safe_xml import load_documents

_DIAGRAM_SUFFIXES = (".bpmn", ".bpmn20.xml", ".dmn")
_FORM_FILES = (".//spiffworkflow:property[@name='formJsonSchemaFilename']/@value"
               " | .//bpmn:userTask/@camunda:formKey[contains(., '.json')]")


@dataclass(frozen=True)
class Companion:
    path: Path
    provides: str  # "decision 'ed_visit_classification'", "process 'referral'", "form 'intake.json'"


@dataclass
class _Needs:
    decisions: set[str] = field(default_factory=set)
    processes: set[str] = field(default_factory=set)
    forms: set[str] = field(default_factory=set)
    defined_decisions: set[str] = field(default_factory=set)
    defined_processes: set[str] = field(default_factory=set)

    def read(self, document: Document) -> None:
        if document.kind == "dmn":
            self.defined_decisions.update(d.get("id") or "" for d in document.xpath("./*[local-name()='decision']"))
            return
        self.defined_processes.update(p.get("id") or "" for p in document.processes())
        for task in document.xpath(".//bpmn:businessRuleTask"):
            self.decisions.update(ref for family in ("camunda", "spiff") if (ref := decision_ref(task, family)))
        self.processes.update((c.get("calledElement") or "").strip() for c in document.xpath(".//bpmn:callActivity"))
        self.forms.update(form for value in document.xpath(_FORM_FILES) if (form := form_file_name(value)))

    def missing(self) -> list[tuple[str, str]]:
        return sorted([("decision", d) for d in self.decisions - self.defined_decisions if d]
                      + [("process", p) for p in self.processes - self.defined_processes if p and "{" not in p])


def find_companions(paths: Sequence[Path], limits: ImportLimits | None = None) -> tuple[list[Companion], list[Problem]]:
    """Files beside `paths` that define what they refer to and do not define themselves, and a note for
    each file beside them that could not be read while looking."""
    limits = limits or ImportLimits()
    needs = _Needs()
    given = {path.resolve() for path in paths}
    for document in _load([p for p in paths if p.name.lower().endswith(_DIAGRAM_SUFFIXES)], limits)[0]:
        needs.read(document)
    found: list[Companion] = []
    candidates, unreadable = _candidates(paths, given, limits) if needs.missing() else ({}, [])
    while True:
        match = next(((path, kind, ref) for kind, ref in needs.missing() for path, (document, defines)
                      in candidates.items() if (kind, ref) in defines), None)
        if match is None:
            break
        path, kind, ref = match
        needs.read(candidates.pop(path)[0])
        found.append(Companion(path, f"{kind} '{ref}'"))
    found.extend(_forms(paths, given, needs.forms))
    found.extend(_sidecars([*paths, *(c.path for c in found)], given))
    return found, unreadable


def _sidecars(paths: Sequence[Path], given: set[Path]) -> list[Companion]:
    """Each diagram's `<name>.pathway.json` (measures, example data), checked with it as deploy does."""
    found = []
    for path in paths:
        if not path.name.lower().endswith((".bpmn", ".bpmn20.xml")):
            continue
        sidecar = sidecar_path(path)
        if sidecar.is_file() and sidecar.resolve() not in given:
            given.add(sidecar.resolve())
            found.append(Companion(sidecar, "its measures and example data"))
    return found


def _forms(paths: Sequence[Path], given: set[Path], names: set[str]) -> list[Companion]:
    folders = sorted({path.parent for path in paths})
    found = []
    for name in sorted(n for n in names if n and Path(n).name == n):
        beside = next((folder / name for folder in folders if (folder / name).is_file()), None)
        if beside is not None and beside.resolve() not in given:
            found.append(Companion(beside, f"form '{name}'"))
    return found


def _candidates(paths: Sequence[Path], given: set[Path], limits: ImportLimits
                ) -> tuple[dict[Path, tuple[Document, set[tuple[str, str]]]], list[Problem]]:
    siblings = sorted({sibling for folder in {p.parent for p in paths} for sibling in folder.iterdir()
                       if sibling.is_file() and sibling.name.lower().endswith(_DIAGRAM_SUFFIXES)
                       and sibling.resolve() not in given})
    candidates: dict[Path, tuple[Document, set[tuple[str, str]]]] = {}
    problems: list[Problem] = []
    for sibling in siblings:
        loaded, refused = _load([sibling], limits)
        if loaded:
            probe = _Needs()
            probe.read(loaded[0])
            defines = {("decision", d) for d in probe.defined_decisions} | {
                ("process", p) for p in probe.defined_processes}
            candidates[sibling] = (loaded[0], defines)
        problems.extend(Problem(f"not searched: {p.message}", str(sibling), p.line) for p in refused)
    return candidates, problems


def _load(paths: Sequence[Path], limits: ImportLimits) -> tuple[list[Document], list[Problem]]:
    documents: list[Document] = []
    problems: list[Problem] = []
    for path in paths:
        try:
            source = SourceFile(path.name, path.read_bytes())
        except OSError as exc:
            problems.append(Problem(f"cannot be read: {exc.strerror}", str(path)))
            continue
        loaded, refused = load_documents([source], limits)
        documents.extend(loaded)
        problems.extend(refused)
    return documents, problems
