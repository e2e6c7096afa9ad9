"""A pathway version's identity: the content of what that pathway itself uses.

Its own diagram, the diagrams of processes it calls that came in the same upload (they are part of its
stored spec), the DMN files defining the decisions it calls, its form files and its sidecar
(`<name>.pathway.json`). Not the other files of the upload, and not pathways it calls that are already
deployed (they bind when the call starts). So a pathway uploaded alone or with its whole folder gets the
same identity, and a deploy of the same content answers the existing version.

File names do not count, only their content (the diagram names its forms and decisions itself).
Migration 0013 recomputes stored identities with `used_files` and `content_identity`: changing either
makes a new version of every pathway at the next deploy, unless a migration recomputes them again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ._assignment import form_file_name
from ._check_links import decision_ref
from ._index import PackageIndex, build_index
from ._model import ImportLimits, SourceFile
from ._pathway_meta import SIDECAR_SUFFIX, sidecar_name, sidecar_target
from ._safe_xml import load_documents

_FORM_FILES = (".//spiffworkflow:property[@name='formJsonSchemaFilename']/@value"
               " | .//bpmn:userTask/@camunda:formKey[contains(., '.json')]")
_IDENTITY_FORMAT = b"carepath-identity-1"


def used_files(index: PackageIndex, key: str) -> list[str]:
    """Names of the files of the package that process `key` uses (see the module docstring); form files
    are named as the diagram names them, whether or not they are in the upload."""
    names: set[str] = set()
    pending, seen = [key], set()
    while pending:
        process_id = pending.pop()
        if process_id in seen or process_id not in index.processes:
            continue
        seen.add(process_id)
        document, process = index.processes[process_id]
        names.add(document.name)
        for task in document.xpath(".//bpmn:businessRuleTask", process):
            ref = decision_ref(task, index.family)
            if ref and ref in index.decisions:
                names.add(index.decisions[ref][0].name)
        names.update(form for value in document.xpath(_FORM_FILES, process) if (form := form_file_name(value)))
        pending.extend((call.get("calledElement") or "").strip()
                       for call in document.xpath(".//bpmn:callActivity", process))
    return sorted(names)


def content_identity(family: str, used: Iterable[bytes], sidecar: bytes | None) -> str:
    """The hash of a version's content: the parser family, each used file's content, and the sidecar."""
    digest = hashlib.sha256(_IDENTITY_FORMAT + b"\0" + family.encode())
    for content_digest in sorted(hashlib.sha256(content).hexdigest() for content in used):
        digest.update(b"\0file:" + content_digest.encode())
    if sidecar is not None:
        digest.update(b"\0sidecar:" + hashlib.sha256(sidecar).hexdigest().encode())
    return digest.hexdigest()


def stored_identity(key: str, family: str, source_file: str, files: Sequence[SourceFile]) -> StoredIdentity | None:
    """The identity of a version deployed before identities were what the pathway uses, from the files
    its deployment stored (its own diagram, and every .dmn and .json of the upload); None when they can
    no longer be read."""
    documents, problems = load_documents([f for f in files if not f.name.lower().endswith(".json")],
                                         ImportLimits())
    if problems:
        return None
    index = build_index(documents, family, ())
    if key not in index.processes or index.processes[key][0].name != source_file:
        return None
    by_name = {f.name: f for f in files}
    sidecar = by_name.get(sidecar_name(source_file))
    own = [process_id for process_id in index.executable_ids if index.processes[process_id][0].name == source_file]
    if sidecar is not None and sidecar_target(sidecar.name[: -len(SIDECAR_SUFFIX)], own) != key:
        sidecar = None
    used = [by_name[name].content for name in used_files(index, key) if name in by_name]
    return StoredIdentity(content_identity(family, used, sidecar.content if sidecar else None),
                          sidecar.name if sidecar else None)


@dataclass(frozen=True)
class StoredIdentity:
    content_hash: str
    sidecar_file: str | None
