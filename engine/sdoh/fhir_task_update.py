"""An organization's update of a referral Task, as FHIR (PUT /fhir/Task/{id}, or PATCH with a JSON Patch),
read into what `POST /api/referrals/{id}/status` takes: a status, its reason, an outcome and the version the
organization read. The referral rules decide the rest (usecases/referrals.update_referral_status).

What an organization may change: `status` (a referral status), `statusReason` (its text, else its first
coding's display or code; required for rejected, cancelled, on-hold and failed), `businessStatus` and
`output` (the outcome that closes the loop). Every other element it sends must agree with the Task it was
sent (a subset: an element it leaves out is kept); one that differs is refused (422) naming it. Server
managed elements (meta, lastModified, text) are ignored.

The outcome (docs/fhir.md, "Referral outcomes"): a code of OUTCOME_SYSTEM, or any coding's code or a text
that is one of the recorded outcomes (got-help, couldnt-contact, not-eligible, no-capacity,
no-longer-interested, referred-elsewhere), in `businessStatus` or in an `output`'s valueCodeableConcept
(or valueString); anything else there is refused, naming it, never guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import BadRequest, Problem, ValidationFailed
from ..usecases.referral_steps import OUTCOMES

OUTCOME_SYSTEM = "urn:carepath:referral-outcome"
UPDATABLE = ("status", "statusReason", "businessStatus", "output")
SERVER_MANAGED = ("meta", "lastModified", "text")
MAX_PATCH_OPERATIONS = 20
_ETAG = re.compile(r'^(?:W/)?"?(\d{1,9})"?$')


@dataclass(frozen=True)
class TaskUpdate:
    status: str
    status_reason: str | None
    outcome: str | None
    version: int | None


def read_task_update(current: dict[str, Any], given: Any, if_match: str | None) -> TaskUpdate:
    """What the organization asks, from the Task it PUT; `current` is the Task as this server shows it."""
    if not isinstance(given, dict) or given.get("resourceType") != "Task":
        raise _refuse("resourceType", "the body must be a Task")
    if "id" in given and given["id"] != current["id"]:
        raise _refuse("id", f"the body's id '{str(given['id'])[:60]}' is not the Task's ({current['id']})")
    for name, value in given.items():
        if name in (*UPDATABLE, *SERVER_MANAGED, "id", "resourceType"):
            continue
        if not _agrees(value, current.get(name)):
            raise _refuse(name, f"Task.{name} may not be changed by the organization: only "
                                f"{', '.join(UPDATABLE)}")
    status = given.get("status")
    if not isinstance(status, str) or not status:
        raise _refuse("status", "a Task needs its status")
    return TaskUpdate(status=status, status_reason=_reason(given.get("statusReason")), outcome=_outcome(given),
                      version=_version(given, if_match))


def apply_patch(current: dict[str, Any], operations: Any) -> dict[str, Any]:
    """A JSON Patch (RFC 6902) limited to add, replace and remove of the elements an organization may change,
    and test of any top-level element, applied to a copy of the Task."""
    if not isinstance(operations, list) or not 0 < len(operations) <= MAX_PATCH_OPERATIONS:
        raise BadRequest(f"a JSON Patch is a list of 1 to {MAX_PATCH_OPERATIONS} operations")
    task = dict(current)
    for number, operation in enumerate(operations):
        if not isinstance(operation, dict):
            raise BadRequest(f"JSON Patch operation {number} is not an object")
        op, path = operation.get("op"), str(operation.get("path") or "")
        name = path.removeprefix("/")
        if op == "test":
            if name not in task or not _agrees(operation.get("value"), task[name]):
                raise ValidationFailed(f"JSON Patch test of {path[:60]} failed: the Task holds something else",
                                       [Problem("test failed", field=name[:60])])
        elif op not in ("add", "replace", "remove"):
            raise BadRequest(f"JSON Patch operation {number}: op '{str(op)[:20]}' is not taken (add, replace, "
                             "remove, test)")
        elif name not in UPDATABLE:
            raise _refuse(name[:60] or "path", f"a JSON Patch may change only {', '.join('/' + u for u in UPDATABLE)}")
        elif op == "remove":
            task.pop(name, None)
        else:
            task[name] = operation.get("value")
    return task


def _agrees(given: Any, current: Any) -> bool:
    """The given value says nothing the current one does not: objects as subsets, lists element by element."""
    if isinstance(given, dict) and isinstance(current, dict):
        return all(key in current and _agrees(value, current[key]) for key, value in given.items())
    if isinstance(given, list) and isinstance(current, list):
        return len(given) == len(current) and all(_agrees(g, c) for g, c in zip(given, current, strict=True))
    return bool(given == current)


def _reason(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _refuse("statusReason", "statusReason is a CodeableConcept (text, coding)")
    codings = [c for c in value.get("coding") or [] if isinstance(c, dict)]
    text = value.get("text") or next((c.get("display") or c.get("code") for c in codings), None)
    if text is not None and not isinstance(text, str):
        raise _refuse("statusReason", "statusReason.text is a string")
    return text.strip() or None if text else None


def _outcome(task: dict[str, Any]) -> str | None:
    found: list[tuple[str, str]] = []
    if task.get("businessStatus") is not None:
        found += [("businessStatus", code) for code in _codes(task["businessStatus"], "businessStatus")]
    outputs = task.get("output") or []
    if not isinstance(outputs, list):
        raise _refuse("output", "output is a list")
    for number, output in enumerate(outputs):
        where = f"output[{number}]"
        value = output.get("valueCodeableConcept", output.get("valueString")) if isinstance(output, dict) else None
        found += [(where, code) for code in _codes(value, where)]
    for where, code in found:
        if code not in OUTCOMES:
            raise _refuse(where, f"'{code[:60]}' is not a referral outcome ({', '.join(OUTCOMES)})")
    outcomes = list(dict.fromkeys(code for _, code in found))
    if len(outcomes) > 1:
        raise _refuse(found[0][0], f"the Task gives several outcomes ({', '.join(outcomes)}); give one")
    return outcomes[0] if outcomes else None


def _codes(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        return [value.strip()]
    if not isinstance(value, dict):
        raise _refuse(where, "an outcome is a CodeableConcept (coding, text) or a string")
    codes = [c["code"] for c in value.get("coding") or [] if isinstance(c, dict) and isinstance(c.get("code"), str)]
    text = value.get("text")
    return codes or ([text.strip()] if isinstance(text, str) else [])


def _version(task: dict[str, Any], if_match: str | None) -> int | None:
    """The version the organization read: If-Match (an ETag, W/"3"), else meta.versionId."""
    if if_match:
        match = _ETAG.match(if_match.strip())
        if match is None:
            raise BadRequest(f"If-Match: '{if_match[:40]}' is not a version this server gave (W/\"N\")")
        return int(match.group(1))
    meta = task.get("meta")
    version = meta.get("versionId") if isinstance(meta, dict) else None
    if version is None:
        return None
    if not isinstance(version, str) or not version.isdigit() or len(version) > 9:
        raise _refuse("meta.versionId", f"'{str(version)[:20]}' is not a version this server gave")
    return int(version)


def _refuse(element: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"Task.{element}: {message}", [Problem(message, field=element)])
