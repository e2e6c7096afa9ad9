"""Inbound FHIR: encounter notifications from EHRs and HIEs that speak FHIR R4 instead of HL7 v2.

Three shapes carry the same thing, an Encounter that started or ended:

- an `Encounter` posted on its own (POST /fhir/Encounter);
- a Da Vinci Unsolicited Notifications `message` Bundle (POST /fhir/$process-message): the first entry is a
  MessageHeader whose `eventCoding` (NOTIFICATION_EVENT_SYSTEM) is notification-admit / -discharge /
  -transfer and whose `focus` is the Encounter, which the Bundle holds with its Patient;
- a Subscriptions R5 Backport rest-hook notification (POST /fhir/$subscription-notification): a `history`
  Bundle whose first entry is a `Parameters` (SubscriptionStatus) of type handshake, heartbeat or
  event-notification; the last names its focus, the Encounter, which a full-resource payload holds.

`read_document` bounds and parses the bytes (size, depth, the elements read: a problem names the element),
and `read_inbound` reads the shape into an `EncounterNotice`: the ADT event the notice is, by the one
mapping table ENCOUNTER_EVENTS (documented in docs/fhir.md and docs/adt-routing.md), an `AdtEvent` built
from the Encounter (so that the pathways' triggers read the same facts, engine/interop/triggers.py) and
the patient. Nothing here touches the database.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from ..errors import BadRequest, PayloadTooLarge, Problem, ValidationFailed
from ..patients import REFUSED_SYSTEMS, Identifier, check_identifiers
from .adt import AdtEvent, Diagnosis

FHIR_VERSION = "4.0.1"  # R4; R4B Encounters read the same
MAX_BYTES = 1_000_000
MAX_DEPTH = 24
MAX_ENTRIES = 100
MAX_TEXT = 200

NOTIFICATION_EVENT_SYSTEM = "http://hl7.org/fhir/us/davinci-alerts/CodeSystem/notification-event"
ACT_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
IDENTIFIER_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0203"
NUBC_SYSTEM = "https://www.nubc.org/CodeSystem/PatDischargeStatus"
DISPOSITION_SYSTEM = "http://terminology.hl7.org/CodeSystem/discharge-disposition"
ICD10CM_SYSTEM = "http://hl7.org/fhir/sid/icd-10-cm"

# Encounter.class (v3 ActCode) → HL7 table 0004 patient class, as HL7's V2-to-FHIR guide maps PV1-2.
PATIENT_CLASS_OF = {"EMER": "E", "IMP": "I", "ACUTE": "I", "NONAC": "I", "AMB": "O"}

# Encounter.status → what happened: the encounter ended or is under way.
DISCHARGED, UNDER_WAY = "discharge", "admission"
HAPPENING_OF_STATUS = {"finished": DISCHARGED, "in-progress": UNDER_WAY, "arrived": UNDER_WAY, "triaged": UNDER_WAY}
# Da Vinci notification-event codes → what happened (a transfer is read from the Encounter's status).
HAPPENING_OF_NOTIFICATION = {"notification-admit": UNDER_WAY, "notification-discharge": DISCHARGED}

# THE mapping: (what happened, patient class) → the ADT event the pathways' triggers take.
ENCOUNTER_EVENTS: dict[tuple[str, str], str] = {
    (DISCHARGED, "E"): "A03",  # an ED visit ended: the A03 with PV1-2 E (post-ED follow-up)
    (DISCHARGED, "I"): "A03",  # an inpatient discharge (TCM when to the community)
    (DISCHARGED, "O"): "A03",  # an outpatient visit ended
    (UNDER_WAY, "E"): "A04",   # an ED arrival (registration)
    (UNDER_WAY, "O"): "A04",   # an outpatient visit at a clinic
    (UNDER_WAY, "I"): "A01",   # an inpatient admission (excludes the ED visit from FUM/FUA; a readmission)
}

# hospitalization.dischargeDisposition in FHIR's own code system → the NUBC code the triggers read.
# NUBC codes (NUBC_SYSTEM, or a bare two-digit code) are taken as they are.
NUBC_OF_DISPOSITION = {"home": "01", "alt-home": "01", "aadvice": "07", "other-hcf": "05", "hosp": "51",
                       "long": "63", "exp": "20", "psy": "65", "rehab": "62", "snf": "03"}


@dataclass(frozen=True)
class Ping:
    """A subscription handshake or heartbeat: acknowledged, nothing to route."""

    kind: str
    subscription: str


@dataclass(frozen=True)
class EncounterNotice:
    """One encounter notification, whichever shape carried it."""

    shape: str  # "Encounter", "Da Vinci notification-discharge", "subscription event-notification"
    control_id: str  # the dedup key with the sender: Bundle / MessageHeader id, else the Encounter's
    event: AdtEvent
    identifiers: tuple[Identifier, ...]
    demographics: dict[str, Any] = field(default_factory=dict)  # family, given, birth_date, phone, address

    @property
    def patient_key(self) -> str:
        chosen = self.identifiers[0]
        return f"{chosen.system}|{chosen.value}"[:255]

    def described(self) -> str:
        return f"a FHIR {self.shape} read as an {self.event.trigger}"


def _refuse(element: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{element}: {message}", [Problem(f"{element}: {message}", field=element)])


def read_document(payload: bytes) -> dict[str, Any]:
    """The posted bytes as a JSON object, bounded (413 past MAX_BYTES, 400 for what is not JSON or too deep)."""
    document = read_json(payload)
    if not isinstance(document, dict) or not isinstance(document.get("resourceType"), str):
        raise BadRequest("the body is not a FHIR resource (a JSON object with resourceType)")
    return document


def read_json(payload: bytes) -> Any:
    """The posted bytes as JSON, bounded as `read_document` says (a JSON Patch is a list)."""
    if len(payload) > MAX_BYTES:
        raise PayloadTooLarge(f"a FHIR notification is at most {MAX_BYTES} bytes")
    if b"\\u0000" in payload:
        raise BadRequest("the body holds a NUL character (\\u0000), which no FHIR string may hold")
    try:
        document = json.loads(payload.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadRequest("the body is not UTF-8 (FHIR JSON is UTF-8)") from None
    except RecursionError:
        raise BadRequest(f"the body is nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:
        raise BadRequest(f"the body is not valid JSON: {str(exc)[:200]}") from None
    if _depth(document) > MAX_DEPTH:
        raise BadRequest(f"the body is nested deeper than {MAX_DEPTH} levels")
    return document


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if level > MAX_DEPTH:
            return level
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, level + 1) for child in children if isinstance(child, dict | list))
    return deepest


# -- the three shapes ----------------------------------------------------------------------------

SHAPES = {"Encounter": "an Encounter", "message": "a message Bundle (Da Vinci notification)",
          "history": "a history Bundle (subscription notification)"}


def shape_of(document: dict[str, Any]) -> str:
    kind = document.get("resourceType")
    return str(document.get("type")) if kind == "Bundle" else str(kind)


def read_inbound(document: dict[str, Any], *, expected: str | None = None) -> EncounterNotice | Ping:
    """The notice a document carries (`expected`: the shape the endpoint takes, one of SHAPES)."""
    shape = shape_of(document)
    if expected is not None and shape != expected:
        raise _refuse("resourceType", f"this endpoint takes {SHAPES[expected]}, not {_named(document)}")
    if shape == "Encounter":
        return _notice("Encounter", _encounter_key(document), document, None)
    if shape == "message":
        return _message(document)
    if shape == "history":
        return _subscription(document)
    raise _refuse("resourceType", f"{_named(document)} is not an encounter notification: post "
                  f"{', '.join(SHAPES.values())}")


def _named(document: dict[str, Any]) -> str:
    kind = str(document.get("resourceType"))[:40]
    return f"a Bundle of type {str(document.get('type'))[:40]!r}" if kind == "Bundle" else f"a {kind}"


def _entries(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    entries = bundle.get("entry")
    if not isinstance(entries, list) or not entries:
        raise _refuse("Bundle.entry", "the Bundle has no entries")
    if len(entries) > MAX_ENTRIES:
        raise _refuse("Bundle.entry", f"at most {MAX_ENTRIES} entries")
    if not all(isinstance(e, dict) and isinstance(e.get("resource"), dict) for e in entries):
        raise _refuse("Bundle.entry", "every entry needs a resource")
    return entries


def _message(bundle: dict[str, Any]) -> EncounterNotice:
    entries = _entries(bundle)
    header = entries[0]["resource"]
    if header.get("resourceType") != "MessageHeader":
        raise _refuse("Bundle.entry[0]", "the first entry of a message Bundle is its MessageHeader")
    coding = header.get("eventCoding")
    if not isinstance(coding, dict) or coding.get("system") != NOTIFICATION_EVENT_SYSTEM:
        raise _refuse("MessageHeader.eventCoding", f"needs a code of {NOTIFICATION_EVENT_SYSTEM}")
    code = _text(coding.get("code"), "MessageHeader.eventCoding.code")
    if code not in (*HAPPENING_OF_NOTIFICATION, "notification-transfer"):
        raise _refuse("MessageHeader.eventCoding.code", f"'{code}' is not notification-admit, "
                      "notification-discharge or notification-transfer")
    focus = header.get("focus")
    reference = focus[0].get("reference") if isinstance(focus, list) and focus and isinstance(focus[0], dict) else None
    encounter = _resolve(entries, reference, "Encounter", "MessageHeader.focus")
    key = _text(bundle.get("id") or header.get("id"), "Bundle.id", required=False) or _encounter_key(encounter)
    return _notice(f"Da Vinci {code}", key, encounter, entries, HAPPENING_OF_NOTIFICATION.get(code))


def _subscription(bundle: dict[str, Any]) -> EncounterNotice | Ping:
    entries = _entries(bundle)
    status = entries[0]["resource"]
    if status.get("resourceType") != "Parameters":
        raise _refuse("Bundle.entry[0]", "the first entry of a subscription notification is a Parameters "
                      "(SubscriptionStatus)")
    parameters = status.get("parameter")
    if not isinstance(parameters, list):
        raise _refuse("Parameters.parameter", "the subscription status has no parameters")
    named = {p["name"]: p for p in _list(parameters, MAX_ENTRIES)
             if isinstance(p, dict) and isinstance(p.get("name"), str)}
    kind = named.get("type", {}).get("valueCode")
    subscription = named.get("subscription", {}).get("valueReference", {})
    reference = subscription.get("reference", "") if isinstance(subscription, dict) else ""
    if kind in ("handshake", "heartbeat"):
        return Ping(kind, str(reference)[:MAX_TEXT])
    if kind != "event-notification":
        raise _refuse("Parameters.parameter(type)", f"{str(kind)[:40]!r} is not handshake, heartbeat or "
                      "event-notification")
    event = named.get("notification-event", {})
    parts = _list(event.get("part") if isinstance(event, dict) else None)
    focus = next((p.get("valueReference", {}).get("reference") for p in parts if isinstance(p, dict)
                  and p.get("name") == "focus" and isinstance(p.get("valueReference"), dict)), None)
    if focus is None:
        raise _refuse("Parameters.parameter(notification-event).part(focus)", "the notification names no focus")
    if len(entries) < 2:
        raise _refuse("Bundle.entry", f"the notification holds only the focus's id ({str(focus)[:100]}): an "
                      "id-only or empty payload cannot be routed; subscribe with payload full-resource")
    encounter = _resolve(entries, focus, "Encounter", "Parameters.parameter(notification-event).part(focus)")
    number = next((p.get("valueString") or p.get("valueInteger64") or p.get("valueInteger") for p in parts
                   if isinstance(p, dict) and p.get("name") == "event-number"), None)
    key = f"{reference}#{number}" if reference and number is not None else (
        _text(bundle.get("id"), "Bundle.id", required=False) or _encounter_key(encounter))
    return _notice("subscription event-notification", str(key)[:199], encounter, entries)


def _resolve(entries: list[dict[str, Any]], reference: Any, kind: str, element: str) -> dict[str, Any]:
    """The entry a reference points to: by fullUrl, or by Type/id."""
    if not isinstance(reference, str) or not reference:
        raise _refuse(element, f"needs a reference to the {kind}")
    for entry in entries:
        resource = entry["resource"]
        if resource.get("resourceType") != kind:
            continue
        tail = f"{kind}/{resource.get('id')}"
        if reference in (entry.get("fullUrl"), tail) or reference.endswith("/" + tail):
            return dict(resource)
    raise _refuse(element, f"the Bundle holds no {kind} {reference[:100]!r} (an id-only payload cannot be "
                  "routed: send the resource)")


# -- the Encounter -------------------------------------------------------------------------------

def _notice(shape: str, key: str, encounter: dict[str, Any], entries: list[dict[str, Any]] | None,
            happening: str | None = None) -> EncounterNotice:
    if encounter.get("resourceType") != "Encounter":
        raise _refuse("resourceType", "the notification's focus must be an Encounter")
    patient_class = _patient_class(encounter)
    status = encounter.get("status")
    if happening is None:
        happening = HAPPENING_OF_STATUS.get(status) if isinstance(status, str) else None
        if happening is None:
            raise _refuse("Encounter.status", f"{str(status)[:40]!r} says neither a discharge (finished) nor an "
                          "admission or arrival (in-progress, arrived, triaged)")
    period = _period(encounter)
    started, ended = _instant(period.get("start"), "Encounter.period.start"), _instant(period.get("end"),
                                                                                      "Encounter.period.end")
    identifiers, demographics = _patient(encounter, entries)
    trigger = ENCOUNTER_EVENTS[(happening, patient_class)]
    event = AdtEvent(trigger=trigger, occurred_at=ended if happening == DISCHARGED else started,
                     identifiers=(), family_name="", given_name="", birth_date=None, phone="", address="",
                     patient_class=patient_class, visit_number=_visit_number(encounter),
                     facility=_facility(encounter), admitted_at=started, discharged_at=ended,
                     disposition=_disposition(encounter), diagnoses=_diagnoses(encounter))
    return EncounterNotice(shape, key[:199], event, identifiers, demographics)


def _period(encounter: dict[str, Any]) -> dict[str, Any]:
    found = encounter.get("period")
    return found if isinstance(found, dict) else {}


def _text(value: Any, element: str, *, required: bool = True, limit: int = MAX_TEXT) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise _refuse(element, f"must be text of 1 to {limit} characters")
    return value.strip()


def _patient_class(encounter: dict[str, Any]) -> str:
    coding = encounter.get("class")
    if not isinstance(coding, dict) or not isinstance(coding.get("code"), str):
        raise _refuse("Encounter.class", f"needs a code of {ACT_CODE_SYSTEM} ({', '.join(PATIENT_CLASS_OF)})")
    system, code = coding.get("system"), coding["code"]
    if system not in (None, ACT_CODE_SYSTEM) or code not in PATIENT_CLASS_OF:
        raise _refuse("Encounter.class", f"{code[:20]!r} is not a class CarePath routes "
                      f"({', '.join(PATIENT_CLASS_OF)} of {ACT_CODE_SYSTEM})")
    return PATIENT_CLASS_OF[code]


def _instant(value: Any, element: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 40:
        raise _refuse(element, "must be a FHIR dateTime")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00")) if "T" in value else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise _refuse(element, f"{value!r} is not a FHIR dateTime with a time and an offset")
    return moment.astimezone(UTC)


def _list(value: Any, limit: int = 20) -> list[Any]:
    """A JSON array's first items (anything else: none)."""
    return value[:limit] if isinstance(value, list) else []


def _codings(concept: Any) -> list[dict[str, Any]]:
    codings = concept.get("coding") if isinstance(concept, dict) else None
    return [c for c in codings[:20] if isinstance(c, dict) and isinstance(c.get("code"), str)] \
        if isinstance(codings, list) else []


def _visit_number(encounter: dict[str, Any]) -> str:
    identifiers = [i for i in _list(encounter.get("identifier")) if isinstance(i, dict)]
    chosen = next((i for i in identifiers if any(c.get("code") == "VN" for c in _codings(i.get("type")))),
                  identifiers[0] if identifiers else None)
    if chosen is None:
        return ""
    return _text(chosen.get("value"), "Encounter.identifier.value")


def _encounter_key(encounter: dict[str, Any]) -> str:
    """An Encounter's dedup key: its visit number, status and period (a resend is the same key)."""
    period = _period(encounter)
    seen = json.dumps([_visit_number(encounter) or encounter.get("id"), encounter.get("status"),
                       period.get("start"), period.get("end")], sort_keys=True, default=str)
    return "Encounter:" + hashlib.sha256(seen.encode()).hexdigest()[:40]


def _facility(encounter: dict[str, Any]) -> str:
    provider = encounter.get("serviceProvider")
    display = provider.get("display") if isinstance(provider, dict) else None
    return display.strip()[:MAX_TEXT] if isinstance(display, str) else ""


def _disposition(encounter: dict[str, Any]) -> str:
    stay = encounter.get("hospitalization")
    concept = stay.get("dischargeDisposition") if isinstance(stay, dict) else None
    for coding in _codings(concept):
        code, system = coding["code"].strip(), coding.get("system")
        if system == DISPOSITION_SYSTEM and code in NUBC_OF_DISPOSITION:
            return NUBC_OF_DISPOSITION[code]
        if system in (None, NUBC_SYSTEM) and code.isdigit() and len(code) == 2:
            return code
    return ""


def _diagnoses(encounter: dict[str, Any]) -> tuple[Diagnosis, ...]:
    """reasonCode's ICD-10-CM codings, in order (the first is the principal one)."""
    found: list[Diagnosis] = []
    for concept in _list(encounter.get("reasonCode")):
        for coding in _codings(concept):
            if coding.get("system") == ICD10CM_SYSTEM:
                found.append(Diagnosis(coding["code"][:20], "I10", "", "F", len(found) + 1))
    return tuple(found)


# -- the patient ---------------------------------------------------------------------------------

def _patient(encounter: dict[str, Any], entries: list[dict[str, Any]] | None,
             kind: str = "Encounter") -> tuple[tuple[Identifier, ...], dict[str, Any]]:
    """The patient a resource's subject names (an Encounter's; a QuestionnaireResponse's, engine/sdoh)."""
    subject = encounter.get("subject")
    if not isinstance(subject, dict):
        raise _refuse(f"{kind}.subject", "names no patient (a contained Patient, a Patient in the Bundle, "
                      "or an identifier)")
    reference = subject.get("reference")
    person: dict[str, Any] | None = None
    if isinstance(reference, str) and reference.startswith("#"):
        contained = [r for r in _list(encounter.get("contained"), MAX_ENTRIES) if isinstance(r, dict)]
        person = next((r for r in contained if r.get("resourceType") == "Patient"
                       and f"#{r.get('id')}" == reference), None)
        if person is None:
            raise _refuse(f"{kind}.subject", f"the {kind} contains no Patient {reference[:60]!r}")
    elif isinstance(reference, str) and entries is not None:
        person = _resolve(entries, reference, "Patient", f"{kind}.subject")
    if person is not None:
        identifiers = _identifiers(person.get("identifier"), "Patient.identifier")
        return identifiers, _demographics(person)
    if isinstance(subject.get("identifier"), dict):
        return _identifiers([subject["identifier"]], f"{kind}.subject.identifier"), {}
    raise _refuse(f"{kind}.subject", "names no patient CarePath can find: a reference to a Patient it was not "
                  "sent; send a contained Patient, the Patient in the Bundle, or subject.identifier")


def _identifiers(found: Any, element: str) -> tuple[Identifier, ...]:
    kept = []
    for item in _list(found):
        if not isinstance(item, dict) or item.get("system") in REFUSED_SYSTEMS:  # SSNs: never kept
            continue
        system = _text(item.get("system"), f"{element}.system", limit=255)
        kept.append(Identifier(system, _text(item.get("value"), f"{element}.value", limit=255)))
    if not kept:
        raise _refuse(element, "the patient has no identifier with a system and a value")
    return tuple(check_identifiers(kept, element))


def _demographics(person: dict[str, Any]) -> dict[str, Any]:
    """What the Patient says of the person, as Demographics fields (checked by the caller)."""
    names = [n for n in _list(person.get("name")) if isinstance(n, dict)]
    name = next((n for n in names if n.get("use") == "official"), names[0] if names else {})
    given = _list(name.get("given"))
    phones = [t.get("value") for t in _list(person.get("telecom"))
              if isinstance(t, dict) and t.get("system") == "phone"]
    addresses = [a for a in _list(person.get("address")) if isinstance(a, dict)]
    address = None
    if addresses:
        lines = [x for x in _list(addresses[0].get("line")) if isinstance(x, str)]
        parts = [*lines, *(str(addresses[0].get(k)) for k in ("city", "state", "postalCode")
                           if isinstance(addresses[0].get(k), str))]
        address = ", ".join(parts) or None
    born = None
    if isinstance(person.get("birthDate"), str):
        try:
            born = date.fromisoformat(person["birthDate"])
        except ValueError:
            born = None
    family = name.get("family")
    return {"family": family if isinstance(family, str) else None,
            "given": given[0] if given and isinstance(given[0], str) else None, "birth_date": born,
            "phone": phones[0] if phones and isinstance(phones[0], str) else None, "address": address}


subject_patient = _patient  # for the other resources taken in that name a patient (sdoh/fhir_screening.py)

__all__ = ["ENCOUNTER_EVENTS", "FHIR_VERSION", "MAX_BYTES", "MAX_DEPTH", "NOTIFICATION_EVENT_SYSTEM",
           "NUBC_OF_DISPOSITION", "PATIENT_CLASS_OF", "SHAPES", "EncounterNotice", "Ping", "read_document",
           "read_inbound", "read_json", "shape_of", "subject_patient"]
