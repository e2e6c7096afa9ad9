"""A patient's case: the whole person in one place for a case manager. The patient (as GET /api/patients/{id}
reads it), every episode across pathways of the patient and of the identities merged with it that the reader
may read, each with its open tasks, and the latest history entries across those episodes.

Asked for a merged identity, the case is its survivor's (the one that stands for both). Who may read the
patient and each episode are the existing rules (patient_records.readable_patient, the instances' scope);
an episode the reader may not read is not shown and not counted.

A view is recorded as the other record reads are: `record_viewed` what `patient` for the patient, and what
`case` on each episode shown (with the break-glass grant it was read under), so that the auditors' search
"who viewed this patient's record" (audit events by patient id) finds it under every patient id shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..application import CarePath
from ..audit import RECORD_VIEWED
from ..case_queries import CaseEntry, CaseEpisode, CaseReferral, case_episodes, case_history, case_referrals
from ..identity import Principal, instance_scope
from ..patient_links import linked_patients
from ..patients import Patient
from ..persistence.unit_of_work import UnitOfWork
from .access import Client, client_data
from .patient_records import readable_patient

DEFAULT_HISTORY = 20


@dataclass(frozen=True)
class PatientCase:
    patient: Patient  # the survivor when the patient asked for is merged
    asked_for: str  # the patient id asked for
    episodes: list[CaseEpisode]
    history: list[CaseEntry]  # newest first, across the episodes
    referrals: list[CaseReferral] = field(default_factory=list)  # the episodes' referrals, last changed first

    @property
    def open_task_count(self) -> int:
        return sum(len(e.open_tasks) for e in self.episodes)


def get_patient_case(app: CarePath, principal: Principal, patient_id: str, client: Client | None = None,
                     history: int = DEFAULT_HISTORY) -> PatientCase:
    """The case of `patient_id` (its survivor's when merged); NotFound when the patient does not exist or the
    reader may not read it. The view is recorded (see the module's note)."""
    scope = instance_scope(principal)
    with app.db.read() as session:
        asked = readable_patient(session, principal, patient_id)
        survivor = asked.survivor or asked.id
        patient = readable_patient(session, principal, survivor) if survivor != asked.id else asked
        episodes = case_episodes(session, linked_patients(session, patient.id), scope)
        entries = case_history(session, [e.id for e in episodes], history)
        referrals = case_referrals(session, [e.id for e in episodes], principal)
    _record_view(app, principal, patient, episodes, client)
    return PatientCase(patient, patient_id, episodes, entries, referrals)


def case_owner(app: CarePath, principal: Principal, patient_id: str) -> str:
    """The patient whose case `patient_id`'s is (its survivor when merged), recording nothing; NotFound when
    it does not exist or the reader may not read it."""
    with app.db.read() as session:
        asked = readable_patient(session, principal, patient_id)
    return asked.survivor or asked.id


def _record_view(app: CarePath, principal: Principal, patient: Patient, episodes: list[CaseEpisode],
                 client: Client | None) -> None:
    seen = client_data(client)
    with UnitOfWork(app) as uow:
        uow.record(RECORD_VIEWED, principal.name, data={"what": "patient", "patient": patient.id, "client": seen})
        for episode in episodes:
            data: dict[str, object] = {"what": "case", "patient": patient.id, "client": seen}
            grant = principal.grant_for(episode.patient_id) if principal.break_glass else None
            if grant is not None:  # read while a break-glass grant for its patient runs: the auditors review it
                data["break_glass"] = grant
            uow.record(RECORD_VIEWED, principal.name, instance_id=episode.id, data=data)
        uow.commit()
