"""The JSON of a patient's case (GET /api/patients/{id}/case): engine/usecases/patient_case.py."""

from __future__ import annotations

from datetime import datetime

from carepath.engine.case_queries import CaseEntry, CaseEpisode, CaseReferral, CaseTask
from carepath.engine.patients import Patient
from carepath.engine.usecases.patient_case import PatientCase

from .out_models import out_model
from .schemas import Out, PatientOut, UtcInstant

# The engine's dataclasses (engine/case_queries.py), with the history's times written as the exports write them.
_TIMES = {datetime: UtcInstant}
CaseTaskOut = out_model(CaseTask, name="CaseTaskOut", types=_TIMES, descriptions={
    "offered_to": "candidate groups and users (empty: everyone or nobody)"})
CaseEpisodeOut = out_model(CaseEpisode, name="CaseEpisodeOut", types={**_TIMES, CaseTask: CaseTaskOut},
                           descriptions={"patient_id": "the patient id the episode was started with"})
CaseEntryOut = out_model(CaseEntry, name="CaseEntryOut", types=_TIMES)
CaseReferralOut = out_model(CaseReferral, name="CaseReferralOut", types=_TIMES, exclude={"actions"}, descriptions={
    "id": "GET /api/referrals/{id}", "instance_id": "the episode that sent it",
    "consent": "false once the patient withdrew consent to share with the organization"})


CaseOut = out_model(PatientCase, name="CaseOut", exclude={"asked_for"}, types={
    Patient: PatientOut, CaseEpisode: CaseEpisodeOut, CaseEntry: CaseEntryOut, CaseReferral: CaseReferralOut},
    descriptions={
        "patient": "the patient that stands for the one asked for (its survivor when merged)",
        "episodes": "every episode the caller may read, of this patient and of the patients merged with it, "
                    "newest first",
        "history": "the latest history entries across those episodes, newest first",
        "referrals": "the referrals to community organizations those episodes sent, last changed first"})


def case_out(case: PatientCase) -> Out:
    """The answer of GET /api/patients/{id}/case."""
    return CaseOut.model_validate({"patient": PatientOut.of(case.patient), "episodes": case.episodes,
                                   "history": case.history, "referrals": case.referrals})
