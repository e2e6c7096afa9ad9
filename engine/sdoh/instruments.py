"""Screening instruments a form or a start data schema declares on an object property:

    "screening": {"type": "object", "x-carepath-instrument": "ahc-hrsn"}

Whatever arrives in that property (start data from an EHR, a screening task's form) is read by the
instrument: an unknown question or answer is refused with the other form problems (422), and the
workflow receives, beside it, the instrument's named variables (`hrsn_food_worried`, ...) that the
pathway's DMN and conditions read, and the answers as LOINC codes in place of the display texts sent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import Problem, ValidationFailed
from .screening import QUESTIONS, Screening, read_screening

INSTRUMENT_KEYWORD = "x-carepath-instrument"
AHC_HRSN = "ahc-hrsn"
DOMAINS = ("food", "housing", "transportation", "utilities", "safety")


def _ahc_hrsn(raw: Any, where: str) -> dict[str, Any]:
    screening: Screening = read_screening(raw, where)
    return {where: screening.answers, **screening.variables,
            "hrsn_z_codes": {domain: screening.z_codes([domain]) for domain in DOMAINS}}


READERS: dict[str, Callable[[Any, str], dict[str, Any]]] = {AHC_HRSN: _ahc_hrsn}


def declared(schema: dict[str, Any] | None) -> list[tuple[str, str]]:
    """(property, instrument) for each top-level property that declares an instrument."""
    properties = (schema or {}).get("properties") or {}
    return [(name, prop[INSTRUMENT_KEYWORD]) for name, prop in properties.items()
            if isinstance(prop, dict) and prop.get(INSTRUMENT_KEYWORD) in READERS]


def instrument_problems(schema: dict[str, Any] | None, data: Any) -> list[Problem]:
    problems: list[Problem] = []
    if not isinstance(data, dict):
        return problems
    for name, instrument in declared(schema):
        if name in data:
            try:
                READERS[instrument](data[name], name)
            except ValidationFailed as exc:
                problems += exc.problems
    return problems


def with_instruments(schema: dict[str, Any] | None, data: dict[str, Any]) -> dict[str, Any]:
    """The data with each declared instrument's variables added (the data was checked before)."""
    out = dict(data)
    for name, instrument in declared(schema):
        if name in data:
            out.update(READERS[instrument](data[name], name))
    return out


def question_schema() -> dict[str, Any]:
    """The AHC HRSN questions as a JSON Schema object (each question's words, each answer's code and text),
    as the screening task's form shows them."""
    properties: dict[str, Any] = {}
    for question in QUESTIONS:
        choices = [{"const": a.code, "title": a.display} for a in question.answers]
        one = {"type": "string", "title": question.text, "oneOf": choices}
        properties[question.code] = ({"type": "array", "title": question.text, "items": one, "uniqueItems": True}
                                     if question.several else one)
    return {"type": "object", "title": "AHC HRSN screening", INSTRUMENT_KEYWORD: AHC_HRSN, "properties": properties}
