"""Pathway triggers: which ADT events start or move a pathway, declared in its sidecar (`triggers`).

    "triggers": [
      {"id": "ed-discharge", "on": ["ADT^A03"], "when": {"patient_class": ["E"]}, "action": "start",
       "start_data": {"ed_visit_date": "discharge_date", "diagnosis_category": "diagnosis_category"}},
      {"id": "admitted", "on": ["ADT^A01", "ADT^A06"], "action": "deliver", "message": "ed_visit_admitted"}]

A trigger reads an event through a fixed vocabulary of *facts* (`FACTS`) and *conditions* (`CONDITIONS`),
never through HL7 field numbers, so that another source of the same events (a FHIR Encounter, a Da Vinci
notification) can be mapped onto the same facts (`facts_of_adt` is the ADT mapping) and the clinical lead's
rules keep working. `start` starts the pathway with the business key = the visit number and its start data
mapped from facts (field → fact); `deliver` sends `message` (with `data` mapped from facts) to the patient's
open episodes of the pathway, correlated by the patient (an admission carries a new visit number).
Deploy checks every trigger (`parse_triggers`): a problem names the trigger. docs/adt-routing.md documents it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from .adt import COMMUNITY_DISPOSITIONS, PATIENT_CLASSES, AdtEvent, diagnosis_category, local_date

# The events a trigger may name: what each means.
EVENTS: dict[str, str] = {
    "ADT^A01": "admit / visit notification (an inpatient admission)",
    "ADT^A03": "discharge / end of a visit",
    "ADT^A04": "registration (an ED arrival, an outpatient visit at a clinic)",
    "ADT^A06": "an outpatient or ED visit became an inpatient admission",
    "ADT^A07": "an inpatient stay became an outpatient visit",
}
ACTIONS = ("start", "deliver")
DISCHARGES, ADMISSIONS = ("A03",), ("A01", "A04", "A06")
MAX_TRIGGERS = 50
# The care setting a patient class stands for, unless the facility is configured as a SNF.
SETTING_OF_CLASS = {"E": "emergency", "I": "inpatient", "O": "outpatient"}
SETTINGS = ("emergency", "inpatient", "outpatient", "snf")


@dataclass(frozen=True)
class Fact:
    description: str
    source: str  # where ADT carries it


# The facts a trigger's start_data / data may name. Dates are ISO dates in the care setting's time zone.
FACTS: dict[str, Fact] = {
    "discharge_date": Fact("the day the patient was discharged", "PV1-45; an A03 without it: its event time"),
    "admit_date": Fact("the day the patient was admitted or the visit began",
                       "PV1-44; an A01, A04 or A06 without it: its event time"),
    "event_date": Fact("the day the event happened (the visit date of a registration)",
                       "EVN-6, else EVN-2, else MSH-7"),
    "diagnosis_category": Fact("substance_use, mental_illness or other, from the principal diagnosis "
                               "(table in docs/adt-routing.md)", "DG1 (priority 1, else the first; final first)"),
    "diagnosis_code": Fact("the principal diagnosis's ICD-10 code ('' without one)", "DG1-3"),
    "visit_number": Fact("the visit number (the business key of an episode a trigger starts)", "PV1-19"),
    "patient_class": Fact("E, I, O, … (HL7 table 0004)", "PV1-2"),
    "disposition": Fact("the discharge disposition code (NUBC UB-04 FL17)", "PV1-36"),
    "facility": Fact("the facility of the visit", "PV1-3.4, else MSH-4"),
    "setting": Fact("snf when the facility is configured as a SNF (CAREPATH_ADT_SNF_FACILITIES), else "
                    "emergency (E), inpatient (I) or outpatient (O) from the patient class", "PV1-2, PV1-3.4"),
}


@dataclass(frozen=True)
class Condition:
    description: str
    kind: type  # list: the fact is one of the listed values; bool: the fact is true / false


# The conditions a trigger's `when` may hold; all of them must hold.
CONDITIONS: dict[str, Condition] = {
    "patient_class": Condition("the patient class is one of the listed codes", list),
    "disposition": Condition("the discharge disposition is one of the listed codes", list),
    "facility": Condition("the facility is one of the listed names", list),
    "setting": Condition(f"the setting is one of the listed ones ({', '.join(SETTINGS)})", list),
    "to_community": Condition("the discharge disposition is (true) or is not (false) to the community "
                              "(table in docs/adt-routing.md)", bool),
}


@dataclass(frozen=True)
class Trigger:
    id: str
    on: tuple[str, ...]
    action: str
    when: dict[str, Any] = field(default_factory=dict)
    start_data: dict[str, str] = field(default_factory=dict)  # start data field → fact
    message: str = ""
    data: dict[str, str] = field(default_factory=dict)  # message data field → fact

    def mismatch(self, facts: dict[str, Any]) -> str | None:
        """None when every condition holds, else the first that does not, in words."""
        for name, wanted in self.when.items():
            value = facts.get(name)
            if isinstance(wanted, bool):
                if bool(value) is not wanted:
                    return f"{name} is {'false' if wanted else 'true'}"
            elif value not in wanted:
                return f"{name} is {value or 'not given'!r}, not {' or '.join(map(repr, wanted))}"
        return None


def facts_of_adt(event: AdtEvent, zone: ZoneInfo, snf_facilities: Collection[str] = ()) -> dict[str, Any]:
    """The facts of an ADT event (the keys of FACTS, and to_community)."""
    snf = {f.casefold() for f in snf_facilities}

    def day(moment: Any) -> str:
        found = local_date(moment, zone)
        return found.isoformat() if found else ""

    principal = event.principal_diagnosis
    setting = "snf" if event.facility.casefold() in snf else SETTING_OF_CLASS.get(event.patient_class, "")
    # Without PV1-45 / PV1-44, the time of the discharge or admission event itself stands in for them.
    discharged = event.discharged_at or (event.occurred_at if event.trigger in DISCHARGES else None)
    admitted = event.admitted_at or (event.occurred_at if event.trigger in ADMISSIONS else None)
    return {"discharge_date": day(discharged), "admit_date": day(admitted),
            "event_date": day(event.occurred_at), "diagnosis_category": diagnosis_category(principal),
            "diagnosis_code": principal.code if principal else "", "visit_number": event.visit_number,
            "patient_class": event.patient_class, "disposition": event.disposition, "facility": event.facility,
            "setting": setting, "to_community": event.to_community}


def describe(event: AdtEvent) -> str:
    """An event in words for outcomes: 'an A03 with patient class E, disposition 01 (…) at GENHOSP'."""
    parts = [f"patient class {event.patient_class} ({PATIENT_CLASSES.get(event.patient_class, 'unknown')})"
             if event.patient_class else "no patient class (no PV1-2)"]
    if event.disposition:
        parts.append(f"disposition {event.disposition_text}")
    where = f" at {event.facility}" if event.facility else ""
    return f"an {event.trigger} with {', '.join(parts)}{where}"


# -- checked at deploy ---------------------------------------------------------------------------

def parse_triggers(declared: Any, *, start_schema: dict[str, Any] | None,
                   message_catches: Sequence[str]) -> tuple[list[Trigger], list[str]]:
    """The sidecar's triggers, checked against the pathway: its start data schema (fields a start trigger
    maps, required fields it must give) and the messages its diagram catches. Problems name the trigger."""
    if declared is None:
        return [], []
    if not isinstance(declared, list) or len(declared) > MAX_TRIGGERS:
        return [], [f'"triggers" must be a list of at most {MAX_TRIGGERS} trigger objects such as '
                    '{"id": "ed-discharge", "on": ["ADT^A03"], "when": {"patient_class": ["E"]}, "action": "start", '
                    '"start_data": {"ed_visit_date": "discharge_date"}}']
    triggers, problems, seen = [], [], set()
    for i, raw in enumerate(declared):
        name = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else f"#{i + 1}"
        found = _trigger_problems(raw, start_schema, message_catches)
        if name in seen:
            found.append("another trigger has the same id")
        seen.add(name)
        problems += [f"trigger '{name}': {p}" for p in found]
        if not found:
            triggers.append(_trigger(raw))
    return triggers, problems


_KEYS = {"id", "on", "when", "action", "start_data", "message", "data", "description"}


def _trigger_problems(raw: Any, schema: dict[str, Any] | None, catches: Sequence[str], *,
                      strict: bool = True) -> list[str]:
    if not isinstance(raw, dict):
        return ["must be a JSON object"]
    problems = [f'unknown key "{k}"; a trigger has {", ".join(sorted(_KEYS))}' for k in sorted(set(raw) - _KEYS)]
    if not isinstance(raw.get("id"), str) or not raw["id"].strip() or len(raw["id"]) > 100:
        problems.append('needs "id", a short name (at most 100 characters)')
    on = raw.get("on")
    if not isinstance(on, list) or not on or not all(isinstance(e, str) for e in on):
        problems.append(f'needs "on", a list of events ({", ".join(EVENTS)})')
    else:
        problems += [f"unknown event '{e}'; triggers take {', '.join(EVENTS)}" for e in on if e not in EVENTS]
    problems += _when_problems(raw.get("when", {}))
    action = raw.get("action")
    if action == "start":
        problems += _start_problems(raw, schema) if strict else _mapping_problems(raw.get("start_data", {}),
                                                                                   "start_data")
    elif action == "deliver":
        problems += _deliver_problems(raw, catches)
    else:
        problems.append(f'"action" must be one of {", ".join(ACTIONS)}, not {action!r}')
    return problems


def _when_problems(when: Any) -> list[str]:
    if not isinstance(when, dict):
        return ['"when" must be an object of conditions, e.g. {"patient_class": ["E"]}']
    problems = []
    for name, wanted in when.items():
        condition = CONDITIONS.get(name)
        if condition is None:
            problems.append(f"unknown condition '{name}'; conditions are {', '.join(CONDITIONS)}")
        elif condition.kind is bool and not isinstance(wanted, bool):
            problems.append(f"condition '{name}' takes true or false")
        elif condition.kind is list and (not isinstance(wanted, list) or not wanted
                                         or not all(isinstance(v, str) and v for v in wanted)):
            problems.append(f"condition '{name}' takes a non-empty list of codes, e.g. [\"E\"]")
        elif name == "setting" and set(wanted) - set(SETTINGS):
            problems.append(f"condition 'setting' takes {', '.join(SETTINGS)}, not "
                            f"{', '.join(sorted(set(wanted) - set(SETTINGS)))}")
    return problems


def _mapping_problems(mapping: Any, key: str) -> list[str]:
    if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
        return [f'"{key}" must map each field to a fact name, e.g. {{"ed_visit_date": "discharge_date"}}']
    return [f"unknown fact '{fact}' for '{target}'; facts are {', '.join(FACTS)}"
            for target, fact in mapping.items() if fact not in FACTS]


def _start_problems(raw: dict[str, Any], schema: dict[str, Any] | None) -> list[str]:
    mapping = raw.get("start_data", {})
    problems = _mapping_problems(mapping, "start_data")
    if raw.get("message") or raw.get("data"):
        problems.append('a start trigger has no "message" or "data" (the start data is "start_data")')
    if problems:
        return problems
    properties = (schema or {}).get("properties") or {}
    problems += [f"start_data field '{target}' is not in the pathway's start data (its fields: "
                 f"{', '.join(properties) or 'none'})" for target in mapping if target not in properties]
    problems += [f"the pathway's start data requires '{name}', which the trigger does not give: map it from a fact "
                 "or collect it in the intake task (\"intake\")"
                 for name in (schema or {}).get("required") or [] if name not in mapping]
    return problems


def _deliver_problems(raw: dict[str, Any], catches: Sequence[str]) -> list[str]:
    problems = _mapping_problems(raw.get("data", {}), "data")
    if raw.get("start_data"):
        problems.append('a deliver trigger has no "start_data" (the message data is "data")')
    message = raw.get("message")
    if not isinstance(message, str) or not message:
        problems.append('needs "message", the name of a message the pathway catches')
    elif message not in catches:
        problems.append(f"the pathway does not catch a message named '{message}' (it catches: "
                        f"{', '.join(sorted(set(catches))) or 'none'})")
    return problems


def _trigger(raw: dict[str, Any]) -> Trigger:
    return Trigger(id=raw["id"], on=tuple(raw["on"]), action=raw["action"], when=dict(raw.get("when") or {}),
                   start_data=dict(raw.get("start_data") or {}), message=raw.get("message") or "",
                   data=dict(raw.get("data") or {}))


def mapped(mapping: dict[str, str], facts: dict[str, Any]) -> dict[str, Any]:
    """The fields of a mapping given a value (a fact the event does not carry is left out)."""
    return {target: facts[fact] for target, fact in mapping.items() if facts.get(fact) not in (None, "")}


def read_triggers(declared: Any) -> list[Trigger]:
    """The triggers of a sidecar deploy already checked (a trigger that no longer reads is skipped)."""
    if not isinstance(declared, list):
        return []
    return [_trigger(raw) for raw in declared[:MAX_TRIGGERS] if isinstance(raw, dict)
            and not _trigger_problems(raw, None, [str(raw.get("message"))], strict=False)]


__all__ = ["ACTIONS", "CONDITIONS", "COMMUNITY_DISPOSITIONS", "EVENTS", "FACTS", "Trigger", "describe",
           "facts_of_adt", "mapped", "parse_triggers", "read_triggers"]
