"""The sidecar's `intake`: start data a starter may leave out, collected later by a user task.

    "intake": {"task": "complete_intake", "fields": ["high_risk_chronic_conditions"]}

An HL7 v2 ADT feed (or any starter) cannot always carry every clinical input a pathway reads: a count
of chronic conditions needs more than one visit, a LACE score is worked out by a clinician. Such fields
stay in `start_data` (typed and constrained as before, so whatever is given is still checked) but are
no longer required; the coordinator fills in the ones left out in the intake task. Every instance is
seeded with `intake_fields`, the declared fields its start data did not give ([] when the pathway
declares none), so a gateway after the start event can route to the intake task or straight on.

Deploy checks the declaration: the fields are properties of the start data, the task is a user task of
the process whose form asks for exactly those fields, each typed and constrained as the start data
types it, and required. The declaration is kept with the start data schema under `x-intake`.
"""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.bpmn.specs.mixins.user_task import UserTask

from ..forms import INTAKE_KEYWORD
from ._model import ParsedProcess

# What a field must say the same way in the start data and in the intake task's form.
_COMPARED = ("type", "format", "minimum", "maximum", "minLength", "maxLength", "pattern")


def apply_intake(process: ParsedProcess, declared: Any) -> list[str]:
    """Check the sidecar's `intake` against the process; on success, make its fields optional in the
    process's start data and keep the declaration there. What is wrong, in words, otherwise."""
    if declared is None:
        return []
    shape = _shape_problem(declared)
    if shape:
        return [shape]
    task_id, fields = declared["task"], list(declared["fields"])
    schema = process.start_data
    if schema is None:
        return ['"intake" names start data fields, but the pathway declares no start data: add "start_data" '
                'with those fields']
    properties = schema.get("properties") or {}
    problems = [f'"intake" field \'{name}\' is not in the start data; the start data\'s fields are: '
                f'{", ".join(properties) or "none"}' for name in fields if name not in properties]
    problems += _task_problems(process, task_id, fields, properties)
    if problems:
        return problems
    process.start_data = {**schema, "required": [n for n in schema.get("required") or [] if n not in fields],
                          INTAKE_KEYWORD: {"task": task_id, "fields": fields}}
    return []


def _shape_problem(declared: Any) -> str | None:
    example = '{"task": "<user task id>", "fields": ["<start data field>", ...]}'
    if not isinstance(declared, dict):
        return f'"intake" must be a JSON object such as {example}'
    unknown = sorted(set(declared) - {"task", "fields"})
    if unknown:
        return f'"intake" has unknown key(s) {", ".join(unknown)}; it has "task" and "fields": {example}'
    if not isinstance(declared.get("task"), str) or not declared["task"].strip():
        return f'"intake" needs "task", the id of the user task that collects the fields: {example}'
    fields = declared.get("fields")
    if not isinstance(fields, list) or not fields or not all(isinstance(f, str) and f for f in fields):
        return f'"intake" needs "fields", a non-empty list of start data field names: {example}'
    if len(set(fields)) != len(fields):
        return '"intake" lists a field more than once in "fields"'
    return None


def _task_problems(process: ParsedProcess, task_id: str, fields: list[str],
                   properties: dict[str, Any]) -> list[str]:
    spec = next((s for s in process.spec.task_specs.values() if getattr(s, "bpmn_id", None) == task_id), None)
    if spec is None:
        return [f'"intake" task \'{task_id}\' is not an element of process \'{process.key}\'; name the user task '
                "that collects the fields (it must be in the process itself, not in a subprocess)"]
    if not isinstance(spec, UserTask):
        return [f'"intake" task \'{task_id}\' is a {getattr(spec, "bpmn_name", None) or type(spec).__name__}'
                f" ({type(spec).__name__}), not a user task: the coordinator fills in the fields in a user task's form"]
    form = (process.task_rules.get(task_id) or {}).get("form")
    if not isinstance(form, dict):
        return [f'"intake" task \'{task_id}\' has no form: give it form fields for {", ".join(fields)}']
    asked = form.get("properties") or {}
    problems = []
    missing, extra = [f for f in fields if f not in asked], [f for f in asked if f not in fields]
    if missing or extra:
        says = ([f"does not ask for {', '.join(missing)}"] if missing else []) + \
               ([f"also asks for {', '.join(extra)}"] if extra else [])
        problems.append(f'the form of "intake" task \'{task_id}\' must ask for exactly the intake fields '
                        f'({", ".join(fields)}): it {" and ".join(says)}')
    required = set(form.get("required") or [])
    for name in (f for f in fields if f in asked and f in properties):
        if name not in required:
            problems.append(f"the form of \"intake\" task '{task_id}' must make '{name}' required (the intake "
                            "is how the field gets its value)")
        differences = _differences(properties[name], asked[name])
        if differences:
            problems.append(f"the form of \"intake\" task '{task_id}' asks for '{name}' differently from the start "
                            f"data: {'; '.join(differences)}")
    return problems


def _differences(start: dict[str, Any], asked: dict[str, Any]) -> list[str]:
    out = [f"{key} is {_said(asked.get(key))} in the form, {_said(start.get(key))} in the start data"
           for key in _COMPARED if start.get(key) != asked.get(key)]
    start_choices, asked_choices = _choices(start), _choices(asked)
    if start_choices != asked_choices:
        out.append(f"its choices are {_said(asked_choices)} in the form, {_said(start_choices)} in the start data")
    return out


def _choices(prop: dict[str, Any]) -> list[Any] | None:
    if isinstance(prop.get("enum"), list):
        return sorted(prop["enum"], key=str)
    if isinstance(prop.get("oneOf"), list):
        return sorted((c.get("const") for c in prop["oneOf"] if isinstance(c, dict)), key=str)
    return None


def _said(value: Any) -> str:
    return "not set" if value is None else repr(value)
