"""Patients: who an episode is for, as plain data (no database, no HTTP).

A patient has identifiers (system + value, each unique across patients), a name, a birth date and the
contact details a coordinator needs to reach them (phone, address), and nothing more: minimum necessary,
so no Social Security number is ever kept (`check_identifiers` refuses its systems).

Where identifiers come from:
- The free-text `patient_id` an episode is started with is the value of an identifier in the deployment's
  default system (`CAREPATH_PATIENT_ID_SYSTEM`, default `urn:carepath:patient-id`).
- An HL7 v2 PID-3 repetition `ID^^^AUTHORITY^TYPE` is an identifier in the system
  `urn:carepath:id:<AUTHORITY>:<TYPE>` (`v2_identifier_system`): an MRN is unique only within the authority
  that assigned it, and an authority may assign several kinds (medical record numbers, account numbers), so
  both name the system. The authority is PID-3.4's namespace id, else its universal id (an OID), percent-
  encoded; the type defaults to MR. `12345^^^GENHOSP^MR` → `urn:carepath:id:GENHOSP:MR`.

Merges link, they never move rows: the merged patient gets `merged_into` the survivor, and `resolve` follows
the links to the patient that stands for both (use cases: engine/usecases/patients.py).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from urllib.parse import quote

from .errors import Problem, ValidationFailed

DEFAULT_PATIENT_ID_SYSTEM = "urn:carepath:patient-id"
V2_SYSTEM_PREFIX = "urn:carepath:id:"
MAX_SYSTEM = 255
MAX_VALUE = 255
MAX_IDENTIFIERS = 20  # a message repeats PID-3 a few times; more is not a patient
MAX_NAME = 200
MAX_PHONE = 40
MAX_ADDRESS = 500
# Systems for Social Security numbers (US SSA's OID, the v2 type SS): never stored (minimum necessary).
REFUSED_SYSTEMS = ("http://hl7.org/fhir/sid/us-ssn", "urn:oid:2.16.840.1.113883.4.1")
_PHONE = re.compile(r"^[0-9+()\-. xX#*ext]{3,40}$")


@dataclass(frozen=True)
class Identifier:
    system: str
    value: str

    def as_token(self) -> str:
        """`system|value`, as FHIR search and the API write it."""
        return f"{self.system}|{self.value}"


@dataclass(frozen=True)
class Demographics:
    """What a coordinator needs to know and reach the patient; None: not known (or not changed)."""

    family: str | None = None
    given: str | None = None
    birth_date: date | None = None
    phone: str | None = None
    address: str | None = None

    def fields(self) -> dict[str, Any]:
        return {"family": self.family, "given": self.given, "birth_date": self.birth_date, "phone": self.phone,
                "address": self.address}


@dataclass(frozen=True)
class PatientDetails:
    """Who a start or a message names: identifiers (any of which finds the patient) and demographics."""

    identifiers: tuple[Identifier, ...] = ()
    demographics: Demographics = field(default_factory=Demographics)


@dataclass(frozen=True)
class Patient:
    id: str
    identifiers: tuple[Identifier, ...]
    demographics: Demographics
    merged_into: str | None = None
    # The patients merged into this one (directly), and the episodes of this patient and of those linked.
    merged: tuple[str, ...] = ()
    episodes: tuple[str, ...] = ()
    survivor: str | None = None  # the patient that stands for this one now (itself when not merged)

    @property
    def display_name(self) -> str | None:
        names = [n for n in (self.demographics.given, self.demographics.family) if n]
        return " ".join(names) or None

    @property
    def mrn(self) -> str | None:
        """The first medical record number (an identifier of v2 type MR), for people to read."""
        return next((i.value for i in self.identifiers
                     if i.system.startswith(V2_SYSTEM_PREFIX) and i.system.endswith(":MR")), None)


def search_key(text: str) -> str:
    """A name as searches compare it: case and accents folded ("Ñúñez" and "nunez" meet), as FHIR's string
    search asks; the same in SQLite and PostgreSQL because it is computed here, not by the database."""
    decomposed = unicodedata.normalize("NFKD", text.strip().casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def parse_token(token: str, field_name: str = "identifier") -> Identifier:
    """`system|value` (FHIR token search syntax) into an Identifier; ValidationFailed naming the field."""
    system, bar, value = token.partition("|")
    if not bar:
        _refuse(field_name, "write an identifier as system|value, e.g. urn:carepath:patient-id|P-123")
    return check_identifiers([Identifier(system.strip(), value.strip())], field_name)[0]


def v2_identifier_system(authority: str, type_code: str | None = None) -> str:
    """The identifier system of a PID-3 repetition assigned by `authority` with the type (default MR)."""
    authority = authority.strip()
    if not authority:
        _refuse("authority", "an identifier without an assigning authority cannot be told from another's")
    type_code = (type_code or "MR").strip().upper() or "MR"
    return f"{V2_SYSTEM_PREFIX}{quote(authority, safe='.-_~')}:{quote(type_code, safe='.-_~')}"


def check_identifiers(identifiers: list[Identifier], field_name: str = "identifiers") -> list[Identifier]:
    """Bounded, non-empty, no SSN, each once: what may be stored (ValidationFailed naming the field)."""
    if len(identifiers) > MAX_IDENTIFIERS:
        _refuse(field_name, f"at most {MAX_IDENTIFIERS} identifiers")
    seen: dict[tuple[str, str], Identifier] = {}
    for i, ident in enumerate(identifiers):
        where = f"{field_name}[{i}]" if field_name.endswith("identifiers") else field_name
        if not _text_ok(ident.system, MAX_SYSTEM) or not _text_ok(ident.value, MAX_VALUE):
            _refuse(where, f"an identifier needs a system (at most {MAX_SYSTEM} characters) and a value "
                    f"(at most {MAX_VALUE})")
        if ident.system in REFUSED_SYSTEMS or ident.system.upper().endswith(":SS"):
            _refuse(where, "Social Security numbers are not kept (minimum necessary)")
        seen.setdefault((ident.system, ident.value), ident)
    return list(seen.values())


def check_demographics(demographics: Demographics, today: date, prefix: str = "patient") -> Demographics:
    """Bounded names, address and phone, and a birth date between 1850 and `today` (ValidationFailed)."""
    problems: list[Problem] = []
    born = demographics.birth_date
    if born is not None and not date(1850, 1, 1) <= born <= today:
        problems.append(Problem(f"{prefix}.birth_date must be a date from 1850 to today", field=f"{prefix}.birth_date"))
    for name, limit in (("family", MAX_NAME), ("given", MAX_NAME), ("address", MAX_ADDRESS)):
        value = getattr(demographics, name)
        if value is not None and not _text_ok(value, limit):
            problems.append(Problem(f"{prefix}.{name} must be 1 to {limit} characters", field=f"{prefix}.{name}"))
    phone = demographics.phone
    if phone is not None and not _PHONE.match(phone):
        problems.append(Problem(f"{prefix}.phone must be a telephone number (digits, spaces, + - ( ) .; "
                                f"at most {MAX_PHONE} characters)", field=f"{prefix}.phone"))
    if problems:
        raise ValidationFailed("; ".join(p.message for p in problems), problems)
    return demographics


def _text_ok(value: object, limit: int) -> bool:
    return isinstance(value, str) and 0 < len(value.strip()) and len(value) <= limit and "\x00" not in value


def _refuse(field_name: str, message: str) -> None:
    raise ValidationFailed(f"{field_name}: {message}", [Problem(message, field=field_name)])
