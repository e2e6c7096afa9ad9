"""Reading patients: one patient with its identifiers and episodes, and searches by identifier, name and
birth date. Who may read a patient is who may read one of its episodes (the instances' rule: clinical leads,
auditors and admins every patient; task workers those of the episodes they are involved in or hold a
break-glass grant for); integration accounts read none. Episodes of merged identities count for both
(engine/patient_links.py). Reading one patient is recorded (`record_viewed`, what `patient`); searches are
lists, and record nothing, as other lists.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ..application import CarePath
from ..audit import RECORD_VIEWED
from ..errors import NotFound, PermissionDenied, Problem, ValidationFailed
from ..identity import Principal, Role, VisibleTo, instance_scope
from ..patient_links import linked_patients, patient_with_identifier, survivor_of
from ..patients import Demographics, Identifier, Patient, parse_token, search_key
from ..persistence.tables import Instance, PatientIdentifier
from ..persistence.tables import Patient as PatientRow
from ..persistence.unit_of_work import UnitOfWork
from ..queries import instances_visible_to, readable_patients
from .access import Client, client_data

MAX_RESULTS = 100
MAX_EPISODES = 200


def get_patient(app: CarePath, principal: Principal, patient_id: str, client: Client | None = None) -> Patient:
    """The patient with its identifiers, the patients merged into it and the episode ids the reader may
    read (its own and its merged identities'); NotFound when it does not exist or the reader may not read it."""
    _check_reader(principal)
    with app.db.read() as session:
        found = readable_patient(session, principal, patient_id)
    with UnitOfWork(app) as uow:
        uow.record(RECORD_VIEWED, principal.name, data={"what": "patient", "patient": patient_id,
                                                        "client": client_data(client)})
        uow.commit()
    return found


def readable_patient(session: Session, principal: Principal, patient_id: str) -> Patient:
    """The patient as `get_patient` reads it, in the caller's session and without recording the read;
    NotFound when it does not exist or the reader may not read it (the one rule: queries.readable_patients)."""
    _check_reader(principal)
    scope = instance_scope(principal)
    query = select(PatientRow).where(PatientRow.id == patient_id)
    if scope is not None:
        query = query.where(readable_patients(session, scope))
    row = session.scalars(query).first()
    found = _view(session, row, scope) if row is not None else None
    if found is None:
        raise NotFound(f"patient {patient_id} does not exist")
    return found


def search_patients(app: CarePath, principal: Principal, *, identifier: str | None = None, name: str | None = None,
                    birthdate: date | None = None, limit: int = 50) -> list[Patient]:
    """Patients matching every criterion given (identifier `system|value` exactly; a name that starts the
    family or given name, in any case; the birth date), that the reader may read, by family name."""
    _check_reader(principal)
    if identifier is None and not name and birthdate is None:
        message = "search by identifier, name or birthdate"
        raise ValidationFailed(message, [Problem(message, field="identifier")])
    with app.db.read() as session:
        query = select(PatientRow)
        if identifier is not None:
            wanted = parse_token(identifier, "identifier")
            query = query.where(PatientRow.id == patient_with_identifier(session, wanted.system, wanted.value))
        if name is not None:
            start = search_key(name)
            query = query.where(or_(PatientRow.family_key.startswith(start, autoescape=True),
                                    PatientRow.given_key.startswith(start, autoescape=True)))
        if birthdate is not None:
            query = query.where(PatientRow.birth_date == birthdate)
        scope = instance_scope(principal)
        if scope is not None:  # the one rule of who reads a patient, in SQL (queries.readable_patients)
            query = query.where(readable_patients(session, scope))
        rows = session.scalars(query.order_by(PatientRow.family, PatientRow.given, PatientRow.id)
                               .limit(min(limit, MAX_RESULTS)))
        return [view for row in rows if (view := _view(session, row, scope)) is not None]


def _check_reader(principal: Principal) -> None:
    if principal.role is Role.INTEGRATION:
        raise PermissionDenied(f"user '{principal.name}' is an integration account: it reads no patient")


def _view(session: Session, row: PatientRow, scope: VisibleTo | None) -> Patient | None:
    """The patient with the episodes `scope` may read (the caller has checked with `readable_patients` that
    it may read the patient); None when it may read none of them after all."""
    group = linked_patients(session, row.id)
    episodes = select(Instance.id).where(Instance.patient_ref.in_(group))
    if scope is not None:
        episodes = episodes.where(instances_visible_to(session, *scope))
    ids = tuple(session.scalars(episodes.order_by(Instance.created_at.desc(), Instance.id).limit(MAX_EPISODES)))
    if scope is not None and not ids:
        return None
    identifiers = tuple(Identifier(i.system, i.value) for i in session.scalars(
        select(PatientIdentifier).where(PatientIdentifier.patient_ref == row.id)
        .order_by(PatientIdentifier.system, PatientIdentifier.value)))
    merged = tuple(session.scalars(select(PatientRow.id).where(PatientRow.merged_into == row.id)
                                   .order_by(PatientRow.id)))
    demographics = Demographics(row.family, row.given, row.birth_date, row.phone, row.address)
    return Patient(row.id, identifiers, demographics, row.merged_into, merged, ids,
                   survivor=survivor_of(session, row.id))


def patient_of_episode(session: Session, patient_ref: str | None) -> Patient | None:
    """The patient an episode is for, to show beside it (the caller has checked that the reader may read
    the episode)."""
    row = session.get(PatientRow, patient_ref) if patient_ref else None
    return _view(session, row, None) if row is not None else None


def patient_of_instance(app: CarePath, instance_id: str) -> Patient | None:
    """Who an episode is for, as its pages show it: the patient that stands for the episode's patient now
    (its survivor, when merged). The caller has checked that the reader may read the episode."""
    with app.db.read() as session:
        ref = session.scalar(select(Instance.patient_ref).where(Instance.id == instance_id))
        return patient_of_episode(session, survivor_of(session, ref) if ref else None)
