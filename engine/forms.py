"""Validating submitted task data against the task's form, and start data against the pathway's start
data schema (JSON Schema), field by field; the start data's intake fields (engine/definitions/_intake.py).

A string field with `"format": "carepath-resource"` holds the id of a service of the resource directory
(engine/resource_queries.py): given a `known_service` lookup (a task completion gives one), an id that names
no active service is a problem at that field. Without one (deploy-time checks of example data) the format is
not checked, as JSON Schema leaves formats it does not know.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

from .errors import Problem, ValidationFailed
from .sdoh.instruments import instrument_problems, with_instruments

# Where a stored start data schema keeps its sidecar's "intake" declaration: {"task": ..., "fields": [...]}.
INTAKE_KEYWORD = "x-intake"
RESOURCE_FORMAT = "carepath-resource"  # a string field holding a resource directory service's id


def validate_form(task_name: str, schema: dict[str, Any] | None, data: dict[str, Any],
                  known_service: Callable[[str], bool] | None = None) -> None:
    """Raise ValidationFailed naming every field that is wrong; nothing happens when there is no form."""
    problems = form_problems(schema, data, known_service)
    if problems:
        raise ValidationFailed(f"the data does not fit the form of task '{task_name}'", problems)


def validate_start_data(pathway_key: str, schema: dict[str, Any] | None, data: dict[str, Any]) -> None:
    """A start (over HTTP, by a message, ...) must carry the data the pathway declares it needs."""
    problems = form_problems(schema, data)
    if problems:
        raise ValidationFailed(f"the start data does not fit what pathway '{pathway_key}' needs to start "
                               f"({len(problems)} problem{'s' if len(problems) != 1 else ''})", problems)


def form_problems(schema: dict[str, Any] | None, data: Any,
                  known_service: Callable[[str], bool] | None = None) -> list[Problem]:
    """Every field of `data` that does not fit `schema` (a JSON Schema), in field order; none without one.
    `known_service(id)`: whether a `carepath-resource` field's id names an active directory service."""
    if not schema:
        return []
    checker = FormatChecker()
    if known_service is not None:
        checker.checks(RESOURCE_FORMAT)(lambda value: not isinstance(value, str) or known_service(value))
    validator = Draft202012Validator(schema, format_checker=checker)
    problems = [_problem(error) for error in validator.iter_errors(data)] or instrument_problems(schema, data)
    return sorted(problems, key=lambda p: p.field or "")


def _problem(error: Any) -> Problem:
    path = [str(part) for part in error.path]
    field = ".".join(path) or None
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else None
        field = ".".join([*path, missing]) if missing else field
        return Problem(f"'{field}' is required", field=field)
    if error.validator == "format" and error.validator_value == RESOURCE_FORMAT:
        return Problem(f"'{field}': no active service in the resource directory has the id "
                       f"'{str(error.instance)[:100]}'; search the directory and choose one", field=field)
    if error.validator == "additionalProperties":
        return Problem(f"{error.message}; the form's fields are: "
                       f"{', '.join(sorted(error.schema.get('properties', {})))}")
    return Problem(f"'{field}': {error.message}" if field else error.message, field=field)


def intake_fields(schema: dict[str, Any] | None, data: dict[str, Any]) -> list[str]:
    """The declared intake fields this start data does not give, in declared order."""
    return [name for name in (intake_declaration(schema) or {}).get("fields") or [] if name not in data]


def seeded(schema: dict[str, Any] | None, data: dict[str, Any]) -> dict[str, Any]:
    """The start data as a new instance's first variables: with `intake_fields`, whatever the starter sent."""
    return {**with_instruments(schema, data), "intake_fields": intake_fields(schema, data)}


def intake_declaration(schema: dict[str, Any] | None) -> dict[str, Any] | None:
    """{"task": ..., "fields": [...]} of a stored start data schema, or None."""
    declared = (schema or {}).get(INTAKE_KEYWORD)
    return declared if isinstance(declared, dict) else None
