"""The CMS Accountable Health Communities Health-Related Social Needs screening (AHC HRSN, LOINC panel
96777-8), its ten core questions read from a JSON object keyed by the questions' LOINC codes.

Each answer is its LOINC answer code (`LA28397-0`) or its display text (`Often true`), case-insensitive;
96778-6 (problems with the place) takes several answers as a list; the four safety items also take their
score 1-5. A question or an answer the instrument does not have is refused, naming it (a 422 over HTTP),
never guessed. What the DMN `bpmn/sdoh-hrsn-scoring.dmn` reads comes out as named variables
(`hrsn_food_worried`, `hrsn_living_situation`, ...), each a short answer key ("often", "worried", ...).

Sources: the question and answer codes are LOINC's (panel 96777-8, answer lists LL5876-9 living situation,
LL4426-1 food, LL361-7 yes/no, LL6316-9 utilities, LL6334-2 safety frequency), as the HL7 Gravity SDOH
Clinical Care IG's AHC HRSN mapping tables list them; the scoring rules are the AHC HRSN tool's
(docs/pathways/sdoh-screening-referral.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import Problem, ValidationFailed

PANEL = "96777-8"
SAFETY_TOTAL = "95614-4"


@dataclass(frozen=True)
class Answer:
    code: str  # LOINC answer code
    display: str
    key: str  # the short value the DMN reads
    score: int | None = None  # the safety items' frequency score


@dataclass(frozen=True)
class Question:
    code: str
    text: str
    variable: str
    answers: tuple[Answer, ...]
    several: bool = False


_OFTEN = (Answer("LA28397-0", "Often true", "often"), Answer("LA6729-3", "Sometimes true", "sometimes"),
          Answer("LA28398-8", "Never true", "never"))
_YES_NO = (Answer("LA33-6", "Yes", "yes"), Answer("LA32-8", "No", "no"))
_FREQUENCY = (Answer("LA6270-8", "Never", "never", 1), Answer("LA10066-1", "Rarely", "rarely", 2),
              Answer("LA10082-8", "Sometimes", "sometimes", 3), Answer("LA16644-9", "Fairly often", "fairly_often", 4),
              Answer("LA6482-9", "Frequently", "frequently", 5))
NONE_OF_THE_ABOVE = "LA9-3"
_ANYONE = "How often does anyone, including family and friends, "

QUESTIONS: tuple[Question, ...] = (
    Question("71802-3", "What is your living situation today?", "hrsn_living_situation", (
        Answer("LA31993-1", "I have a steady place to live", "steady"),
        Answer("LA31994-9", "I have a place to live today, but I am worried about losing it in the future", "worried"),
        Answer("LA31995-6", "I do not have a steady place to live (I am temporarily staying with others, in a "
               "hotel, in a shelter, living outside on the street, on a beach, in a car, abandoned building, bus "
               "or train station, or in a park)", "no_steady_place"))),
    Question("96778-6", "Think about the place you live. Do you have problems with any of the following?",
             "hrsn_housing_problems", (
                 Answer("LA31996-4", "Pests such as bugs, ants, or mice", "pests"),
                 Answer("LA28580-1", "Mold", "mold"), Answer("LA31997-2", "Lead paint or pipes", "lead"),
                 Answer("LA31998-0", "Lack of heat", "lack_of_heat"),
                 Answer("LA31999-8", "Oven or stove not working", "oven_or_stove"),
                 Answer("LA32000-4", "Smoke detectors missing or not working", "smoke_detectors"),
                 Answer("LA32001-2", "Water leaks", "water_leaks"),
                 Answer(NONE_OF_THE_ABOVE, "None of the above", "none")), several=True),
    Question("88122-7", "Within the past 12 months, you worried that your food would run out before you got "
             "money to buy more.", "hrsn_food_worried", _OFTEN),
    Question("88123-5", "Within the past 12 months, the food you bought just didn't last and you didn't have "
             "money to get more.", "hrsn_food_didnt_last", _OFTEN),
    Question("93030-5", "In the past 12 months, has lack of reliable transportation kept you from medical "
             "appointments, meetings, work or from getting things needed for daily living?",
             "hrsn_transportation", _YES_NO),
    Question("96779-4", "In the past 12 months has the electric, gas, oil, or water company threatened to shut "
             "off services in your home?", "hrsn_utilities",
             (*_YES_NO, Answer("LA32002-0", "Already shut off", "already_shut_off"))),
    Question("95618-5", _ANYONE + "physically hurt you?", "hrsn_safety_hurt", _FREQUENCY),
    Question("95617-7", _ANYONE + "insult or talk down to you?", "hrsn_safety_insult", _FREQUENCY),
    Question("95616-9", _ANYONE + "threaten you with harm?", "hrsn_safety_threaten", _FREQUENCY),
    Question("95615-1", _ANYONE + "scream or curse at you?", "hrsn_safety_scream", _FREQUENCY),
)
BY_CODE = {q.code: q for q in QUESTIONS}
SAFETY_ITEMS = ("95618-5", "95617-7", "95616-9", "95615-1")
MAX_ANSWERS = 8  # 96778-6 has eight answers

# ICD-10-CM Z-codes for a positive domain, as the Gravity SDOH Clinical Care IG's condition value sets use
# them: food insecurity Z59.41; transportation insecurity Z59.82; utilities Z59.12 (inadequate housing
# utilities); housing by the answer: no steady place Z59.00 (homelessness unspecified: the tool cannot
# tell sheltered Z59.01 from unsheltered Z59.02), worried about losing it Z59.811 (housing instability,
# housed, with risk of homelessness), lack of heat Z59.11 (inadequate housing environmental temperature),
# the other problems with the place Z59.19 (other inadequate housing). Safety: Z91.419 (personal history of
# unspecified adult abuse) is a local choice -- the AHC items do not say which kind of harm, and the
# Gravity IG leaves interpersonal-safety coding to the clinician's assessment; review it with coders.
Z_CODES = {"food": "Z59.41", "transportation": "Z59.82", "utilities": "Z59.12", "safety": "Z91.419"}
HOUSING_Z_CODES = {"no_steady_place": "Z59.00", "worried": "Z59.811", "lack_of_heat": "Z59.11"}
OTHER_INADEQUATE_HOUSING = "Z59.19"


@dataclass(frozen=True)
class Screening:
    answers: dict[str, Any]  # LOINC question code -> LOINC answer code (a list for 96778-6)
    variables: dict[str, Any]  # what the DMN reads

    def z_codes(self, domains: list[str]) -> list[str]:
        codes: list[str] = []
        for domain in domains:
            codes += _housing_codes(self.variables) if domain == "housing" else [Z_CODES[domain]]
        return list(dict.fromkeys(codes))


def read_screening(raw: Any, where: str = "screening") -> Screening:
    """The screening as LOINC codes and named variables; ValidationFailed naming every unknown question
    or answer."""
    if not isinstance(raw, Mapping):
        raise ValidationFailed(f"{where} must be a JSON object keyed by the questions' LOINC codes",
                               [Problem("must be an object", field=where)])
    problems: list[Problem] = []
    answers: dict[str, Any] = {}
    keys: dict[str, Any] = {}
    for code, value in raw.items():
        question = BY_CODE.get(str(code).strip())
        if question is None:
            if str(code).strip() != SAFETY_TOTAL:
                problems.append(Problem(f"{where}: '{code}' is not a question of the AHC HRSN core screening "
                                        f"(questions: {', '.join([*BY_CODE, SAFETY_TOTAL])})", field=f"{where}.{code}"))
            continue
        found = _read_answer(question, value, f"{where}.{question.code}", problems)
        if found is not None:
            answers[question.code] = found[0]
            keys[question.code] = found[1]
    total = _safety_total(raw.get(SAFETY_TOTAL), answers, f"{where}.{SAFETY_TOTAL}", problems)
    if not answers and not problems:
        problems.append(Problem(f"{where}: no question is answered", field=where))
    if problems:
        raise ValidationFailed(f"the {where} does not fit the AHC HRSN screening ({problems[0].message})", problems)
    if total is not None:
        answers[SAFETY_TOTAL] = total
    return Screening(answers, _variables(keys, total))


def _read_answer(question: Question, value: Any, field: str, problems: list[Problem]) -> tuple[Any, Any] | None:
    if question.several:
        values = value if isinstance(value, list) else [value]
        if len(values) > MAX_ANSWERS:
            problems.append(Problem(f"{field}: at most {MAX_ANSWERS} answers", field=field))
            return None
        found = [_match(question, v, field, problems) for v in values]
        if any(a is None for a in found):
            return None
        chosen = list(dict.fromkeys(a.code for a in found if a is not None))
        if NONE_OF_THE_ABOVE in chosen and len(chosen) > 1:
            problems.append(Problem(f"{field}: 'None of the above' cannot go with other answers", field=field))
            return None
        keys = [a.key for a in found if a is not None and a.code != NONE_OF_THE_ABOVE]
        return chosen, list(dict.fromkeys(keys))
    answer = _match(question, value, field, problems)
    return None if answer is None else (answer.code, answer)


def _match(question: Question, value: Any, field: str, problems: list[Problem]) -> Answer | None:
    if isinstance(value, int) and not isinstance(value, bool):
        scored = [a for a in question.answers if a.score is not None and a.score == value]
        if scored:
            return scored[0]
    elif isinstance(value, str) and len(value) <= 300:
        wanted = value.strip().casefold()
        for answer in question.answers:
            short = answer.display.split(" (")[0]  # "I do not have a steady place to live" without the list
            if wanted in (answer.code.casefold(), answer.display.casefold(), short.casefold()):
                return answer
    choices = "; ".join(f"{a.code} {a.display.split(' (')[0]}" for a in question.answers)
    problems.append(Problem(f"{field}: {str(value)[:80]!r} is not an answer to {question.code} "
                            f"('{question.text}'); answers: {choices}", field=field))
    return None


def _safety_total(given: Any, answers: dict[str, Any], field: str, problems: list[Problem]) -> int | None:
    items = [a for code, a in answers.items() if code in SAFETY_ITEMS]
    scores = [_score(code) for code in items]
    total = sum(scores) if len(scores) == len(SAFETY_ITEMS) else None
    if given is None:
        return total
    if isinstance(given, bool) or not isinstance(given, int) or not 4 <= given <= 20:
        problems.append(Problem(f"{field}: the safety total must be a whole number from 4 to 20", field=field))
        return None
    if total is not None and total != given:
        problems.append(Problem(f"{field}: the total {given} is not the sum of the four safety answers ({total})",
                                field=field))
        return None
    return given


def _score(answer_code: str) -> int:
    return next(a.score or 0 for a in BY_CODE[SAFETY_ITEMS[0]].answers if a.code == answer_code)


def _variables(keys: dict[str, Any], total: int | None) -> dict[str, Any]:
    """Every named variable, None where the question was not asked (the DMN's rules do not match None)."""
    out: dict[str, Any] = {q.variable: None for q in QUESTIONS}
    for code, answer in keys.items():
        question = BY_CODE[code]
        out[question.variable] = answer if question.several else answer.key
    out["hrsn_housing_problem_count"] = len(out["hrsn_housing_problems"] or [])
    out["hrsn_safety_total"] = total
    return out


def _housing_codes(variables: dict[str, Any]) -> list[str]:
    codes = []
    situation = variables.get("hrsn_living_situation")
    if situation in HOUSING_Z_CODES:
        codes.append(HOUSING_Z_CODES[situation])
    for problem in variables.get("hrsn_housing_problems") or []:
        codes.append(HOUSING_Z_CODES.get(problem, OTHER_INADEQUATE_HOUSING))
    return codes
