"""/api/partners: the registry of partner organizations (admins write it; workers read it), and
/api/outbound-deliveries: what CarePath sent or failed to send to their endpoints (admins). docs/partners.md.

A partner's signing secret is answered once, by the create and rotate-secret calls, and never read back.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from carepath.engine.model import DeliveryState
from carepath.engine.usecases.outbox import MAX_PAGE, get_delivery, list_deliveries, retry_delivery
from carepath.engine.usecases.partners import (
    activate_partner,
    add_partner,
    deactivate_partner,
    get_partner,
    list_partners,
    rotate_secret,
    update_partner,
)

from ..deps import CurrentUser, EngineDep
from ..schemas import BODY_ERRORS, ERROR_RESPONSES, Out, UtcInstant, errors

router = APIRouter(tags=["partners"], responses=ERROR_RESPONSES)
PartnerId = Annotated[str, PathParam(min_length=1, max_length=60, description="the partner's id (a slug)")]
DeliveryId = Annotated[int, PathParam(ge=1, le=2**62, description="the delivery's number")]
ENDPOINT = ("the webhook deliveries are POSTed to: https (http only to a loopback address when "
            "CAREPATH_PARTNER_ALLOW_HTTP_LOOPBACK is set); null: none (printable referrals)")


class PartnerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=60, description="a slug: lower-case letters, digits, hyphens")
    name: str = Field(min_length=1, max_length=300)
    endpoint_url: str | None = Field(default=None, max_length=1000, description=ENDPOINT)
    account: str | None = Field(default=None, max_length=200,
                                description="the integration account that acts for it (its status updates)")
    directory_organizations: list[str] = Field(default_factory=list, max_length=50,
                                               description="resource-directory organization ids (HSDS) it is")


class PartnerChangeIn(BaseModel):
    """Only the fields given change; null clears the endpoint or the account."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=300)
    endpoint_url: str | None = Field(default=None, max_length=1000, description=ENDPOINT)
    account: str | None = Field(default=None, max_length=200)
    directory_organizations: list[str] | None = Field(default=None, max_length=50)


class PartnerOut(Out):
    id: str
    name: str
    endpoint_url: str | None
    account: str | None
    directory_organizations: list[str]
    state: str = Field(description="active or inactive")
    secret_fingerprint: str = Field(description="the first 12 hex digits of SHA-256 of the signing secret")
    secret_rotated_at: UtcInstant
    created_at: UtcInstant
    updated_at: UtcInstant


class PartnerSecretOut(Out):
    partner: PartnerOut
    secret: str = Field(description="the signing secret: shown this once, give it to the partner now")


class DeliveryOut(Out):
    id: int
    partner_id: str
    kind: str
    idempotency_key: str
    status: str
    attempts: int
    next_attempt_at: UtcInstant
    last_error: str | None
    last_status_code: int | None
    created_at: UtcInstant
    updated_at: UtcInstant
    delivered_at: UtcInstant | None


class DeliveryDetailOut(DeliveryOut):
    payload: dict[str, object] | None


class DeliveryPage(Out):
    items: list[DeliveryOut]
    total: int
    offset: int
    limit: int


@router.get("/api/partners", response_model=list[PartnerOut], responses=errors(422))
def partners(engine: EngineDep, user: CurrentUser,
             active: Annotated[bool | None, Query(description="only active (true) or inactive (false) ones")] = None
             ) -> list[PartnerOut]:
    return [PartnerOut.model_validate(p) for p in list_partners(engine, user, active=active)]


@router.post("/api/partners", response_model=PartnerSecretOut, status_code=201, responses=errors(409, *BODY_ERRORS))
def create(body: PartnerIn, engine: EngineDep, user: CurrentUser) -> PartnerSecretOut:
    """Register a partner organization (admins); the answer holds its signing secret, this once."""
    made = add_partner(engine, user, body.id, body.name, endpoint_url=body.endpoint_url, account=body.account,
                       directory_organizations=body.directory_organizations)
    return PartnerSecretOut(partner=PartnerOut.model_validate(made.partner), secret=made.secret)


@router.get("/api/partners/{partner_id}", response_model=PartnerOut, responses=errors(404, 422))
def one(partner_id: PartnerId, engine: EngineDep, user: CurrentUser) -> PartnerOut:
    return PartnerOut.model_validate(get_partner(engine, user, partner_id))


@router.patch("/api/partners/{partner_id}", response_model=PartnerOut, responses=errors(404, *BODY_ERRORS))
def change(partner_id: PartnerId, body: PartnerChangeIn, engine: EngineDep, user: CurrentUser) -> PartnerOut:
    changes = body.model_dump(exclude_unset=True)
    return PartnerOut.model_validate(update_partner(engine, user, partner_id, changes))


@router.post("/api/partners/{partner_id}/rotate-secret", response_model=PartnerSecretOut,
             responses=errors(404, 409, 422))
def rotate(partner_id: PartnerId, engine: EngineDep, user: CurrentUser) -> PartnerSecretOut:
    """Replace the signing secret (admins); the answer holds the new one, this once."""
    made = rotate_secret(engine, user, partner_id)
    return PartnerSecretOut(partner=PartnerOut.model_validate(made.partner), secret=made.secret)


@router.post("/api/partners/{partner_id}/deactivate", response_model=PartnerOut, responses=errors(404, 409, 422))
def deactivate(partner_id: PartnerId, engine: EngineDep, user: CurrentUser) -> PartnerOut:
    return PartnerOut.model_validate(deactivate_partner(engine, user, partner_id))


@router.post("/api/partners/{partner_id}/activate", response_model=PartnerOut, responses=errors(404, 409, 422))
def activate(partner_id: PartnerId, engine: EngineDep, user: CurrentUser) -> PartnerOut:
    return PartnerOut.model_validate(activate_partner(engine, user, partner_id))


@router.get("/api/outbound-deliveries", response_model=DeliveryPage, responses=errors(400, 422))
def deliveries(engine: EngineDep, user: CurrentUser,
               status: Annotated[str | None, Query(max_length=20, description=", ".join(s.value for s in DeliveryState)
                                                   + " (dead: given up, for an admin to retry)")] = None,
               partner: Annotated[str | None, Query(max_length=60)] = None,
               offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
               limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50) -> DeliveryPage:
    """Outbound deliveries, newest first (admins)."""
    items, total = list_deliveries(engine, user, status=status, partner_id=partner, offset=offset, limit=limit)
    return DeliveryPage(items=[DeliveryOut.model_validate(d) for d in items], total=total, offset=offset, limit=limit)


@router.get("/api/outbound-deliveries/{delivery_id}", response_model=DeliveryDetailOut, responses=errors(404, 422))
def delivery(delivery_id: DeliveryId, engine: EngineDep, user: CurrentUser) -> DeliveryDetailOut:
    """One delivery with its payload (admins)."""
    return DeliveryDetailOut.model_validate(get_delivery(engine, user, delivery_id))


@router.post("/api/outbound-deliveries/{delivery_id}/retry", response_model=DeliveryDetailOut,
             responses=errors(404, 409, 422))
def retry(delivery_id: DeliveryId, engine: EngineDep, user: CurrentUser) -> DeliveryDetailOut:
    """Send a dead delivery again, after fixing its cause (admins)."""
    return DeliveryDetailOut.model_validate(retry_delivery(engine, user, delivery_id))
