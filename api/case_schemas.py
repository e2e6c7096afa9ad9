"""The JSON of a patient's case (GET /api/patients/{id}/case): engine/usecases/patient_case.py."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from carepath.engine.usecases.patient_case import PatientCase

from .schemas import Out, PatientOut, UtcInstant


class CaseTaskOut(Out):
    id: str
    name: str
    state: str
    assignee: str | None
    offered_to: list[str] = Field(description="candidate groups and users (empty: everyone or nobody)")
    due_date: UtcInstant | None


class CaseEpisodeOut(Out):
    id: str
    pathway_key: str
    pathway_name: str
    version: int
    status: str
    business_key: str | None
    patient_id: str | None = Field(description="the patient id the episode was started with")
    created_at: UtcInstant
    ended_at: UtcInstant | None
    open_tasks: list[CaseTaskOut]


class CaseEntryOut(Out):
    id: int
    at: UtcInstant
    type: str
    actor: str
    instance_id: str
    task_id: str | None
    data: dict[str, Any]


class CaseReferralOut(Out):
    id: str = Field(description="GET /api/referrals/{id}")
    instance_id: str = Field(description="the episode that sent it")
    domain: str
    service_name: str
    organization_name: str | None
    status: str
    status_reason: str | None
    outcome: str | None
    consent: bool = Field(description="false once the patient withdrew consent to share with the organization")
    updated_at: UtcInstant


class CaseOut(Out):
    patient: PatientOut = Field(description="the patient that stands for the one asked for (its survivor when "
                                "merged)")
    episodes: list[CaseEpisodeOut] = Field(description="every episode the caller may read, of this patient and "
                                           "of the patients merged with it, newest first")
    history: list[CaseEntryOut] = Field(description="the latest history entries across those episodes, newest "
                                        "first")
    referrals: list[CaseReferralOut] = Field(description="the referrals to community organizations those episodes "
                                             "sent, last changed first")

    @classmethod
    def of(cls, case: PatientCase) -> CaseOut:
        return cls(patient=PatientOut.of(case.patient),
                   episodes=[CaseEpisodeOut.model_validate(e) for e in case.episodes],
                   history=[CaseEntryOut.model_validate(h) for h in case.history],
                   referrals=[CaseReferralOut.model_validate(r) for r in case.referrals])
