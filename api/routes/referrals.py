"""/api/referrals: referrals to community organizations (docs/pathways/sdoh-screening-referral.md): list, read
one, and the status updates that move them and their pathway."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from carepath.engine.model import ReferralStatus
from carepath.engine.sdoh.instruments import DOMAINS
from carepath.engine.usecases.access import record_access
from carepath.engine.usecases.consent import withdraw_consent
from carepath.engine.usecases.printable_referral import printable_referral
from carepath.engine.usecases.referral_steps import OUTCOMES
from carepath.engine.usecases.referrals import (
    ReferralFilters,
    get_referral,
    list_referrals,
    update_referral_status,
)

from ..deps import ClientDep, CurrentUser, EngineDep, SendingUser
from ..params import OffsetParam
from ..schemas import BODY_ERRORS, ERROR_RESPONSES, Out, UtcInstant, errors

router = APIRouter(prefix="/api/referrals", tags=["referrals"], responses=ERROR_RESPONSES)
STATUSES = ", ".join(s.value for s in ReferralStatus)


class ReferralOut(Out):
    id: str
    instance_id: str = Field(description="the episode (pathway instance) that sent it")
    case_id: str = Field(description="the episode's business key")
    patient_id: str | None
    domain: str = Field(description=f"SDOH domain: {', '.join(DOMAINS)}")
    service_id: str = Field(description="the resource directory's service id (GET /api/resources/{id})")
    service_name: str
    organization_id: str | None
    organization_name: str | None
    status: str = Field(description=f"the Gravity referral Task status: {STATUSES}")
    status_reason: str | None
    outcome: str | None = Field(description=f"when the loop closed: {', '.join(OUTCOMES)}")
    consent: bool = Field(description="the patient consented to share information with the organization")
    created_by: str
    created_at: UtcInstant
    updated_at: UtcInstant
    closed_at: UtcInstant | None
    version: int = Field(description="changes with every update; send it back to update only what you read")
    history: list[dict[str, Any]]
    actions: list[str] = Field(description="the changes the caller may make now (rows of the referral rules)")


class ReferralPage(Out):
    items: list[ReferralOut]
    limit: int
    offset: int


class StatusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: str = Field(max_length=40, description=f"the new status ({STATUSES}), or the present one to record "
                        "only an outcome")
    status_reason: str | None = Field(None, max_length=2000, description="required for rejected, cancelled, "
                                      "on-hold, failed")
    outcome: str | None = Field(None, max_length=40, description=f"closes the loop: {', '.join(OUTCOMES)}")
    version: int | None = Field(None, ge=0, description="the version read; refused (409) if it changed since")


@router.get("", response_model=ReferralPage, responses=errors(422))
def search(engine: EngineDep, user: SendingUser,
           patient: Annotated[str | None, Query(max_length=255, description="patient id")] = None,
           status: Annotated[str | None, Query(max_length=40, description=STATUSES)] = None,
           domain: Annotated[str | None, Query(max_length=40, description=", ".join(DOMAINS))] = None,
           limit: Annotated[int, Query(ge=1, le=100)] = 20, offset: OffsetParam = 0) -> ReferralPage:
    """The referrals the caller may see (staff: of the episodes they may read; an organization's integration
    account: its own), newest first."""
    views = list_referrals(engine, user, ReferralFilters(patient, status, domain), limit, offset)
    return ReferralPage(items=[ReferralOut.model_validate(v) for v in views], limit=limit, offset=offset)


@router.get("/{referral_id}", response_model=ReferralOut, responses=errors(404, 422))
def read_one(referral_id: str, engine: EngineDep, user: SendingUser) -> ReferralOut:
    return ReferralOut.model_validate(get_referral(engine, user, referral_id))


@router.post("/{referral_id}/status", response_model=ReferralOut, responses=errors(404, 409, *BODY_ERRORS))
def set_status(referral_id: str, body: StatusIn, engine: EngineDep, user: SendingUser) -> ReferralOut:
    """The organization's update (its integration account, on its own referrals) or the case manager's after a
    phone call: the referral moves by the referral rules (docs/state-machine.md) and its pathway hears of it
    in the same transaction."""
    view = update_referral_status(engine, user, referral_id, body.status, body.status_reason, body.outcome,
                                  body.version)
    return ReferralOut.model_validate(view)


class WithdrawIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(None, max_length=2000, description="what the patient said, for the history")


class WithdrawalOut(Out):
    referral_id: str = Field(description="the referral the consent was withdrawn from")
    organization_key: str = Field(description="the directory organization id (service:<id> without one)")
    organization_name: str | None
    withdrawn_by: str
    withdrawn_at: UtcInstant
    note: str | None
    cancelled: list[str] = Field(description="the open referrals to the organization this cancelled (none when "
                                 "the consent was already withdrawn)")


@router.post("/{referral_id}/withdraw-consent", response_model=WithdrawalOut,
             responses=errors(403, 404, 409, *BODY_ERRORS))
def withdraw(referral_id: str, engine: EngineDep, user: CurrentUser, body: WithdrawIn | None = None) -> WithdrawalOut:
    """The patient withdraws consent to share information with this referral's organization: the patient's open
    referrals to it are cancelled ("patient withdrew consent") and their pathways move on, deliveries not yet
    sent are withheld, and no later referral to it is sent. Staff who may read the episode."""
    view = withdraw_consent(engine, user, referral_id, body.note if body else None)
    return WithdrawalOut.model_validate(view)


@router.get("/{referral_id}/printable", response_class=HTMLResponse,
            responses=errors(401, 403, 404, 422, json=False))
def printable(referral_id: str, engine: EngineDep, user: CurrentUser, client: ClientDep) -> HTMLResponse:
    """The referral on paper, for an organization without a system: one self-contained HTML page (no scripts)
    with the patient's name and phone, the need, the service (organization, address, phone, hours), the date
    and the case manager. Recorded as a read of the patient's record."""
    page, instance_id = printable_referral(engine, user, referral_id)
    record_access(engine, user, "referral", instance_id, client=client)
    return HTMLResponse(page, headers={"Content-Disposition": f'inline; filename="referral-{referral_id}.html"'})
