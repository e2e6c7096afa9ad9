"""The admin's page of partner organizations (docs/partners.md): the registry with a form to add one, its
secret shown once on the answer that made it (added or rotated), deactivation, and the deliveries that
could not be sent with a button to retry each. Admins only, through the same use cases as /api/partners."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import Response

from carepath.engine.errors import Conflict, ValidationFailed
from carepath.engine.usecases.outbox import list_deliveries, retry_delivery
from carepath.engine.usecases.partners import (
    PartnerWithSecret,
    add_partner,
    deactivate_partner,
    list_partners,
    rotate_secret,
)

from .admin import _admin, _field_errors, _text, _when, _zone
from .cookies import WebUser, engine_of
from .flash import redirect_saying
from .pages import page, posted_form

router = APIRouter(include_in_schema=False)
PARTNERS = "/app/admin/partners"
PartnerId = Annotated[str, PathParam(min_length=1, max_length=60)]
DeliveryId = Annotated[int, PathParam(ge=1, le=2**62)]
FIELDS = (("id", 60), ("name", 300), ("endpoint_url", 1000), ("account", 200), ("directory_organizations", 2000))


@router.get(PARTNERS)
def partners(request: Request) -> Response:
    return _partners_page(request, _admin(request), 200)


def _partners_page(request: Request, user: WebUser, status: int, *, errors: dict[str, str] | None = None,
                   entered: dict[str, str] | None = None, made: PartnerWithSecret | None = None,
                   message: str | None = None) -> Response:
    engine, zone = engine_of(request), _zone(request)
    dead, dead_total = list_deliveries(engine, user.principal, status="dead", limit=50)
    rows = [(p, _when(p.secret_rotated_at, zone)) for p in list_partners(engine, user.principal)]
    return page(request, "admin_partners.html", status, user=user, rows=rows, zone=zone.key, errors=errors or {},
                entered=entered or {}, made=made, message=message,
                dead=[(d, _when(d.updated_at, zone)) for d in dead], dead_total=dead_total)


@router.post(PARTNERS)
async def add_submit(request: Request) -> Response:
    user = _admin(request)
    form = await posted_form(request, user)
    entered = {key: _text(form, key, limit) for key, limit in FIELDS}
    organizations = [o for o in entered["directory_organizations"].replace(",", " ").split() if o]
    try:
        made = add_partner(engine_of(request), user.principal, entered["id"].strip(), entered["name"],
                           endpoint_url=entered["endpoint_url"].strip() or None,
                           account=entered["account"].strip() or None, directory_organizations=organizations)
    except ValidationFailed as refused:
        return _partners_page(request, user, 422, errors=_field_errors(refused, "id"), entered=entered)
    except Conflict as refused:
        return _partners_page(request, user, 409, entered=entered, message=refused.message)
    return _partners_page(request, user, 201, made=made)


@router.post(PARTNERS + "/{partner_id}/rotate-secret")
async def rotate_submit(request: Request, partner_id: PartnerId) -> Response:
    user = _admin(request)
    await posted_form(request, user)
    return _partners_page(request, user, 200, made=rotate_secret(engine_of(request), user.principal, partner_id))


@router.post(PARTNERS + "/{partner_id}/deactivate")
async def deactivate_submit(request: Request, partner_id: PartnerId) -> Response:
    user = _admin(request)
    await posted_form(request, user)
    deactivate_partner(engine_of(request), user.principal, partner_id)
    return redirect_saying(request, PARTNERS, f"{partner_id} was deactivated: nothing more is sent to it.")


@router.post(PARTNERS + "/deliveries/{delivery_id}/retry")
async def retry_submit(request: Request, delivery_id: DeliveryId) -> Response:
    user = _admin(request)
    await posted_form(request, user)
    retry_delivery(engine_of(request), user.principal, delivery_id)
    return redirect_saying(request, PARTNERS, f"Delivery {delivery_id} will be sent again.")
