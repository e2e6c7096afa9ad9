"""Camunda's typed variables (`{"x": {"value": 1, "type": "Integer"}}`) as an episode's JSON data."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from carepath.engine.errors import Problem, ValidationFailed

MAX_VARIABLES = 200


class VariableIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: Any = None
    type: str | None = Field(default=None, max_length=50)
    valueInfo: dict[str, Any] | None = None  # noqa: N815 - Camunda's name


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# type -> (accepts the value, what it must be); Date is kept as its ISO text.
CHECKS: dict[str, tuple[Any, str]] = {
    "string": (lambda v: isinstance(v, str), "text"),
    "integer": (lambda v: _is_int(v) and -2**31 <= v < 2**31, "a whole number of 32 bits"),
    "short": (lambda v: _is_int(v) and -2**15 <= v < 2**15, "a whole number of 16 bits"),
    "long": (lambda v: _is_int(v) and -2**63 <= v < 2**63, "a whole number of 64 bits"),
    "double": (lambda v: isinstance(v, int | float) and not isinstance(v, bool), "a number"),
    "boolean": (lambda v: isinstance(v, bool), "true or false"),
    "date": (lambda v: isinstance(v, str), "a date as text (yyyy-MM-dd'T'HH:mm:ss.SSSZ)"),
    "null": (lambda v: v is None, "null"),
}


def _value(name: str, variable: VariableIn) -> Any:
    kind = (variable.type or "").lower()
    if not kind:
        return variable.value  # Camunda infers the type from the JSON value
    if kind in CHECKS:
        accepts, expected = CHECKS[kind]
        if not accepts(variable.value):
            raise _refused(name, f"variable '{name}' of type {variable.type} must be {expected}")
        return variable.value
    if kind == "json" or (kind == "object" and _json_format(variable)):
        if not isinstance(variable.value, str):
            return variable.value
        try:
            return json.loads(variable.value)
        except ValueError:
            raise _refused(name, f"variable '{name}' of type {variable.type} is not valid JSON") from None
    raise _refused(name, f"variable '{name}' has type {variable.type}, which CarePath does not take: use String, "
                         "Integer, Long, Short, Double, Boolean, Date, Null or Json")


def _json_format(variable: VariableIn) -> bool:
    return (variable.valueInfo or {}).get("serializationDataFormat") == "application/json"


def _refused(name: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, [Problem(message, field=f"variables.{name}")])


def variables_as_data(variables: dict[str, VariableIn] | None) -> dict[str, Any]:
    variables = variables or {}
    if len(variables) > MAX_VARIABLES:
        raise _refused("", f"at most {MAX_VARIABLES} variables may be sent with a start")
    return {name: _value(name, variable) for name, variable in variables.items()}
