"""The social-needs figures of the compliance report on the web (`/app/compliance/social-needs`): the page
of `GET /api/reports/social-needs` (engine/usecases/sdoh_figures.py), for the same readers and period."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from carepath.engine.errors import ValidationFailed
from carepath.engine.usecases.periods import report_period
from carepath.engine.usecases.sdoh_figures import PATHWAY, social_needs_figures

from .cookies import engine_of
from .pages import page, require_user
from .search_values import MAX_TEXT, day_value, field_errors, text_value

router = APIRouter(include_in_schema=False)
Day = Annotated[str | None, Query(max_length=MAX_TEXT)]


@router.get("/app/compliance/social-needs")
def social_needs(request: Request, from_: Annotated[str | None, Query(alias="from", max_length=MAX_TEXT)] = None,
                 to: Day = None) -> Response:
    user = require_user(request)
    engine = engine_of(request)
    asked = {"from": text_value(from_), "to": text_value(to)}
    try:
        start, end = report_period(engine, PATHWAY, day_value("from", asked["from"]), day_value("to", asked["to"]))
        figures = social_needs_figures(engine, user.principal, start, end)
    except ValidationFailed as refused:
        return page(request, "social_needs.html", 422, user=user, asked=asked, figures=None,
                    errors=field_errors(refused))
    return page(request, "social_needs.html", user=user, asked=asked, figures=figures, errors={})
