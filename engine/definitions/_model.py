"""The importer's public value types: what goes in (source files, limits) and what comes out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec

from ..errors import Problem

MEGABYTE = 1024 * 1024


@dataclass(frozen=True)
class SourceFile:
    """One uploaded file: its name as uploaded (e.g. "post-ed.bpmn") and its raw bytes."""

    name: str
    content: bytes


@dataclass(frozen=True)
class ImportLimits:
    """Caps checked before any XML reaches SpiffWorkflow, so a hostile upload cannot exhaust the server."""

    max_file_bytes: int = 5 * MEGABYTE
    max_package_bytes: int = 20 * MEGABYTE
    max_files: int = 100
    max_elements: int = 200_000
    max_depth: int = 256
    max_warnings_per_file: int = 25
    # Wall-clock budget for SpiffWorkflow's own parse of the package.
    max_parse_seconds: float = 30.0


@dataclass
class ParsedProcess:
    key: str
    name: str | None
    family: str
    source_file: str
    spec: BpmnProcessSpec
    subprocess_specs: dict[str, BpmnProcessSpec] = field(default_factory=dict)
    external_calls: list[str] = field(default_factory=list)
    message_starts: list[str] = field(default_factory=list)
    message_catches: list[str] = field(default_factory=list)  # every message it waits for, starts included
    lanes: list[str] = field(default_factory=list)
    documentation: str | None = None
    # Human task id -> who it goes to, as drawn (see _assignment.py).
    task_rules: dict[str, dict[str, Any]] = field(default_factory=dict)
    # How the process counts time: {"calendar": name, "timezone": IANA zone}, from its properties.
    time_settings: dict[str, str] = field(default_factory=dict)
    # From the pathway's sidecar file (<name>.pathway.json): quality measures and example start data.
    measures: list[dict[str, Any]] = field(default_factory=list)
    example_data: dict[str, Any] | None = None
    # The JSON Schema of the data a start needs: the start event's form, else the sidecar's start_data.
    start_data: dict[str, Any] | None = None
    # The sidecar file applied to the process (None: the upload had none for it).
    sidecar_file: str | None = None
    # Names of the files of the package the process uses: its identity (see _identity.py).
    used_files: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TranslatedCondition:
    """A Camunda condition (JUEL or FEEL) and the sandbox expression CarePath evaluates in its place."""

    file: str
    process_id: str | None
    line: int | None
    element_id: str | None
    original: str
    translated: str


@dataclass(frozen=True)
class ShownMapping:
    """A camunda:inputOutput parameter as `carepath validate` shows it: 'input' or 'output', its name and
    its value (a literal, a list or map, or the expression as written -> as CarePath evaluates it)."""

    file: str
    line: int | None
    element_id: str | None
    direction: str
    name: str
    shown: str


@dataclass
class ParsedPackage:
    processes: list[ParsedProcess]
    warnings: list[Problem] = field(default_factory=list)
    # The conditions of the executable processes that were translated from Camunda's languages.
    translated_conditions: list[TranslatedCondition] = field(default_factory=list)
    # The input/output parameters (camunda:inputOutput) of the package's tasks.
    io_mappings: list[ShownMapping] = field(default_factory=list)
