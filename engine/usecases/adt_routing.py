"""ADT routing: what one HL7 v2 ADT message does to patients and episodes, inside the caller's transaction.

The inbox (engine/usecases/inbox.py) calls `route_adt` once per message, in order per patient, in the
transaction that records the message's outcome; every effect is recorded in the history under the
integration account the sender acts as, like any other state change.

- Every message finds or creates its patient from PID-3 (any identifier matches; demographics fill the
  unknown ones). A08 updates the demographics; A40 merges the MRG-1 patient into the PID-3 one; A37
  unlinks the two.
- A11 (cancel admit / visit) and A13 (cancel discharge) cancel the episode the cancelled event started:
  the same visit number, of a pathway whose triggers start on that event type.
- Every other event goes through the deployed pathways' triggers (engine/interop/triggers.py), as a
  `Notification` (event name, facts, patient) that another source (FHIR) can build too: `start`
  begins the pathway with the visit number as its business key (a second start for the same visit starts
  nothing and says which episode it already started); `deliver` sends the trigger's message to the
  patient's open episodes of that pathway.
- A message no trigger matches is `nothing_to_do`, with the reason. A failure raises (a domain error): the
  caller undoes what the message did (a savepoint) and keeps the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

import hl7
from sqlalchemy import select

from ..clock import Clock
from ..errors import PermissionDenied, ValidationFailed
from ..identity import Principal, Role
from ..interop import fhir_inbound
from ..interop.adt import AdtEvent, PatientIdentifier, adt_event, other_patient_identifiers
from ..interop.triggers import EVENTS, describe, facts_of_adt, mapped
from ..model import InboxState, InstanceStatus
from ..patient_links import linked_patients, patient_with_identifier, survivor_of
from ..patients import Demographics, Identifier, PatientDetails, check_demographics, v2_identifier_system
from ..persistence.tables import Instance, PathwayVersion
from ..persistence.tables import Patient as PatientRow
from ..persistence.unit_of_work import UnitOfWork
from ..rules import INSTANCE_RULES, check_role
from .adt_triggers import deployed_triggers
from .instances import begin_instance, end_cancelled
from .messages import deliver_in
from .patients import find_or_create_by_identifiers, merge_in, unmerge_in, update_demographics
from .store import lock_instance

MAX_MESSAGE_CHARS = 1_000_000
ACTIVE = (InstanceStatus.RUNNING.value, InstanceStatus.INCIDENT.value)
# What a cancel event undoes: the events whose starts it cancels.
CANCELLED_BY = {"A11": ("ADT^A01", "ADT^A04"), "A13": ("ADT^A03",)}


# A routing outcome is the inbox state it leaves the message in (started, delivered, nothing_to_do, failed).
RoutingState = InboxState


@dataclass(frozen=True)
class AdtOutcome:
    state: RoutingState
    text: str  # the reason, in words, shown to admins
    instance_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Notification:
    """An encounter event in the trigger vocabulary's terms, whatever carried it (an ADT message here; a
    FHIR Encounter or a Da Vinci notification maps onto the same event names and facts)."""

    event: str  # "ADT^A03"
    facts: dict[str, Any]  # engine/interop/triggers.py FACTS (and to_community)
    patient: PatientDetails
    patient_id: str  # the episode's patient id, as lists show it
    described: str  # the event in words, for outcomes


@dataclass(frozen=True)
class _Read:
    """An ADT message as the handlers need it."""

    event: AdtEvent
    message: hl7.Message
    patient: PatientRow
    details: PatientDetails


def route_adt(uow: UnitOfWork, principal: Principal, text: str, clock: Clock) -> AdtOutcome:
    """Route one decoded ADT message. `clock` is the one the inbox runs on (the app's); the engine's use
    cases read it through `uow.app`."""
    del clock  # the same clock as uow.app.clock: every use case below reads that one
    check_integration(principal)
    read = _read(uow, text)
    handler = _HANDLERS.get(read.event.trigger)
    if handler is not None:
        return handler(uow, principal, read)
    return _by_triggers(uow, principal, _notification(uow, read.event, read.details), read.patient)


def route_notification(uow: UnitOfWork, principal: Principal, notification: Notification) -> AdtOutcome:
    """Apply the deployed pathways' triggers to an encounter event from any source."""
    check_integration(principal)
    patient = find_or_create_by_identifiers(uow, notification.patient.identifiers, notification.patient.demographics)
    return _by_triggers(uow, principal, notification, patient)


def route_fhir(uow: UnitOfWork, principal: Principal, text: str, clock: Clock) -> AdtOutcome:
    """Route one stored FHIR encounter notification (an Encounter, a Da Vinci message Bundle, a subscription
    notification: engine/interop/fhir_inbound.py): the same triggers as the ADT event it maps to."""
    del clock  # as in route_adt
    check_integration(principal)
    notice = fhir_inbound.read_inbound(fhir_inbound.read_document(text.encode("utf-8")))
    if isinstance(notice, fhir_inbound.Ping):
        return AdtOutcome(RoutingState.NOTHING_TO_DO, f"a subscription {notice.kind}: nothing to route")
    details = PatientDetails(notice.identifiers, _kept_demographics(notice.demographics, uow.app.now().date()))
    facts = facts_of_adt(notice.event, uow.app.time_context().tz, uow.app.config.adt_snf_facilities)
    return route_notification(uow, principal, Notification(
        f"ADT^{notice.event.trigger}", facts, details, notice.patient_key,
        f"{notice.described()} ({describe(notice.event)})"))


class StoredMessage(Protocol):
    raw: str | None
    account: str
    message_type: str


# The inbox's one router reads a stored message by its kind (inbox_messages.message_type).
FHIR_KIND = "FHIR"
_READERS: dict[str, Callable[[UnitOfWork, Principal, str, Clock], AdtOutcome]] = {FHIR_KIND: route_fhir}


def route_inbox_message(uow: UnitOfWork, message: StoredMessage, clock: Clock) -> AdtOutcome:
    """The inbox's Router: the stored message, acting as its sender's integration account; a FHIR
    notification by `route_fhir`, every other (HL7 v2 ADT) by `route_adt`."""
    if message.raw is None:
        raise ValidationFailed("the message's raw payload was dropped after the retention period")
    reader = _READERS.get(message.message_type, route_adt)
    return reader(uow, Principal(message.account, Role.INTEGRATION), message.raw, clock)


def check_integration(principal: Principal) -> None:
    """Messages from outside (HL7 v2 ADT, FHIR notifications) are sent and acted on by integration accounts."""
    if principal.role is not Role.INTEGRATION:
        raise PermissionDenied(f"messages from outside (HL7 v2 ADT, FHIR notifications) are sent and acted on under "
                               f"an integration account, not as {principal.name} ({principal.role.value})")


def _read(uow: UnitOfWork, text: str) -> _Read:
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_MESSAGE_CHARS:
        raise ValidationFailed(f"an ADT message must be 1 to {MAX_MESSAGE_CHARS} characters of text")
    try:
        message = hl7.parse(text.replace("\r\n", "\r").replace("\n", "\r"))
    except (hl7.HL7Exception, KeyError, IndexError, ValueError) as exc:
        raise ValidationFailed(f"the message cannot be parsed: {str(exc)[:200]}") from None
    event = adt_event(message, uow.app.time_context().tz)
    details = PatientDetails(_identifiers(event.identifiers, event.facility),
                             _demographics(event, uow.app.now().date()))
    patient = find_or_create_by_identifiers(uow, details.identifiers, details.demographics)
    return _Read(event, message, patient, details)


def _notification(uow: UnitOfWork, event: AdtEvent, details: PatientDetails) -> Notification:
    facts = facts_of_adt(event, uow.app.time_context().tz, uow.app.config.adt_snf_facilities)
    chosen = next((i for i in event.identifiers if i.type_code == "MR"), event.identifiers[0])
    patient_id = f"{chosen.authority or event.facility}:{chosen.value}"[:255]  # AUTHORITY:ID of the first MR
    return Notification(f"ADT^{event.trigger}", facts, details, patient_id, describe(event))


def _identifiers(found: tuple[PatientIdentifier, ...], facility: str) -> tuple[Identifier, ...]:
    """PID-3 repetitions as identifiers; one without an assigning authority is taken as the facility's."""
    return tuple(Identifier(v2_identifier_system(i.authority or facility, i.type_code), i.value) for i in found)


def _demographics(event: AdtEvent, today: date) -> Demographics:
    """What the message says of the patient."""
    return _kept_demographics({"family": event.family_name or None, "given": event.given_name or None,
                               "birth_date": event.birth_date, "phone": event.phone or None,
                               "address": event.address or None}, today)


def _kept_demographics(values: dict[str, Any], today: date) -> Demographics:
    """Demographics from what a message says; a value CarePath would refuse (a malformed phone) is left out."""
    kept: dict[str, Any] = {}
    for name, value in values.items():
        try:
            check_demographics(Demographics(**{name: value}), today)
            kept[name] = value
        except ValidationFailed:
            continue
    return Demographics(**kept)


# -- triggers ------------------------------------------------------------------------------------

def _by_triggers(uow: UnitOfWork, principal: Principal, note: Notification, patient: PatientRow) -> AdtOutcome:
    started: list[str] = []
    delivered: list[str] = []
    said: list[str] = []
    missed: list[str] = []
    for version, triggers in deployed_triggers(uow):
        for trigger in (t for t in triggers if note.event in t.on):
            miss = trigger.mismatch(note.facts)
            if miss:
                missed.append(f"{version.key} '{trigger.id}': {miss}")
            elif trigger.action == "start":
                _start(uow, principal, note, version, mapped(trigger.start_data, note.facts), started, said)
            else:
                _deliver(uow, principal, patient, version, trigger.message, mapped(trigger.data, note.facts),
                         delivered, said)
    if started or delivered:
        state = RoutingState.STARTED if started else RoutingState.DELIVERED
        return AdtOutcome(state, "; ".join(said), tuple(started + delivered))
    if not said:
        what = f"no pathway starts or moves on {note.described}"
        said.append(what + (f" ({'; '.join(missed)})" if missed else "")
                    if note.event in EVENTS or missed else f"{what}: triggers take {', '.join(EVENTS)}")
    return AdtOutcome(RoutingState.NOTHING_TO_DO, "; ".join(said))


def _start(uow: UnitOfWork, principal: Principal, note: Notification, version: PathwayVersion,
           data: dict[str, Any], started: list[str], said: list[str]) -> None:
    key = str(note.facts.get("visit_number") or "")
    if not key:
        said.append(f"{version.key} would start, but the event has no visit number (PV1-19) to be the "
                    "episode's business key: nothing started")
        return
    earlier = uow.session.scalars(select(Instance).where(
        Instance.pathway_key == version.key, Instance.business_key == key,
        Instance.status != InstanceStatus.CANCELLED.value).order_by(Instance.created_at.desc())).first()
    if earlier is not None:
        said.append(f"{version.key} episode {earlier.id} was already started for visit {key} "
                    f"({earlier.status}): nothing more started")
        return
    check_role(INSTANCE_RULES["start"], principal)
    instance = begin_instance(uow, version, key, note.patient_id, data, principal.name, patient=note.patient)
    started.append(instance.id)
    said.append(f"started {version.key} episode {instance.id} for visit {key}")


def _deliver(uow: UnitOfWork, principal: Principal, patient: PatientRow, version: PathwayVersion, message: str,
             data: dict[str, Any], delivered: list[str], said: list[str]) -> None:
    episodes = uow.session.scalars(select(Instance).where(
        Instance.pathway_key == version.key, Instance.status.in_(ACTIVE),
        Instance.patient_ref.in_(linked_patients(uow.session, patient.id))).order_by(Instance.created_at)).all()
    for episode in episodes:
        result = deliver_in(uow, principal, message, episode.business_key, data)
        delivered.append(episode.id)
        how = "delivered to" if result.outcome == "delivered" else (
            f"buffered until {result.expires_at:%Y-%m-%d %H:%M} UTC (it is not waited for yet) for"
            if result.outcome == "buffered" and result.expires_at else f"{result.outcome} for")
        said.append(f"{message} {how} {version.key} episode {episode.id} (visit {episode.business_key})")


# -- patients ------------------------------------------------------------------------------------

def _update(uow: UnitOfWork, principal: Principal, read: _Read) -> AdtOutcome:
    changed = update_demographics(uow, principal, read.patient, read.details.demographics)
    said = f"updated {', '.join(changed)}" if changed else "nothing changed"
    return AdtOutcome(RoutingState.NOTHING_TO_DO, f"patient {read.patient.id}: demographics {said}; no episode "
                      f"starts or moves on an {read.event.trigger}")


def _merge(uow: UnitOfWork, principal: Principal, read: _Read) -> AdtOutcome:
    merged = _holder(uow, read.event.prior_identifiers, read.event.facility)
    survivor = survivor_of(uow.session, read.patient.id)
    if merged is None:
        return AdtOutcome(RoutingState.NOTHING_TO_DO, "nothing to merge: no patient has the identifiers in "
                          "MRG-1")
    if survivor_of(uow.session, merged) == survivor:
        return AdtOutcome(RoutingState.NOTHING_TO_DO, f"patient {merged} is already merged into patient {survivor}")
    view = merge_in(uow, principal, survivor, merged, f"ADT {read.event.trigger}: MRG-1 merged into PID-3")
    return AdtOutcome(RoutingState.NOTHING_TO_DO, f"patient {view.patient} merged into patient {view.merged_into}; "
                      "their episodes, tasks and history now follow the survivor")


def _unmerge(uow: UnitOfWork, principal: Principal, read: _Read) -> AdtOutcome:
    other = _holder(uow, other_patient_identifiers(read.message), read.event.facility)
    for candidate in (other, read.patient.id):
        row = uow.session.get(PatientRow, candidate) if candidate else None
        if row is not None and row.merged_into is not None:
            view = unmerge_in(uow, principal, row.id, f"ADT {read.event.trigger}: unlink")
            return AdtOutcome(RoutingState.NOTHING_TO_DO, f"patient {view.patient} unlinked from patient "
                              f"{view.previous}; each keeps its own episodes again")
    return AdtOutcome(RoutingState.NOTHING_TO_DO, "nothing to unlink: neither patient is merged into another")


def _holder(uow: UnitOfWork, found: tuple[PatientIdentifier, ...], facility: str) -> str | None:
    for identifier in _identifiers(found, facility):
        holder = patient_with_identifier(uow.session, identifier.system, identifier.value)
        if holder is not None:
            return holder
    return None


# -- cancellations -------------------------------------------------------------------------------

def _cancel(uow: UnitOfWork, principal: Principal, read: _Read) -> AdtOutcome:
    event, rule = read.event, INSTANCE_RULES["cancel_by_feed"]
    cancelled = CANCELLED_BY[event.trigger]
    if not event.visit_number:
        return AdtOutcome(RoutingState.NOTHING_TO_DO, f"an {event.trigger} without a visit number (PV1-19) names "
                          "no episode to cancel")
    keys = [version.key for version, triggers in deployed_triggers(uow)
            if any(t.action == "start" and set(t.on) & set(cancelled) for t in triggers)]
    episodes = uow.session.scalars(select(Instance).where(
        Instance.pathway_key.in_(keys), Instance.business_key == event.visit_number,
        Instance.status.in_([s.value for s in rule.from_states]),
        Instance.patient_ref.in_(linked_patients(uow.session, read.patient.id))).order_by(Instance.created_at)).all()
    undone = " or ".join(e.split("^")[1] for e in cancelled)
    if not episodes:
        return AdtOutcome(RoutingState.NOTHING_TO_DO, f"no open episode was started by the {undone} of visit "
                          f"{event.visit_number}: nothing to cancel (a message delivered to an episode is not "
                          "undone; review the patient's episodes)")
    check_role(rule, principal)
    reason = f"ADT {event.trigger}: the {undone} of visit {event.visit_number} that started this episode was cancelled"
    ids = []
    for episode in episodes:
        locked = lock_instance(uow, episode.id)
        if locked.status in {s.value for s in rule.from_states}:
            end_cancelled(uow, locked, rule, principal.name, reason)
            ids.append(locked.id)
    named = ", ".join(f"{e.pathway_key} episode {e.id}" for e in episodes)
    return AdtOutcome(RoutingState.DELIVERED, f"cancelled {named}: {reason}", tuple(ids))


_HANDLERS: dict[str, Callable[[UnitOfWork, Principal, _Read], AdtOutcome]] = {
    "A08": _update, "A40": _merge, "A37": _unmerge, "A11": _cancel, "A13": _cancel}

__all__ = ["FHIR_KIND", "AdtOutcome", "Notification", "RoutingState", "check_integration", "route_adt", "route_fhir",
           "route_inbox_message", "route_notification"]
