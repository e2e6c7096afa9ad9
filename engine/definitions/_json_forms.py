"""Form schemas uploaded as .json files beside the BPMN (spiff-arena's `formJsonSchemaFilename`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from ..errors import Problem
from ._model import ParsedProcess, SourceFile

MAX_FORM_BYTES = 1024 * 1024


def is_form_file(source: SourceFile) -> bool:
    return source.name.lower().endswith(".json")


def load_form_schemas(files: Sequence[SourceFile]) -> tuple[dict[str, dict[str, Any]], list[Problem]]:
    schemas: dict[str, dict[str, Any]] = {}
    problems: list[Problem] = []
    for source in files:
        if len(source.content) > MAX_FORM_BYTES:
            problems.append(Problem(f"The form file is larger than {MAX_FORM_BYTES // 1024} KB.", source.name))
            continue
        try:
            schema = json.loads(source.content.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            problems.append(Problem(f"The form file is not valid JSON: {exc}", source.name))
            continue
        if not isinstance(schema, dict):
            problems.append(Problem("The form file must hold one JSON Schema object.", source.name))
            continue
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            problems.append(Problem(f"The form file is not a valid JSON Schema: {exc.message}", source.name))
            continue
        schemas[source.name] = schema
    return schemas, problems


def attach_forms(processes: Sequence[ParsedProcess], schemas: dict[str, dict[str, Any]]) -> list[Problem]:
    """Put each task's uploaded form schema into its rule; a missing file is a located problem."""
    problems = []
    for process in processes:
        for task_id, rule in process.task_rules.items():
            name = rule.pop("form_file", None)
            if name is None:
                continue
            if name in schemas:
                rule["form"] = schemas[name]
            else:
                problems.append(Problem(
                    f"User task '{task_id}' uses the form '{name}', which is not in the upload. Upload the "
                    "form's .json file together with the .bpmn file.", process.source_file, element_id=task_id))
    return problems
