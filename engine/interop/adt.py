"""An HL7 v2 ADT message in the product's own terms: who the patient is, which visit, what happened when.

`adt_event(message, zone)` reads a message parsed by the `hl7` library (engine/interop/hl7v2.py parses the
bytes) into an `AdtEvent`. Only what care coordination needs is kept (minimum necessary): identifiers
other than Social Security numbers, name, birth date, phone and address, the visit and its diagnoses.
PID-19 and SS-typed identifiers are never read into it.

HL7 v2 times without an offset are the sender's local time; they are read in the care setting's zone,
which the caller passes in. Fields are numbered as the standard numbers them, MSH included (the hl7
library's `segment[19]` is SEG-19).

The tables the routing rules rely on are here, each written once and documented in docs/adt-routing.md:
`diagnosis_category` (principal diagnosis → the post-ED pathway's category, with its precedence) and
`COMMUNITY_DISPOSITIONS` (which discharge dispositions send the patient to the community).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import hl7

from ..errors import ValidationFailed

# Identifier types never kept (minimum necessary; PID-19 is not read at all).
NOT_KEPT_IDENTIFIER_TYPES = frozenset({"SS", "SSN"})

# NUBC UB-04 FL17 patient discharge status codes (PV1-36 in US feeds) that leave the patient in the
# community setting CMS TCM requires: home or self-care, home health, and the ones read as home in the
# TCM guidance (domiciliary, rest home, assisted living are home: 01). Left against medical advice (07)
# is a discharge home. Hospice at home (50) is home but TCM is rarely billed for it; it is kept out.
COMMUNITY_DISPOSITIONS: dict[str, str] = {
    "01": "home or self-care",
    "06": "home under a home health service",
    "07": "left against medical advice",
    "08": "home under a home IV provider",
    "81": "home or self-care, with a planned readmission",
    "86": "home under a home health service, with a planned readmission",
}
# The ones that start nothing, named so the outcome can say why.
NON_COMMUNITY_DISPOSITIONS: dict[str, str] = {
    "02": "transferred to a short-term hospital",
    "03": "transferred to a skilled nursing facility",
    "04": "transferred to an intermediate care facility",
    "05": "transferred to another institution",
    "20": "expired",
    "21": "discharged to court or law enforcement",
    "30": "still a patient",
    "40": "expired at home (hospice)",
    "41": "expired in a medical facility (hospice)",
    "42": "expired, place unknown (hospice)",
    "43": "transferred to a federal health care facility",
    "50": "discharged to hospice at home",
    "51": "discharged to hospice in a medical facility",
    "61": "transferred to a swing bed",
    "62": "transferred to an inpatient rehabilitation facility",
    "63": "transferred to a long-term care hospital",
    "64": "transferred to a nursing facility (Medicaid)",
    "65": "transferred to a psychiatric hospital",
    "66": "transferred to a critical access hospital",
    "69": "transferred to a designated disaster alternative care site",
    "70": "transferred to another type of health care institution",
}

# HL7 table 0004 (patient class).
PATIENT_CLASSES = {"E": "emergency", "I": "inpatient", "O": "outpatient", "P": "preadmit",
                   "R": "recurring patient", "B": "obstetrics", "C": "commercial account", "N": "not applicable",
                   "U": "unknown"}

MAX_DIAGNOSES = 50  # DG1 segments read; a message with more keeps the first fifty
_ICD10 = re.compile(r"^([A-Z])(\d{2})")


@dataclass(frozen=True)
class PatientIdentifier:
    """One PID-3 (or MRG-1) repetition: the value, who assigned it (PID-3.4) and its type (PID-3.5, MR, PI…)."""

    value: str
    authority: str
    type_code: str


@dataclass(frozen=True)
class Diagnosis:
    """A DG1 segment: code (DG1-3.1), its coding system (DG1-3.3 or DG1-2), type (DG1-6: A admitting,
    W working, F final) and priority (DG1-15; 1 is the principal diagnosis)."""

    code: str
    system: str
    text: str
    type: str
    priority: int | None


@dataclass(frozen=True)
class AdtEvent:
    """What an ADT message says happened, read in the care setting's zone."""

    trigger: str                     # A03, from MSH-9.2 (EVN-1 when MSH-9 has none)
    occurred_at: datetime | None     # EVN-6, else EVN-2, else MSH-7 (aware, UTC)
    identifiers: tuple[PatientIdentifier, ...]
    family_name: str
    given_name: str
    birth_date: date | None
    phone: str
    address: str
    patient_class: str               # PV1-2
    visit_number: str                # PV1-19.1
    facility: str                    # PV1-3.4, else MSH-4
    admitted_at: datetime | None     # PV1-44
    discharged_at: datetime | None   # PV1-45
    disposition: str                 # PV1-36
    diagnoses: tuple[Diagnosis, ...]
    prior_identifiers: tuple[PatientIdentifier, ...] = ()   # MRG-1 (A40 merge, A37 unlink)
    prior_visit_number: str = ""     # MRG-5

    @property
    def principal_diagnosis(self) -> Diagnosis | None:
        return principal_diagnosis(self.diagnoses)

    @property
    def to_community(self) -> bool:
        return self.disposition in COMMUNITY_DISPOSITIONS

    @property
    def disposition_text(self) -> str:
        known = COMMUNITY_DISPOSITIONS.get(self.disposition) or NON_COMMUNITY_DISPOSITIONS.get(self.disposition)
        return f"{self.disposition} ({known})" if known else (self.disposition or "not given")


def principal_diagnosis(diagnoses: tuple[Diagnosis, ...]) -> Diagnosis | None:
    """The DG1 with priority 1, else the first DG1; among those, a final diagnosis (DG1-6 F) before a
    working one before an admitting one."""
    if not diagnoses:
        return None
    principal = [d for d in diagnoses if d.priority == 1] or list(diagnoses)
    rank = {"F": 0, "W": 1, "A": 2}
    return min(principal, key=lambda d: (rank.get(d.type, 3), diagnoses.index(d)))


# Principal diagnosis → the post-ED pathway's `diagnosis_category`, first match wins (the precedence the
# HEDIS measures imply: a substance use disorder is FUA's even though it is also an F-code):
#   1. F10–F19 (mental and behavioural disorders due to psychoactive substance use) → substance_use (FUA)
#   2. any other F-code (F01–F09, F20–F99), and intentional self-harm X71–X83 → mental_illness (FUM)
#   3. anything else, or no diagnosis → other
# Only ICD-10 codes are read (DG1-3.3 / DG1-2 "I10", "ICD10", "ICD-10-CM" or empty); another system → other.
DIAGNOSIS_CATEGORY_RULES: tuple[tuple[str, str], ...] = (
    ("F10–F19: mental and behavioural disorders due to psychoactive substance use", "substance_use"),
    ("F01–F09, F20–F99: other mental and behavioural disorders; X71–X83: intentional self-harm", "mental_illness"),
    ("any other code, another coding system, or no diagnosis", "other"),
)
ICD10_SYSTEMS = frozenset({"", "I10", "ICD10", "ICD-10", "ICD10CM", "ICD-10-CM", "I10C"})


def diagnosis_category(diagnosis: Diagnosis | None) -> str:
    if diagnosis is None or diagnosis.system.upper() not in ICD10_SYSTEMS:
        return "other"
    match = _ICD10.match(diagnosis.code.strip().upper())
    if match is None:
        return "other"
    letter, number = match.group(1), int(match.group(2))
    if letter == "F" and 10 <= number <= 19:
        return "substance_use"
    if letter == "F" or (letter == "X" and 71 <= number <= 83):
        return "mental_illness"
    return "other"


def adt_event(message: hl7.Message, zone: ZoneInfo) -> AdtEvent:
    """Read an ADT message. A message without PID is refused (every ADT event the product uses names a
    patient); every other field may be missing."""
    msh = _segment(message, "MSH")
    if msh is None:
        raise ValidationFailed("the message has no MSH segment")
    pid = _segment(message, "PID")
    if pid is None:
        raise ValidationFailed("the message has no PID segment: CarePath cannot tell which patient it is about")
    evn, pv1, mrg = _segment(message, "EVN"), _segment(message, "PV1"), _segment(message, "MRG")
    # The hl7 library numbers MSH as the standard does (MSH[1] is the field separator, MSH[9] the type).
    trigger = _component(msh, 9, 0, 1) or (evn and _component(evn, 1, 0, 0)) or ""
    occurred = ((evn and (_time(_component(evn, 6, 0, 0), zone) or _time(_component(evn, 2, 0, 0), zone)))
                or _time(_component(msh, 7, 0, 0), zone))
    identifiers = _identifiers(pid, 3)
    if not identifiers:
        raise ValidationFailed("PID-3 holds no patient identifier CarePath can use "
                               "(Social Security numbers are not kept)")
    return AdtEvent(
        trigger=trigger.upper(), occurred_at=occurred or None, identifiers=identifiers,
        family_name=_component(pid, 5, 0, 0), given_name=_component(pid, 5, 0, 1),
        birth_date=_date(_component(pid, 7, 0, 0)),
        phone=_phone(pid), address=_address(pid),
        patient_class=(pv1 and _component(pv1, 2, 0, 0).upper()) or "",
        visit_number=(pv1 and _component(pv1, 19, 0, 0)) or "",
        facility=(pv1 and _component(pv1, 3, 0, 3)) or _component(msh, 4, 0, 0),
        admitted_at=(pv1 and _time(_component(pv1, 44, 0, 0), zone)) or None,
        discharged_at=(pv1 and _time(_component(pv1, 45, 0, 0), zone)) or None,
        disposition=(pv1 and _component(pv1, 36, 0, 0)) or "",
        diagnoses=_diagnoses(message),
        prior_identifiers=_identifiers(mrg, 1) if mrg is not None else (),
        prior_visit_number=(mrg and _component(mrg, 5, 0, 0)) or "",
    )


def other_patient_identifiers(message: hl7.Message) -> tuple[PatientIdentifier, ...]:
    """The second patient an A37 (unlink) names: MRG-1 when the sender puts it there, else the second PID's
    PID-3 (the A37 structure repeats PID for the two records to unlink)."""
    mrg = _segment(message, "MRG")
    if mrg is not None:
        return _identifiers(mrg, 1)
    pids = _segments(message, "PID")
    return _identifiers(pids[1], 3) if len(pids) > 1 else ()


def _segment(message: hl7.Message, name: str) -> Any:
    try:
        return message.segment(name)
    except KeyError:
        return None


def _segments(message: hl7.Message, name: str) -> list[Any]:
    try:
        return list(message.segments(name))
    except KeyError:
        return []


def _component(segment: Any, field: int, repetition: int, component: int) -> str:
    """The text of SEG-field, repetition, component (all 0-based but the field), '' when absent."""
    if segment is None or len(segment) <= field:
        return ""
    value = segment[field]
    if isinstance(value, str):
        return value.strip() if repetition == 0 and component == 0 else ""
    if len(value) <= repetition:
        return ""
    rep = value[repetition]
    if isinstance(rep, str):
        return rep.strip() if component == 0 else ""
    if len(rep) <= component:
        return ""
    part = rep[component]
    if not isinstance(part, str):  # subcomponents: the first one
        part = part[0] if len(part) else ""
    return str(part).strip()


def _repetitions(segment: Any, field: int) -> int:
    if segment is None or len(segment) <= field or isinstance(segment[field], str):
        return 1 if segment is not None and len(segment) > field and segment[field] else 0
    return len(segment[field])


def _identifiers(segment: Any, field: int) -> tuple[PatientIdentifier, ...]:
    found: list[PatientIdentifier] = []
    for i in range(min(_repetitions(segment, field), 20)):
        value, authority, kind = (_component(segment, field, i, 0), _component(segment, field, i, 3),
                                  _component(segment, field, i, 4).upper())
        if value and kind not in NOT_KEPT_IDENTIFIER_TYPES:
            identifier = PatientIdentifier(value=value[:255], authority=authority[:255], type_code=kind[:16])
            if identifier not in found:
                found.append(identifier)
    return tuple(found)


def _diagnoses(message: hl7.Message) -> tuple[Diagnosis, ...]:
    found = []
    for dg1 in _segments(message, "DG1")[:MAX_DIAGNOSES]:
        code = _component(dg1, 3, 0, 0)
        if not code:
            continue
        priority = _component(dg1, 15, 0, 0)
        found.append(Diagnosis(code=code[:32], system=_component(dg1, 3, 0, 2) or _component(dg1, 2, 0, 0),
                               text=_component(dg1, 3, 0, 1)[:255] or _component(dg1, 4, 0, 0)[:255],
                               type=_component(dg1, 6, 0, 0).upper()[:1],
                               priority=int(priority) if priority.isdigit() else None))
    return tuple(found)


def _phone(pid: Any) -> str:
    # PID-13: XTN; the number is XTN-1 in older versions, XTN-6 (area) + XTN-7 (local) in 2.5+.
    area, local = _component(pid, 13, 0, 5), _component(pid, 13, 0, 6)
    number = f"({area}) {local}" if area and local else local or _component(pid, 13, 0, 0)
    return number[:64]


def _address(pid: Any) -> str:
    # PID-11: street, other, city, state, postal code, country.
    parts = [_component(pid, 11, 0, i) for i in (0, 1, 2, 3, 4, 5)]
    street, other, city, state, postal, country = parts
    locality = " ".join(p for p in (state, postal) if p)
    return ", ".join(p for p in (street, other, city, locality, country) if p)[:255]


_TIME = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.\d{1,4})?([+-]\d{4})?$")


def _time(text: str, zone: ZoneInfo) -> datetime | None:
    """An HL7 DTM (YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ]); without an offset it is the care setting's local
    time. Unreadable → None (the field is treated as missing, never a crash)."""
    match = _TIME.match(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, offset = match.groups()
    try:
        tz: Any = zone
        if offset:
            sign = 1 if offset[0] == "+" else -1
            tz = timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5])))
        local = datetime(int(year), int(month or 1), int(day or 1), int(hour or 0), int(minute or 0),
                         int(second or 0), tzinfo=tz)
    except ValueError:
        return None
    return local.astimezone(UTC)


def _date(text: str) -> date | None:
    match = re.match(r"^(\d{4})(\d{2})(\d{2})", text)
    if match is None:
        return None
    try:
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        return None


def local_date(moment: datetime | None, zone: ZoneInfo) -> date | None:
    """The day a moment falls on in the care setting (an ED visit date from PV1-45)."""
    return moment.astimezone(zone).date() if moment is not None else None
