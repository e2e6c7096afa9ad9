"""An AHC HRSN screening sent as a FHIR QuestionnaireResponse (POST /fhir/QuestionnaireResponse, docs/fhir.md
"Screenings"), read into the start of the sdoh-screening-referral pathway.

- `questionnaire`: the AHC HRSN panel, a canonical ending in LOINC 96777-8 (`http://loinc.org/q/96777-8`,
  optionally `|version`);
- each answered item: the question's LOINC code, from `item.code` (a LOINC coding) else the last segment of
  `linkId` (`/96777-8/88122-7` or `88122-7`); groups are read through, answers' nested items too;
- each answer: `valueCoding` (its LA code), `valueString` (the code or the display text) or `valueInteger`
  (a safety item's score 1-5, or the 95614-4 total); several answers (96778-6) as a list;
- `subject`: a contained Patient or `subject.identifier`, as an inbound Encounter's (interop/fhir_inbound.py);
- the business key (the case id): `identifier.value`, else the resource's `id`.

The answers then go through engine/sdoh/screening.py as any screening does: an unknown question or answer is
refused (422) naming it, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from ..errors import Problem, ValidationFailed
from ..interop.fhir_inbound import subject_patient
from ..patients import Identifier
from .screening import PANEL, read_screening

LOINC = "http://loinc.org"
PATHWAY = "sdoh-screening-referral"
MAX_ITEMS = 100
MAX_KEY = 100  # the pathway's case_id
SEVERAL = "96778-6"  # problems with the place: a list of answers


@dataclass(frozen=True)
class ScreeningStart:
    business_key: str
    answers: dict[str, Any]  # LOINC question code -> answer(s), as read_screening takes them
    screened_on: date  # authored, else the day it was received
    identifiers: tuple[Identifier, ...]
    demographics: dict[str, Any]


def read_questionnaire_response(document: dict[str, Any], today: date) -> ScreeningStart:
    if document.get("resourceType") != "QuestionnaireResponse":
        raise _refuse("resourceType", "the body must be a QuestionnaireResponse")
    questionnaire = document.get("questionnaire")
    if not isinstance(questionnaire, str) or questionnaire.split("|")[0].rstrip("/").rsplit("/", 1)[-1] != PANEL:
        raise _refuse("questionnaire", f"'{str(questionnaire)[:80]}' is not the AHC HRSN screening (LOINC {PANEL}, "
                                       f"{LOINC}/q/{PANEL})")
    identifiers, demographics = subject_patient(document, None, "QuestionnaireResponse")
    answers: dict[str, Any] = {}
    _read_items(document.get("item"), "item", answers, [0])
    read_screening(answers, "QuestionnaireResponse.item")  # refuses what the instrument does not have, naming it
    return ScreeningStart(_business_key(document), answers, _authored(document, today), identifiers, demographics)


def start_data(start: ScreeningStart) -> dict[str, Any]:
    """The pathway's start data (bpmn/sdoh-screening-referral.pathway.json)."""
    return {"case_id": start.business_key, "screening": start.answers,
            "screening_date": start.screened_on.isoformat()}


def _read_items(items: Any, where: str, answers: dict[str, Any], count: list[int]) -> None:
    if items is None:
        return
    if not isinstance(items, list):
        raise _refuse(where, "item is a list")
    for number, item in enumerate(items):
        count[0] += 1
        if count[0] > MAX_ITEMS:
            raise _refuse(where, f"more than {MAX_ITEMS} items")
        here = f"{where}[{number}]"
        if not isinstance(item, dict):
            raise _refuse(here, "an item is an object")
        given = item.get("answer")
        if given:
            given = given if isinstance(given, list) else [given]
            question = _question(item, here)
            values = [_value(a, f"{here}.answer") for a in given]
            answers[question] = values if len(values) > 1 or question == SEVERAL else values[0]
            for answer_number, answer in enumerate(given):
                _read_items(answer.get("item"), f"{here}.answer[{answer_number}].item", answers, count)
        _read_items(item.get("item"), f"{here}.item", answers, count)


def _question(item: dict[str, Any], where: str) -> str:
    codes = [c.get("code") for c in item.get("code") or [] if isinstance(c, dict) and c.get("system") == LOINC]
    if codes and isinstance(codes[0], str):
        return codes[0]
    link = item.get("linkId")
    if not isinstance(link, str) or not link.strip("/"):
        raise _refuse(f"{where}.linkId", "an answered item needs its question's LOINC code (code or linkId)")
    return link.strip("/").rsplit("/", 1)[-1]


def _value(answer: Any, where: str) -> Any:
    if not isinstance(answer, dict):
        raise _refuse(where, "an answer is an object")
    if isinstance(answer.get("valueCoding"), dict):
        code = answer["valueCoding"].get("code") or answer["valueCoding"].get("display")
        if isinstance(code, str):
            return code
    for key in ("valueString", "valueInteger"):
        if isinstance(answer.get(key), str | int) and not isinstance(answer.get(key), bool):
            return answer[key]
    raise _refuse(where, "an answer is a valueCoding (its LA code), a valueString or a valueInteger")


def _business_key(document: dict[str, Any]) -> str:
    identifier = document.get("identifier")
    value = identifier.get("value") if isinstance(identifier, dict) else None
    key = value if isinstance(value, str) and value.strip() else document.get("id")
    if not isinstance(key, str) or not key.strip():
        raise _refuse("identifier", "the QuestionnaireResponse needs an identifier.value or an id: it is the case "
                                    "id (the business key)")
    if len(key) > MAX_KEY:
        raise _refuse("identifier", f"the case id is longer than {MAX_KEY} characters")
    return key.strip()


def _authored(document: dict[str, Any], today: date) -> date:
    authored = document.get("authored")
    if authored is None:
        return today
    try:
        return date.fromisoformat(str(authored)[:10])
    except ValueError:
        raise _refuse("authored", f"'{str(authored)[:40]}' is not a date") from None


def _refuse(element: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"QuestionnaireResponse.{element}: {message}",
                            [Problem(message, field=f"QuestionnaireResponse.{element}")])
