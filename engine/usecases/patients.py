"""Patient identities: find or create one by its identifiers, update its demographics, merge and unmerge.

`find_or_create_by_identifiers`, `update_demographics`, `merge_in` and `unmerge_in` act inside the caller's
transaction (a start, an ADT message); `merge_patients` and `unmerge_patient` are the same changes in a
transaction of their own (the API). Each change is a row of PATIENT_RULES (engine/rules.py), recorded in the
hash-chained history (chain `system`) with who and why.
A merge only links (`merged_into`); reads follow the links (engine/patient_links.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..application import CarePath
from ..errors import Conflict, InvalidTransition, NotFound, Problem, ValidationFailed
from ..identity import Principal
from ..patient_links import identifier_values, merge_chain, patient_with_identifier, survivor_of
from ..patients import (
    Demographics,
    Identifier,
    PatientDetails,
    check_demographics,
    check_identifiers,
    parse_token,
)
from ..persistence.tables import Patient as PatientRow
from ..persistence.tables import PatientIdentifier
from ..persistence.unit_of_work import UnitOfWork
from ..rules import PATIENT_RULES, check_role
from .store import with_conflict_retries

MIN_REASON, MAX_REASON = 3, 1000
DEMOGRAPHIC_FIELDS = ("family", "given", "birth_date", "phone", "address")


@dataclass(frozen=True)
class MergeView:
    """What a merge or an unmerge changed: `patient` now links to `merged_into` (None: to nobody)."""

    patient: str
    merged_into: str | None
    previous: str | None


def find_or_create_by_identifiers(uow: UnitOfWork, identifiers: Iterable[Identifier],
                                  demographics: Demographics | None = None) -> PatientRow:
    """The patient any of `identifiers` names (the first known one's holder, merged or not), given the
    identifiers no patient has and the demographics it had no value for; else a new patient. Conflict when
    they name two patients that are not merged into one."""
    wanted = check_identifiers(list(identifiers))
    if not wanted:
        raise ValidationFailed("a patient needs at least one identifier",
                               [Problem("give at least one identifier", field="identifiers")])
    if demographics is not None:
        check_demographics(demographics, uow.app.now().date())
    row = _matching_patient(uow.session, wanted)
    if row is None:
        created = _create(uow, wanted, demographics or Demographics())
        if created is not None:
            return created
        row = _matching_patient(uow.session, wanted)  # a concurrent start created the same patient first
        if row is None:
            raise Conflict("the patient was changed by another request at the same time; try again")
    _add_identifiers(uow, row, wanted)
    _fill_unknown(row, demographics, uow)
    return row


def patient_of_start(uow: UnitOfWork, patient_id: str | None,
                     details: PatientDetails | None) -> tuple[PatientRow | None, str | None]:
    """The patient a start names (by its free-text patient id and/or its `patient`), found or created, and
    the episode's patient id: the one given, else the patient's identifier in the default system, if any."""
    system = uow.app.config.patient_id_system
    identifiers = [Identifier(system, patient_id)] if patient_id else []
    identifiers += check_identifiers(list(details.identifiers), "patient.identifiers") if details else []
    if not identifiers:
        return None, None
    row = find_or_create_by_identifiers(uow, identifiers, details.demographics if details else None)
    if patient_id is None:
        patient_id = next(iter(identifier_values(uow.session, [row.id], system)), None)
    return row, patient_id


def update_demographics(uow: UnitOfWork, principal: Principal, row: PatientRow,
                        demographics: Demographics) -> list[str]:
    """Set the demographics given (None leaves a field as it is), recorded as `patient_updated` with the
    names of the fields that changed (not their values: the patient row holds them). Returns those names."""
    rule = PATIENT_RULES["update"]
    check_role(rule, principal)
    check_demographics(demographics, uow.app.now().date())
    changed = [name for name, value in demographics.fields().items()
               if value is not None and getattr(row, name) != value]
    if not changed:
        return []
    for name in changed:
        setattr(row, name, getattr(demographics, name))
    row.updated_at = uow.app.now()
    uow.record(rule.event or rule.action, principal.name, data={"patient": row.id, "fields": changed})
    return changed


def merge_patients(app: CarePath, principal: Principal, survivor: str, merged: str, reason: str) -> MergeView:
    """Link `merged` (a patient id, or an identifier as system|value) to `survivor`, recorded as
    `patient_merged` with who and why, in a transaction of its own. 404 for a patient that does not exist;
    409 for a patient into itself, into one merged into it, or one already merged."""
    check_role(PATIENT_RULES["merge"], principal)
    reason = _reason(reason)

    def attempt() -> MergeView:
        with UnitOfWork(app) as uow:
            done = merge_in(uow, principal, survivor, merged, reason)
            uow.commit()
            return done

    return with_conflict_retries(app, attempt)


def merge_in(uow: UnitOfWork, principal: Principal, survivor: str, merged: str, reason: str) -> MergeView:
    """`merge_patients` inside the caller's transaction (an ADT A40 routed with its message)."""
    rule = PATIENT_RULES["merge"]
    check_role(rule, principal)
    reason = _reason(reason)
    merged_id = _patient_ref(uow.session, merged, "merged")
    if merged_id == survivor:
        raise Conflict(f"patient {survivor} cannot be merged into itself")
    rows = _locked(uow.session, survivor, merged_id)
    target, gone = rows[survivor], rows[merged_id]
    if gone.merged_into is not None:
        raise InvalidTransition(f"patient {merged_id} is already merged into patient {gone.merged_into}; "
                                "undo that merge first")
    if merged_id in merge_chain(uow.session, target.id):
        raise Conflict(f"patient {survivor} is merged into patient {merged_id}: merging {merged_id} into "
                       f"{survivor} would make a loop")
    gone.merged_into, gone.updated_at = target.id, uow.app.now()
    uow.record(rule.event or rule.action, principal.name, data={
        "patient": merged_id, "survivor": target.id, "reason": reason, "field": rule.field,
        "old": None, "new": target.id})
    return MergeView(merged_id, target.id, None)


def unmerge_patient(app: CarePath, principal: Principal, patient: str, reason: str) -> MergeView:
    """Undo the merge of `patient` (the merged one), recorded as `patient_unmerged` with who and why."""
    check_role(PATIENT_RULES["unmerge"], principal)
    reason = _reason(reason)

    def attempt() -> MergeView:
        with UnitOfWork(app) as uow:
            done = unmerge_in(uow, principal, patient, reason)
            uow.commit()
            return done

    return with_conflict_retries(app, attempt)


def unmerge_in(uow: UnitOfWork, principal: Principal, patient: str, reason: str) -> MergeView:
    """`unmerge_patient` inside the caller's transaction (an ADT A37 routed with its message); `patient` may
    be an identifier system|value too."""
    rule = PATIENT_RULES["unmerge"]
    check_role(rule, principal)
    reason = _reason(reason)
    patient = _patient_ref(uow.session, patient, "patient")
    row = _locked(uow.session, patient)[patient]
    if row.merged_into is None:
        raise InvalidTransition(f"patient {patient} is not merged into another patient")
    previous, row.merged_into, row.updated_at = row.merged_into, None, uow.app.now()
    uow.record(rule.event or rule.action, principal.name, data={
        "patient": patient, "survivor": previous, "reason": reason, "field": rule.field,
        "old": previous, "new": None})
    return MergeView(patient, None, previous)


def resolve(session: Session, patient: str) -> str:
    """The patient that stands for `patient` now (itself, or the end of its merge links)."""
    if session.get(PatientRow, patient) is None:
        raise NotFound(f"patient {patient} does not exist")
    return survivor_of(session, patient)


def _matching_patient(session: Session, identifiers: list[Identifier]) -> PatientRow | None:
    """The patient holding the first of `identifiers` that is known (not its survivor: an episode links to
    the identity it was started for, so that an unmerge takes it back); Conflict when the known ones belong
    to patients that are not merged into one."""
    matches = or_(*[and_(PatientIdentifier.system == i.system, PatientIdentifier.value == i.value)
                    for i in identifiers])
    holders = {(system, value): ref for ref, system, value in session.execute(select(
        PatientIdentifier.patient_ref, PatientIdentifier.system, PatientIdentifier.value).where(matches))}
    if not holders:
        return None
    survivors: dict[str, list[str]] = {}
    for (system, value), ref in holders.items():
        survivors.setdefault(survivor_of(session, ref), []).append(f"{system}|{value}")
    if len(survivors) > 1:
        named = "; ".join(f"patient {p}: {', '.join(sorted(ids))}" for p, ids in sorted(survivors.items()))
        raise Conflict(f"the identifiers name different patients ({named}): merge them first")
    first = next(holders[(i.system, i.value)] for i in identifiers if (i.system, i.value) in holders)
    return session.get(PatientRow, first)


def _create(uow: UnitOfWork, identifiers: list[Identifier], demographics: Demographics) -> PatientRow | None:
    """A new patient holding `identifiers`, in two statements (no savepoint); None, with nothing left written,
    when another transaction holds one of them already (committed meanwhile: PostgreSQL's ON CONFLICT waits
    for a concurrent insert of the same identifier to commit or roll back)."""
    now = uow.app.now()
    row = PatientRow(id=str(uuid.uuid4()), merged_into=None, created_at=now, updated_at=now,
                     **demographics.fields())
    session = uow.session
    session.add(row)
    session.flush()
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stored = session.execute(insert(PatientIdentifier).values(
        [{"patient_ref": row.id, "system": i.system, "value": i.value} for i in identifiers]
    ).on_conflict_do_nothing(index_elements=[PatientIdentifier.system, PatientIdentifier.value])
        .returning(PatientIdentifier.id)).all()
    if len(stored) == len(identifiers):
        return row
    session.execute(delete(PatientIdentifier).where(PatientIdentifier.patient_ref == row.id))
    session.delete(row)
    session.flush()
    return None


def _add_identifiers(uow: UnitOfWork, row: PatientRow, identifiers: list[Identifier]) -> None:
    new = [i for i in identifiers if patient_with_identifier(uow.session, i.system, i.value) is None]
    if not new:
        return
    try:
        with uow.session.begin_nested():
            uow.session.add_all(PatientIdentifier(patient_ref=row.id, system=i.system, value=i.value) for i in new)
            uow.session.flush()
    except IntegrityError:
        raise Conflict("the patient was changed by another request at the same time; try again") from None


def _fill_unknown(row: PatientRow, demographics: Demographics | None, uow: UnitOfWork) -> None:
    if demographics is None:
        return
    unknown = {name: value for name, value in demographics.fields().items()
               if value is not None and getattr(row, name) is None}
    for name, value in unknown.items():
        setattr(row, name, value)
    if unknown:
        row.updated_at = uow.app.now()


def _patient_ref(session: Session, ref: str, field: str) -> str:
    """A patient id, or the patient an identifier `system|value` names."""
    if "|" not in ref:
        return ref
    identifier = parse_token(ref, field)
    found = patient_with_identifier(session, identifier.system, identifier.value)
    if found is None:
        raise NotFound(f"no patient has the identifier {identifier.as_token()}")
    return found


def _locked(session: Session, *ids: str) -> dict[str, PatientRow]:
    """The patients' rows, locked in id order (two merges of the same pair never wait on each other in a cycle)."""
    rows = {row.id: row for row in session.scalars(
        select(PatientRow).where(PatientRow.id.in_(sorted(set(ids)))).order_by(PatientRow.id).with_for_update())}
    for patient in ids:
        if patient not in rows:
            raise NotFound(f"patient {patient} does not exist")
    return rows


def _reason(reason: object) -> str:
    text = " ".join(reason.split()) if isinstance(reason, str) else ""
    if not MIN_REASON <= len(text) <= MAX_REASON or "\x00" in text:
        message = f"say why ({MIN_REASON} to {MAX_REASON} characters): it is kept in the history"
        raise ValidationFailed(f"reason: {message}", [Problem(message, field="reason")])
    return text


__all__ = ["DEMOGRAPHIC_FIELDS", "MergeView", "find_or_create_by_identifiers", "merge_in", "merge_patients",
           "patient_of_start", "resolve", "unmerge_in", "unmerge_patient", "update_demographics"]
