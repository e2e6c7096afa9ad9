"""Validating submitted task data against the task's form (JSON Schema), field by field."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

from .errors import Problem, ValidationFailed


def validate_form(task_name: str, schema: dict[str, Any] | None, data: dict[str, Any]) -> None:
    """Raise ValidationFailed naming every field that is wrong; nothing happens when there is no form."""
    if not schema:
        return
    validator = Draft202012Validator(schema, format_checker=FormatChecker())
    problems = [_problem(error) for error in sorted(validator.iter_errors(data), key=lambda e: list(e.path))]
    if problems:
        raise ValidationFailed(f"the data does not fit the form of task '{task_name}'", problems)


def _problem(error: Any) -> Problem:
    field = str(error.path[0]) if error.path else None
    if error.validator == "required":
        field = error.message.split("'")[1] if "'" in error.message else None
        return Problem(f"'{field}' is required", field=field)
    if error.validator == "additionalProperties":
        return Problem(f"{error.message}; the form's fields are: "
                       f"{', '.join(sorted(error.schema.get('properties', {})))}")
    return Problem(f"'{field}': {error.message}" if field else error.message, field=field)
