"""The resource directory in the web app: `/app/resources` searches it (GET /api/resources' filters: need,
ZIP code served, words, language, open now). A page of its own without JavaScript (a service's id to type
into a task's field); with htmx, the results alone, each with a button choosing its service for the task
field that asked (`directory-field`), and `/app/resources/{id}/card` the chosen service as that field shows
it (name, organization, address, phone, hours).

The parameters carry a `directory-` prefix: the search sits inside a task's form, whose own fields keep
their names. Who may search is the API's rule (rules.check_directory_reader).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import Response

from carepath.engine.application import CarePath
from carepath.engine.directory import DOMAINS
from carepath.engine.errors import NotFound, ValidationFailed
from carepath.engine.resource_queries import (
    MAX_SERVICE_ID,
    ResourceFilters,
    ResourceView,
    resource_detail,
    search_resources,
)
from carepath.engine.rules import check_directory_reader

from .cookies import engine_of
from .forms import FIELD_PREFIX, FormField
from .pages import page, require_user

router = APIRouter(include_in_schema=False)
RESOURCES = "/app/resources"
RESULTS = 20


def _text(name: str, limit: int) -> object:
    return Query(alias=f"directory-{name}", max_length=limit)


@router.get(RESOURCES)
def resources(request: Request, domain: Annotated[str | None, _text("domain", 50)] = None,
              zip: Annotated[str | None, _text("zip", 20)] = None, q: Annotated[str | None, _text("q", 200)] = None,
              language: Annotated[str | None, _text("language", 50)] = None,
              open_now: Annotated[str | None, _text("open_now", 10)] = None,
              field: Annotated[str | None, _text("field", 100)] = None) -> Response:
    user = require_user(request)
    check_directory_reader(user.principal)
    engine = engine_of(request)
    filters = ResourceFilters(domain=(domain or "").strip() or None, zip=(zip or "").strip() or None,
                              q=(q or "").strip() or None, language=(language or "").strip() or None,
                              open_now=bool(open_now))
    error, found = None, None
    try:
        with engine.db.read() as session:
            found = search_resources(session, filters, now=engine.now(), zone=engine.time_context().tz,
                                     limit=RESULTS)
    except ValidationFailed as refused:
        error = refused.message
    fragment = request.headers.get("hx-request") == "true"
    return page(request, "_resource_results.html" if fragment else "resources.html", 200 if not error else 422,
                user=user, found=found, error=error, asked=filters, domains=DOMAINS,
                field=field if fragment and field else None, field_id=FIELD_PREFIX + (field or ""))


@router.get(RESOURCES + "/{service_id}/card")
def chosen_card(request: Request, service_id: Annotated[str, PathParam(min_length=1, max_length=MAX_SERVICE_ID)],
                field: Annotated[str, Query(min_length=1, max_length=100)]) -> Response:
    """The chosen service as the task field shows it under its input (htmx swaps it in)."""
    user = require_user(request)
    check_directory_reader(user.principal)
    engine = engine_of(request)
    with engine.db.read() as session:
        view = resource_detail(session, service_id)  # NotFound: the 404 page
    return page(request, "_resource_chosen.html", user=user, service=view, field_id=FIELD_PREFIX + field)


def with_chosen_services(engine: CarePath, fields: list[FormField], domain: str | None = None) -> list[FormField]:
    """The form's resource fields with the service their value names (shown under the input), if any, and
    the need their search starts with (the task's `domain`)."""
    fields = [replace(f, domain=domain) if f.widget == "resource" else f for f in fields]
    wanted = [f for f in fields if f.widget == "resource" and f.value.strip()]
    if not wanted:
        return fields
    chosen: dict[str, ResourceView] = {}
    with engine.db.read() as session:
        for f in wanted:
            try:
                chosen[f.name] = resource_detail(session, f.value.strip()[:MAX_SERVICE_ID])
            except NotFound:
                continue
    return [replace(f, chosen=chosen[f.name]) if f.name in chosen else f for f in fields]
