"""/app/about: the version, the care setting's time zone and where the API is described. It shows nothing
about patients or users, like /docs, so it needs no sign-in."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from carepath.engine.application import CarePath

from .assets import templates

router = APIRouter(include_in_schema=False)


@router.get("/app/about", response_class=HTMLResponse)
def about(request: Request) -> HTMLResponse:
    engine: CarePath = request.app.state.engine
    context = engine.config.calendars.context()
    return templates.TemplateResponse(request, "about.html", {
        "version": request.app.version, "time_zone": context.tz.key, "calendar": context.calendar.name})
