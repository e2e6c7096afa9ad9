"""A JSON Schema form as HTML fields, and a posted form back to typed values.

The engine keeps every form as JSON Schema (Camunda `formData` and spiff-arena form files are turned into
it at deploy: engine/definitions/_forms.py); the task page and the start page draw it with the macro in
templates/_form_fields.html and read the post back with `typed_values`. Whether the values fit is the
engine's call (its completion / start validation); this module only turns text into the types the schema
names, and says so at a field when it cannot (a number that is no number).

Widgets, from the schema of one property:
- `enum`, or `oneOf` of `const`s (with a `title` each): radios for up to 4 choices, else a select;
- boolean: a checkbox (absent from the post: false); a required one: Yes / No radios (an answer given);
- integer / number: a number input (`minimum`/`maximum` carried over);
- string with `format` date / date-time: a date / datetime-local input (date-times in the care setting's zone);
- long text (`maxLength` over 200, or `format: textarea`, or a field named like notes): a textarea;
- string with `format: carepath-resource` (a resource directory service's id): a text input with a search of
  the directory beside it (templates/_resource_search.html, web/resource_search.py), its domain preset from
  the task's `domain` variable when it names one;
- object / array: a textarea of JSON; any other string: a text input.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from carepath.engine.errors import Problem, ValidationFailed
from carepath.engine.forms import RESOURCE_FORMAT

FIELD_PREFIX = "field-"  # html ids: field-<name>; posted names are the property names themselves
RADIO_LIMIT = 4
LONG_TEXT = 200
NOTE_WORDS = ("note", "comment", "summary", "description", "reason")


@dataclass(frozen=True)
class Choice:
    value: str
    label: str


@dataclass(frozen=True)
class FormField:
    name: str
    label: str
    widget: str  # text, textarea, json, number, checkbox, select, radios, date, datetime-local
    value: str = ""  # as the input shows it ("true" for a ticked checkbox)
    hint: str | None = None
    required: bool = False
    choices: tuple[Choice, ...] = ()
    step: str | None = None
    minimum: Any = None
    maximum: Any = None
    error: str | None = None
    domain: str | None = None  # a resource field: the directory search's need, from the task's data
    chosen: Any = None  # a resource field: the service its value names (resource_queries.ResourceView), if any

    @property
    def id(self) -> str:
        return FIELD_PREFIX + self.name


@dataclass
class Posted:
    """A posted form read back: typed values, and the fields whose text could not be read as their type."""

    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    raw: dict[str, str] = field(default_factory=dict)  # what the user typed, to show again


def properties_of(schema: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    props = (schema or {}).get("properties") or {}
    return {str(k): v if isinstance(v, dict) else {} for k, v in props.items()}


def form_fields(schema: dict[str, Any] | None, values: dict[str, Any], zone: ZoneInfo,
                errors: dict[str, str] | None = None, raw: dict[str, str] | None = None) -> list[FormField]:
    """The schema's fields in its order, filled with `values` (typed) or `raw` (as typed, after a refusal)."""
    required = set((schema or {}).get("required") or ())
    errors, raw = errors or {}, raw or {}
    out = []
    for name, prop in properties_of(schema).items():
        prop = _asked(prop, name in required)
        widget = widget_of(name, prop)
        shown = raw[name] if name in raw else _shown(values.get(name, prop.get("default")), widget, zone)
        out.append(FormField(name=name, label=str(prop.get("title") or name.replace("_", " ").capitalize()),
                             widget=widget, value=shown, hint=_text(prop.get("description")),
                             required=name in required, choices=choices_of(prop),
                             step=("1" if prop.get("type") == "integer" else "any") if widget == "number" else None,
                             minimum=prop.get("minimum"), maximum=prop.get("maximum"), error=errors.get(name)))
    return out


def widget_of(name: str, prop: dict[str, Any]) -> str:
    kind, fmt = prop.get("type"), prop.get("format")
    if choices_of(prop):
        return "radios" if len(choices_of(prop)) <= RADIO_LIMIT else "select"
    if kind == "boolean":
        return "checkbox"
    if kind in ("integer", "number"):
        return "number"
    if kind in ("object", "array"):
        return "json"
    if fmt == RESOURCE_FORMAT and kind in ("string", None):
        return "resource"
    if fmt == "date":
        return "date"
    if fmt == "date-time":
        return "datetime-local"
    long = isinstance(prop.get("maxLength"), int) and prop["maxLength"] > LONG_TEXT
    if long or fmt == "textarea" or any(word in name.lower() for word in NOTE_WORDS):
        return "textarea"
    return "text"


def _asked(prop: dict[str, Any], required: bool) -> dict[str, Any]:
    """A required yes/no question is asked with two radios, so that "no" is an answer given, not a box
    left unticked; an optional one is a checkbox."""
    if required and prop.get("type") == "boolean" and not choices_of(prop):
        return {**prop, "oneOf": [{"const": True, "title": "Yes"}, {"const": False, "title": "No"}]}
    return prop


def choices_of(prop: dict[str, Any]) -> tuple[Choice, ...]:
    if isinstance(prop.get("enum"), list):
        return tuple(Choice(_as_text(v), _as_text(v)) for v in prop["enum"])
    options = prop.get("oneOf") or prop.get("anyOf")
    if isinstance(options, list) and options and all(isinstance(o, dict) and "const" in o for o in options):
        return tuple(Choice(_as_text(o["const"]), str(o.get("title") or _as_text(o["const"]))) for o in options)
    return ()


def typed_values(schema: dict[str, Any] | None, posted: dict[str, str], zone: ZoneInfo) -> Posted:
    """The schema's fields read from the posted text. An empty field is left out (the schema's `required`
    says whether that is allowed); an unticked checkbox is false; other posted names are ignored."""
    result = Posted()
    required = set((schema or {}).get("required") or ())
    for name, prop in properties_of(schema).items():
        prop = _asked(prop, name in required)
        widget = widget_of(name, prop)
        text = posted.get(name)
        if widget == "checkbox":
            result.values[name] = bool(text)  # a ticked box posts "true"; an unticked one nothing
            continue
        if text is None or not text.strip():
            if text is not None:
                result.raw[name] = text
            continue
        result.raw[name] = text
        try:
            result.values[name] = _typed(text, prop, widget, zone)
        except ValueError as exc:
            result.errors[name] = str(exc)
    return result


def refusal(posted: Posted, what: str) -> ValidationFailed | None:
    """The fields whose text is not of their type, as the engine's kind of error (field by field)."""
    if not posted.errors:
        return None
    return ValidationFailed(what, [Problem(message, field=name) for name, message in posted.errors.items()])


def field_errors(exc: ValidationFailed, names: set[str]) -> tuple[dict[str, str], list[str]]:
    """The engine's problems: those at one of the form's fields, and the others (said above the form)."""
    at_fields: dict[str, str] = {}
    others = []
    for problem in exc.problems:
        top = (problem.field or "").split(".")[0]
        if top in names and top not in at_fields:
            at_fields[top] = beside_field(problem.message, top)
        elif top not in names:
            others.append(problem.message)
    if not exc.problems:
        others.append(exc.message)
    return at_fields, others


def beside_field(message: str, name: str) -> str:
    """The engine's message as said next to its field: without the field's name, which the label gives."""
    if message in (f"'{name}' is required", f"{name} must be a non-empty string"):
        return "This field is required"
    prefix = f"'{name}': "
    if message.startswith(prefix) and len(message) > len(prefix):
        rest = message[len(prefix):]
        return rest[0].upper() + rest[1:]
    return message


def _typed(text: str, prop: dict[str, Any], widget: str, zone: ZoneInfo) -> Any:
    text = text.strip() if widget != "textarea" else text
    if widget in ("radios", "select"):
        originals = {_as_text(v): v for v in _choice_values(prop)}
        if text not in originals:
            raise ValueError("choose one of the options given")
        return originals[text]
    if widget == "number":
        return _number(text, prop.get("type") == "integer")
    if widget == "json":
        try:
            return json.loads(text)
        except ValueError:
            raise ValueError("enter valid JSON") from None
    if widget == "datetime-local":
        try:
            return datetime.fromisoformat(text).replace(tzinfo=zone).isoformat()
        except ValueError:
            raise ValueError("enter a date and time, like 2026-03-02T14:30") from None
    return text


def _number(text: str, whole: bool) -> int | float:
    try:
        number = float(text)
    except ValueError:
        raise ValueError("enter a whole number, like 3" if whole else "enter a number, like 2.5") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError("enter a number")
    if whole:
        if not number.is_integer():
            raise ValueError("enter a whole number, like 3")
        return int(number)
    return number


def _choice_values(prop: dict[str, Any]) -> list[Any]:
    if isinstance(prop.get("enum"), list):
        return list(prop["enum"])
    return [o["const"] for o in prop.get("oneOf") or prop.get("anyOf") or []]


def _shown(value: Any, widget: str, zone: ZoneInfo) -> str:
    if value is None:
        return ""
    if widget == "checkbox":
        return "true" if value is True else ""
    if widget == "json":
        return json.dumps(value)
    if widget == "datetime-local" and isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
        local = moment.astimezone(zone) if moment.tzinfo else moment
        return local.strftime("%Y-%m-%dT%H:%M")
    return _as_text(value)


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None
