"""Break-glass pages: `/app/break-glass` (ask for emergency access to a patient, see the access running
and end it) and `/app/audit/break-glass` (the auditors' review, where a running grant can be ended). The
rules are the engine's (engine/usecases/break_glass.py), as for `POST /api/break-glass` and
`GET /api/audit/break-glass`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from carepath.engine.errors import ValidationFailed
from carepath.engine.identity import instance_scope
from carepath.engine.queries import list_instances
from carepath.engine.usecases.break_glass import (
    DEFAULT_MINUTES,
    MAX_MINUTES,
    MAX_REASON,
    MIN_REASON,
    break_glass,
    end_grant,
    may_break_glass,
    my_grants,
    review_grants,
)

from .cookies import WebUser, client_of, engine_of
from .flash import redirect_saying
from .pages import page, posted_form, require_user, text_fields

router = APIRouter(include_in_schema=False)
PAGE = "/app/break-glass"
REVIEW = "/app/audit/break-glass"
GrantId = Annotated[int, Path(ge=1, le=2**31 - 1)]
EPISODES_SHOWN = 50


def _in_zone(zone: ZoneInfo) -> Callable[[datetime | None], str]:
    """How the pages show a time: in the care setting's zone (the page says which)."""
    return lambda when: when.astimezone(zone).strftime("%a %d %b %Y %H:%M") if when else "—"


def _form_page(request: Request, user: WebUser, status: int = 200, values: dict[str, str] | None = None,
               problems: dict[str, str] | None = None) -> Response:
    engine, principal = engine_of(request), user.principal  # with the grants running now (cookies.py)
    grants = my_grants(engine, principal)
    episodes = {}
    with engine.db.read() as session:  # a list: no read of a record is recorded until one is opened
        for grant in grants:
            episodes[grant.id] = list_instances(session, patient_id=grant.patient_id,
                                                visible_to=instance_scope(principal), limit=EPISODES_SHOWN).items
    zone = engine.time_context().tz
    return page(request, "break_glass.html", status, user=user, allowed=may_break_glass(user.principal),
                grants=grants, episodes=episodes, values=values or {"minutes": str(DEFAULT_MINUTES)},
                problems=problems or {}, shown=_in_zone(zone), zone=zone.key, max_minutes=MAX_MINUTES,
                min_reason=MIN_REASON, max_reason=MAX_REASON)


@router.get(PAGE)
def form(request: Request, patient_id: str | None = None) -> Response:
    user = require_user(request)
    values = {"minutes": str(DEFAULT_MINUTES), "patient_id": (patient_id or "")[:255]}
    return _form_page(request, user, values=values)


@router.post(PAGE)
async def submit(request: Request) -> Response:
    user = require_user(request)
    fields = text_fields(await posted_form(request, user))
    values = {name: fields.get(name, "") for name in ("patient_id", "reason", "minutes")}
    minutes = int(values["minutes"]) if values["minutes"].strip().isdigit() and len(values["minutes"]) < 6 else 0
    try:
        break_glass(engine_of(request), user.principal, values["patient_id"], values["reason"], minutes)
    except ValidationFailed as refused:
        problems = {p.field or "": p.message for p in refused.problems}
        return _form_page(request, user, 422, values, problems)
    said = f"Access to the records of patient {values['patient_id'].strip()} is open for {minutes} minutes."
    return redirect_saying(request, PAGE, said)


@router.post(PAGE + "/{grant_id}/end")
async def end(request: Request, grant_id: GrantId) -> Response:
    """End a grant early (the holder's page and the auditors' review offer it where the rule allows)."""
    user = require_user(request)
    fields = text_fields(await posted_form(request, user))
    end_grant(engine_of(request), user.principal, grant_id)
    return redirect_saying(request, REVIEW if fields.get("back") == "review" else PAGE,
                           "The emergency access was ended.")


@router.get(REVIEW)
def review(request: Request) -> Response:
    user = require_user(request)
    engine = engine_of(request)
    reviews = review_grants(engine, user.principal, client=client_of(request))
    zone = engine.time_context().tz
    return page(request, "break_glass_review.html", user=user, reviews=reviews, shown=_in_zone(zone), zone=zone.key)
