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
from fastapi.responses import HTMLResponse, Response

from carepath.engine.case_queries import CaseEntry, CaseEpisode
from carepath.engine.labels import event_details, event_label, key_label, referral_words
from carepath.engine.usecases.access import record_access
from carepath.engine.usecases.audit import reads_audit_trail
from carepath.engine.usecases.consent import withdraw_consent
from carepath.engine.usecases.patient_case import case_owner, get_patient_case
from carepath.engine.usecases.printable_referral import printable_referral

from . import social_needs
from .cookies import client_of, engine_of
from .episodes import REPORT_POLICY
from .flash import redirect_saying
from .pages import page, posted_form, redirect, require_user, text_fields
from .search_values import MAX_TEXT, local_time
from .worklist import due_in_words

router = APIRouter(include_in_schema=False)
PATIENTS = "/app/patients"
REFERRALS = "/app/referrals"
ReferralId = Annotated[str, PathParam(min_length=1, max_length=36)]
router.include_router(social_needs.router)  # the compliance report's social-needs figures (web/social_needs.py)
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
                when=local_time(zone), due=lambda at: due_in_words(at, now, zone), status_words=key_label,
                referral_words=referral_words)


@router.get(REFERRALS + "/{referral_id}/printable")
def printable(request: Request, referral_id: ReferralId) -> Response:
    """The API's printable referral (GET /api/referrals/{id}/printable), reached with the session cookie;
    recorded as a read of the record, as the API records it."""
    user = require_user(request)
    engine = engine_of(request)
    sheet, instance_id = printable_referral(engine, user.principal, referral_id)
    record_access(engine, user.principal, "referral", instance_id, client=client_of(request))
    return HTMLResponse(sheet, headers={"Content-Security-Policy": REPORT_POLICY})


@router.post(REFERRALS + "/{referral_id}/withdraw-consent")
async def withdraw(request: Request, referral_id: ReferralId) -> Response:
    """The patient withdraws consent to share with the referral's organization (POST
    /api/referrals/{id}/withdraw-consent); back to the case page the button is on."""
    user = require_user(request)
    fields = text_fields(await posted_form(request, user))
    done = withdraw_consent(engine_of(request), user.principal, referral_id, fields.get("note") or None)
    cancelled = len(done.cancelled)
    said = (f"Consent to share with {done.organization_name or 'the organization'} is withdrawn; "
            f"{cancelled} open referral{'' if cancelled == 1 else 's'} cancelled.")
    back = fields.get("back", "")
    return redirect_saying(request, back if back.startswith(PATIENTS + "/") else PATIENTS, said)
