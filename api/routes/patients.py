"""/api/patients: read and search patients; merge and unmerge them.

The rules are the engine's: who may read a patient (engine/usecases/patient_records.py), who may merge and
unmerge (PATIENT_RULES in engine/rules.py: integration accounts and admins), what a merge does
(engine/usecases/patients.py: a link, nothing moved).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query

from carepath.engine.case_queries import MAX_CASE_HISTORY
from carepath.engine.patients import MAX_NAME, MAX_SYSTEM, MAX_VALUE
from carepath.engine.usecases.patient_case import DEFAULT_HISTORY, get_patient_case
from carepath.engine.usecases.patient_records import MAX_RESULTS, get_patient, search_patients
from carepath.engine.usecases.patients import merge_patients, unmerge_patient

from ..case_schemas import CaseOut, case_out
from ..deps import ClientDep, CurrentUser, EngineDep, SendingUser
from ..schemas import BODY_ERRORS, ERROR_RESPONSES, MergeIn, MergeOut, Out, PatientOut, UnmergeIn, errors

router = APIRouter(prefix="/api/patients", tags=["patients"], responses=ERROR_RESPONSES)

IDENTIFIER = "system|value, e.g. urn:carepath:patient-id|P-123 (an MRN: urn:carepath:id:<AUTHORITY>:MR|<number>)"


@router.get("", response_model=list[PatientOut], responses=errors(422))
def search(engine: EngineDep, user: CurrentUser,
           identifier: Annotated[str | None, Query(min_length=3, max_length=MAX_SYSTEM + MAX_VALUE + 1,
                                                   description=IDENTIFIER)] = None,
           name: Annotated[str | None, Query(min_length=1, max_length=MAX_NAME,
                                             description="the start of the family or given name, any case")] = None,
           birthdate: Annotated[date | None, Query(description="YYYY-MM-DD")] = None,
           limit: Annotated[int, Query(ge=1, le=MAX_RESULTS)] = 50) -> list[PatientOut]:
    """Patients matching every criterion given that the caller may read (one of whose episodes, or of the
    patients merged with them, the caller may read)."""
    found = search_patients(engine, user, identifier=identifier, name=name, birthdate=birthdate, limit=limit)
    return [PatientOut.of(p) for p in found]


@router.get("/{patient_id}", response_model=PatientOut, responses=errors(404, 422))
def get(patient_id: str, engine: EngineDep, user: CurrentUser, client: ClientDep) -> PatientOut:
    """The patient, its identifiers and the ids of its episodes (recorded as `record_viewed`, what `patient`)."""
    return PatientOut.of(get_patient(engine, user, patient_id, client))


@router.get("/{patient_id}/case", response_model=CaseOut, responses=errors(404, 422))
def case(patient_id: str, engine: EngineDep, user: CurrentUser, client: ClientDep,
         history: Annotated[int, Query(ge=0, le=MAX_CASE_HISTORY,
                                       description="how many of the latest history entries")] = DEFAULT_HISTORY,
         ) -> Out:
    """The whole person in one place: the patient (its survivor when merged), every episode across pathways
    the caller may read with its open tasks, and the latest history across them. Recorded as `record_viewed`
    (what `patient`, and what `case` on each episode shown)."""
    return case_out(get_patient_case(engine, user, patient_id, client, history))


@router.post("/{patient_id}/merge", response_model=MergeOut, responses=errors(404, 409, *BODY_ERRORS))
def merge(patient_id: str, body: MergeIn, engine: EngineDep, user: SendingUser) -> MergeOut:
    """Merge `merged` into this patient (the survivor): a link, recorded as `patient_merged` with the reason."""
    return MergeOut.model_validate(merge_patients(engine, user, patient_id, body.merged, body.reason))


@router.post("/{patient_id}/unmerge", response_model=MergeOut, responses=errors(404, 409, *BODY_ERRORS))
def unmerge(patient_id: str, body: UnmergeIn, engine: EngineDep, user: SendingUser) -> MergeOut:
    """Undo the merge of this (merged) patient, recorded as `patient_unmerged` with the reason."""
    return MergeOut.model_validate(unmerge_patient(engine, user, patient_id, body.reason))
