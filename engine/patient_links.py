"""Following merge links in the database: which patient stands for a merged one, and which patients (and
which free-text patient ids) one identity covers. Reads only; the changes are engine/usecases/patients.py.

Episodes keep the free-text `patient_id` they were started with and link to the patient that identifier
named (`instances.patient_ref`). A merge links the merged patient to its survivor (`patients.merged_into`);
it moves no row and rewrites no history. So a search by a patient id finds the episodes, tasks, reads and
grants of every patient linked to it: the survivor at the end of the chain and every patient merged into
it, directly or through another (an SQL IN over those). After an unmerge the link is gone and they separate again.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import BindParameter, Select, bindparam, func, select
from sqlalchemy.orm import Session

from .errors import Conflict
from .patients import V2_SYSTEM_PREFIX
from .persistence.tables import Instance, Patient, PatientIdentifier
from .views import PatientSummary

MAX_CHAIN = 50  # merges of merges; a longer chain is a data problem, reported rather than followed forever
MAX_LINKED = 1000  # patients one identity may cover


def merge_chain(session: Session, patient_id: str) -> list[str]:
    """The patient, the patient it is merged into, that one's survivor, ...: the last one stands for all."""
    chain = [patient_id]
    while (nxt := session.scalar(select(Patient.merged_into).where(Patient.id == chain[-1]))) is not None:
        if nxt in chain or len(chain) > MAX_CHAIN:
            raise Conflict(f"the merges of patient {patient_id} form a loop or a chain longer than {MAX_CHAIN}")
        chain.append(nxt)
    return chain


def survivor_of(session: Session, patient_id: str) -> str:
    """The patient that stands for `patient_id`: itself unless merged, else its survivor's survivor, ..."""
    return merge_chain(session, patient_id)[-1]


def linked_patients(session: Session, patient_id: str) -> list[str]:
    """The survivor of `patient_id` first, then every patient merged into it (directly or not)."""
    root = survivor_of(session, patient_id)
    linked, frontier = [root], [root]
    while frontier and len(linked) < MAX_LINKED:
        frontier = [p for p in session.scalars(select(Patient.id).where(Patient.merged_into.in_(frontier)))
                    if p not in linked]
        linked.extend(frontier)
    return linked


def patient_with_identifier(session: Session, system: str, value: str) -> str | None:
    return session.scalar(select(PatientIdentifier.patient_ref).where(
        PatientIdentifier.system == system, PatientIdentifier.value == value))


def identifier_values(session: Session, patients: Iterable[str], system: str) -> list[str]:
    ids = list(patients)
    if not ids:
        return []
    return list(session.scalars(select(PatientIdentifier.value).where(
        PatientIdentifier.patient_ref.in_(ids), PatientIdentifier.system == system)
        .order_by(PatientIdentifier.value)))


def linked_patient_ids(session: Session, patient_id: str) -> list[str]:
    """The free-text patient ids of the episodes of every patient linked to the patient(s) whose episodes
    carry `patient_id`: `patient_id` first, then the others sorted (just `[patient_id]` when nothing links)."""
    refs = [r for r in session.scalars(select(Instance.patient_ref).where(Instance.patient_id == patient_id)
                                       .distinct().limit(MAX_LINKED)) if r is not None]
    if not refs:
        return [patient_id]
    group: list[str] = []
    for ref in refs:
        if ref not in group:
            group.extend(p for p in linked_patients(session, ref) if p not in group)
    others = session.scalars(select(Instance.patient_id).where(
        Instance.patient_ref.in_(group), Instance.patient_id.is_not(None), Instance.patient_id != patient_id)
        .distinct().limit(MAX_LINKED))
    return [patient_id, *sorted(p for p in others if p is not None)]


def survivors(session: Session, patient_ids: Iterable[str | None]) -> dict[str, str]:
    """The patient that stands for each one now (itself unless merged: the end of its merge links), one
    query per link followed, for a page of rows."""
    found = {p: p for p in patient_ids if p is not None}
    pending = set(found)
    for _ in range(MAX_CHAIN):
        links = {patient: survivor for patient, survivor in session.execute(select(Patient.id, Patient.merged_into)
                 .where(Patient.id.in_(sorted({found[p] for p in pending})), Patient.merged_into.is_not(None)))
                 if survivor is not None}
        pending = {p for p in pending if found[p] in links}
        if not pending:
            break
        for p in pending:
            found[p] = links[found[p]]
    return found


def patients_with_identifier_value(session: Session, value: str) -> list[str]:
    """Every patient linked (linked_patients) to a patient holding an identifier with this exact value, in any
    system (an MRN, an account number): what a search by that value stands for."""
    systems = identifier_systems(session)
    holders = session.scalars(select(PatientIdentifier.patient_ref).where(
        PatientIdentifier.system.in_(systems), PatientIdentifier.value == value).distinct().limit(MAX_LINKED))
    group: list[str] = []
    for holder in holders:
        if holder not in group:
            group.extend(p for p in linked_patients(session, holder) if p not in group)
    return group


MAX_SYSTEMS = 1000  # identifier systems in use: the default one and a few per assigning authority


def identifier_systems(session: Session) -> list[str]:
    """The identifier systems in use, read as a skip scan of the (system, value) unique index: one index
    step per system (a recursive query), so that a search by value alone then looks each system up in that
    index (`system IN (...) AND value = ?`) instead of scanning every identifier."""
    first = select(func.min(PatientIdentifier.system).label("system")).cte("systems", recursive=True)
    later = select(func.min(PatientIdentifier.system)).where(PatientIdentifier.system > first.c.system)
    systems = first.union_all(select(later.scalar_subquery()).where(first.c.system.is_not(None)))
    return [s for s in session.scalars(select(systems.c.system).limit(MAX_SYSTEMS)) if s is not None]


def summaries_of_instances(session: Session, instance_ids: Iterable[str]) -> dict[str, PatientSummary]:
    """Episode id -> who stands for its patient now, for a page of rows (episodes without a patient absent)."""
    ids = sorted(set(instance_ids))
    if not ids:
        return {}
    return _summaries(session, _BY_INSTANCE, ids)


def summaries_query(instance_ids: list[str]) -> Select[Any]:
    """The SQL of summaries_of_instances (for the benchmark's plans)."""
    return _BY_INSTANCE.params(keys=instance_ids)


def summaries_of_patients(session: Session, patient_refs: Iterable[str | None]) -> dict[str, PatientSummary]:
    """Patient id -> who stands for it now (itself unless merged), for a page of rows."""
    refs = sorted({r for r in patient_refs if r is not None})
    if not refs:
        return {}
    return _summaries(session, _BY_PATIENT, refs)


def _summaries(session: Session, query: Select[Any], keys: list[str]) -> dict[str, PatientSummary]:
    return {key: PatientSummary(id, family, given, born, number)
            for key, id, family, given, born, number in session.execute(query, {"keys": keys})}


def _summary_query(start: Select[str, str | None]) -> Select[Any]:
    """From `start`'s (key, patient id) rows up the merge links (a recursive CTE; UNION stops a loop) to the
    patient not merged into another: (key, its id, family, given, birth date, first MRN)."""
    chain = start.cte("merge_chain", recursive=True)
    chain = chain.union(select(chain.c.key, Patient.merged_into).join(Patient, Patient.id == chain.c.id)
                        .where(Patient.merged_into.is_not(None)))
    mrn = (select(PatientIdentifier.value).where(
        PatientIdentifier.patient_ref == Patient.id,
        PatientIdentifier.system.startswith(V2_SYSTEM_PREFIX, autoescape=True),
        PatientIdentifier.system.endswith(":MR", autoescape=True))
        .order_by(PatientIdentifier.system, PatientIdentifier.value).limit(1).scalar_subquery())
    return (select(chain.c.key, Patient.id, Patient.family, Patient.given, Patient.birth_date, mrn)
            .join(Patient, Patient.id == chain.c.id).where(Patient.merged_into.is_(None)))


# Built once (the keys bound at execution): building the recursive query took longer than running it, on
# every answer that names its patient.
_KEYS: BindParameter[list[str]] = bindparam("keys", expanding=True)
_BY_INSTANCE = _summary_query(select(Instance.id.label("key"), Instance.patient_ref.label("id"))
                              .where(Instance.id.in_(_KEYS), Instance.patient_ref.is_not(None)))
_BY_PATIENT = _summary_query(select(Patient.id.label("key"), Patient.id.label("id")).where(Patient.id.in_(_KEYS)))
