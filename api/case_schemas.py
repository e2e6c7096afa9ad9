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


class CaseOut(Out):
    patient: PatientOut = Field(description="the patient that stands for the one asked for (its survivor when "
                                "merged)")
    episodes: list[CaseEpisodeOut] = Field(description="every episode the caller may read, of this patient and "
                                           "of the patients merged with it, newest first")
    history: list[CaseEntryOut] = Field(description="the latest history entries across those episodes, newest "
                                        "first")

    @classmethod
    def of(cls, case: PatientCase) -> CaseOut:
        return cls(patient=PatientOut.of(case.patient),
                   episodes=[CaseEpisodeOut.model_validate(e) for e in case.episodes],
                   history=[CaseEntryOut.model_validate(h) for h in case.history])
