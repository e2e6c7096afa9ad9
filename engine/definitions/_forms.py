"""Camunda Modeler form fields (`camunda:formData`) as JSON Schema, read from the XML at deploy time."""

from __future__ import annotations

from typing import Any

from ._documents import Element

CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
_TYPES: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "long": {"type": "integer"},
    "integer": {"type": "integer"},
    "double": {"type": "number"},
    "boolean": {"type": "boolean"},
    "date": {"type": "string", "format": "date"},
}
_NUMERIC_CONSTRAINTS = {"min": "minimum", "max": "maximum"}
_LENGTH_CONSTRAINTS = {"minlength": "minLength", "maxlength": "maxLength"}


def camunda_form(task: Element) -> dict[str, Any] | None:
    """The task's form as a JSON Schema object, or None when the diagram declares no fields."""
    fields = list(task.iter(f"{{{CAMUNDA_NS}}}formField"))
    if not fields:
        return None
    properties: dict[str, Any] = {}
    required: list[str] = []
    for field in fields:
        name = (field.get("id") or "").strip()
        if not name:
            continue
        properties[name] = _field_schema(field)
        if "required" in _constraints(field):  # <camunda:constraint name="required"/> needs no config
            required.append(name)
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def _field_schema(field: Element) -> dict[str, Any]:
    kind = (field.get("type") or "string").strip()
    values = [v.get("id") for v in field.iter(f"{{{CAMUNDA_NS}}}value") if v.get("id")]
    schema: dict[str, Any] = {"enum": values} if kind == "enum" and values else dict(_TYPES.get(kind, {}))
    if field.get("label"):
        schema["title"] = field.get("label")
    default = field.get("defaultValue")
    if default is not None:
        schema["default"] = _typed(default, schema.get("type"))
    for name, value in _constraints(field).items():
        keyword = _NUMERIC_CONSTRAINTS.get(name) or _LENGTH_CONSTRAINTS.get(name)
        if keyword and value is not None:
            schema[keyword] = _typed(value, "number" if name in _NUMERIC_CONSTRAINTS else "integer")
        elif name == "pattern" and value:
            schema["pattern"] = value
    return schema


def _constraints(field: Element) -> dict[str, str | None]:
    return {(c.get("name") or "").strip().lower(): c.get("config")
            for c in field.iter(f"{{{CAMUNDA_NS}}}constraint")}


def _typed(value: str, kind: Any) -> Any:
    try:
        if kind == "boolean":
            return value.strip().lower() == "true"
        if kind == "integer":
            return int(value)
        if kind == "number":
            return float(value)
    except ValueError:
        return value
    return value
