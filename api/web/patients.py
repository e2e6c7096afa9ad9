"""The case page `/app/patients/{patient_id}`: the whole person in one place for a case manager. The patient's
details, every episode across pathways the user may read (of the patient and of the identities merged with
it) with its open tasks, and the latest history across them, in words (engine/labels.py).

It reads through the use case the JSON API's GET /api/patients/{id}/case calls (engine/usecases/patient_case.py),
so visibility is the engine's (a patient the user may not read is "not found") and each view is recorded as
the API records it. Asked for a merged identity, the page is its survivor's (a redirect there).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import Response

from carepath.engine.case_queries import CaseEntry, CaseEpisode
from carepath.engine.labels import event_details, event_label, key_label
from carepath.engine.usecases.audit import reads_audit_trail
from carepath.engine.usecases.patient_case import case_owner, get_patient_case

from .cookies import client_of, engine_of
from .pages import page, redirect, require_user
from .search_values import MAX_TEXT, local_time
from .worklist import due_in_words

router = APIRouter(include_in_schema=False)
PATIENTS = "/app/patients"
HISTORY_ROWS = 20


def patient_url(patient_id: str) -> str:
    return f"{PATIENTS}/{quote(patient_id, safe='')}"


@dataclass(frozen=True)
class CaseHistoryRow:
    entry: CaseEntry
    episode: CaseEpisode | None
    label: str  # the type in words
    changed: str | None
    details: list[tuple[str, str]]


@router.get(PATIENTS + "/{patient_id}")
def case_page(request: Request, patient_id: Annotated[str, PathParam(min_length=1, max_length=MAX_TEXT)]) -> Response:
    user = require_user(request)
    engine = engine_of(request)
    owner = case_owner(engine, user.principal, patient_id)  # NotFound: the 404 page
    if owner != patient_id:  # a merged identity: the survivor's page says it all, under its id
        return redirect(patient_url(owner))
    case = get_patient_case(engine, user.principal, patient_id, client_of(request), HISTORY_ROWS)
    zone, now = engine.time_context().tz, engine.now()
    by_id = {e.id: e for e in case.episodes}
    history = []
    for entry in case.history:
        changed, details = event_details(entry.data, zone)
        history.append(CaseHistoryRow(entry, by_id.get(entry.instance_id), event_label(entry.type), changed, details))
    patient_ids = sorted({e.patient_id for e in case.episodes if e.patient_id})
    return page(request, "patient.html", user=user, case=case, patient=case.patient, history=history,
                patient_ids=patient_ids, reads_audit_trail=reads_audit_trail(user.principal), zone=zone.key,
                when=local_time(zone), due=lambda at: due_in_words(at, now, zone), status_words=key_label)
