"""The audit trail as a file: CSV, JSON Lines, or FHIR R4 AuditEvent resources as NDJSON (Bulk Data).

Each writer turns an iterator of `AuditRecord`s into an iterator of text chunks, pulling records only
as chunks are asked for, so an export of any size is read and written in constant memory. The FHIR
mapping is `fhir_audit_event` (documented in docs/audit.md).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any

from .audit import AuditRecord, utc_instant
from .audit_fhir import fhir_audit_event

# New columns are appended, so a reader of the older files finds the others where they were.
CSV_COLUMNS = ("id", "at", "type", "actor", "instance_id", "patient_id", "pathway", "task_id", "data",
               "pathway_version")
FORMATS = ("csv", "jsonl", "fhir")
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson",
               "fhir": "application/fhir+ndjson"}
CHUNK_ROWS = 500

def export_chunks(records: Iterable[AuditRecord], fmt: str, *, observer: str) -> Iterator[str]:
    """The export in `fmt`, a chunk of up to CHUNK_ROWS records at a time (CSV starts with its header)."""
    if fmt == "csv":
        yield _csv_line(CSV_COLUMNS)
    line = _LINES[fmt]
    it = iter(records)
    while batch := list(islice(it, CHUNK_ROWS)):
        yield "".join(line(record, observer) for record in batch)


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula (=, +, -, @, tab, CR first: OWASP's CSV
    injection) gets a leading apostrophe; other values are left as they are."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


def _csv_line(values: Iterable[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow([spreadsheet_safe(v) for v in values])
    return buffer.getvalue()


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def csv_row(record: AuditRecord, observer: str = "") -> str:
    return _csv_line([record.id, utc_instant(record.at), record.type, record.actor, record.instance_id or "",
                      record.patient_id or "", record.pathway or "", record.task_id or "", _json(record.data),
                      "" if record.pathway_version is None else record.pathway_version])


def jsonl_row(record: AuditRecord, observer: str = "") -> str:
    return _json({"id": record.id, "at": utc_instant(record.at), "type": record.type, "actor": record.actor,
                  "instance_id": record.instance_id, "patient_id": record.patient_id, "pathway": record.pathway,
                  "task_id": record.task_id, "data": record.data, "pathway_version": record.pathway_version}) + "\n"


def fhir_row(record: AuditRecord, observer: str) -> str:
    return _json(fhir_audit_event(record, observer)) + "\n"


_LINES: dict[str, Callable[[AuditRecord, str], str]] = {"csv": csv_row, "jsonl": jsonl_row, "fhir": fhir_row}
