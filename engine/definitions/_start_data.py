"""The data a pathway needs to start, as a JSON Schema: from its start event's form (Camunda
`camunda:formData`, or a spiff-arena `formJsonSchemaFilename` property naming an uploaded JSON Schema),
or from its sidecar's `start_data` (`_pathway_meta.py`). Every start is checked against it (422 naming
each field, nothing stored) instead of failing later with an incident.

Unlike a task's form, a start form allows fields it does not name: a start carries more than the
diagram reads (a message's payload, an ADT feed's fields).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from ..errors import Problem
from ._documents import Element, is_bpmn
from ._forms import camunda_form
from ._index import PackageIndex
from ._model import ParsedProcess

_SPIFF_FORM = "./bpmn:extensionElements/spiffworkflow:properties/spiffworkflow:property[@name='formJsonSchemaFilename']"


def attach_start_forms(processes: Sequence[ParsedProcess], index: PackageIndex,
                       schemas: dict[str, dict[str, Any]]) -> list[Problem]:
    """Give each process the schema of its start event's form; located problems otherwise."""
    problems: list[Problem] = []
    for process in processes:
        document, element = index.processes[process.key]
        forms = []
        for start in (child for child in element if is_bpmn(child, "startEvent")):
            form = camunda_form(start)
            if form is not None:
                form.pop("additionalProperties", None)
                forms.append((start, form))
            for prop in document.xpath(_SPIFF_FORM, start):
                name = (prop.get("value") or "").strip()
                if name in schemas:
                    forms.append((start, schemas[name]))
                elif name:
                    problems.append(Problem(f"Start event '{start.get('id')}' uses the form '{name}', which is not "
                                            "in the upload. Upload the form's .json file together with the .bpmn "
                                            "file.", process.source_file, element_id=start.get("id")))
        if len(forms) > 1:
            problems.append(_twice(process, forms[1][0]))
        elif forms:
            process.start_data = forms[0][1]
    return problems


def _twice(process: ParsedProcess, start: Element) -> Problem:
    return Problem(f"Process '{process.key}' declares its start data in more than one start event form; "
                   "declare it once (one start event's form, or start_data in the pathway file).",
                   process.source_file, element_id=start.get("id"))


def start_data_problem(schema: Any) -> str | None:
    """What is wrong with a sidecar's start_data as a JSON Schema of the start data, or None."""
    if not isinstance(schema, dict):
        return '"start_data" must be a JSON Schema object such as {"type": "object", "required": [...]}'
    if schema.get("type", "object") != "object":
        return '"start_data" must describe a JSON object ("type": "object"): start data is one'
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.path)
        return f'"start_data" is not a valid JSON Schema{f" at {where}" if where else ""}: {exc.message}'
    return None
