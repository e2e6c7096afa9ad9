"""The clinical lead's pages: pathways and their versions, uploading a package, a version's page (diagram,
lanes and groups, forms, timers, deadlines and measures), its source and diagram, retiring it.

Reading is open to whoever the API's pathway routes let read (any signed-in user); deploying and retiring
go through the engine's use cases, which check the role (`rules.VERSION_RULES`); the pages ask the
same rule which buttons to offer.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import Response

from carepath.engine.calendars import deadline_words
from carepath.engine.errors import DiagramInvalid, NotFound, PayloadTooLarge
from carepath.engine.labels import schema_titles, value_words
from carepath.engine.queries import all_pathway_versions, pathway_versions, running_per_version
from carepath.engine.rules import INSTANCE_RULES, VERSION_RULES, check_role, may_take
from carepath.engine.usecases.deploy import deploy_pathways, retire_version
from carepath.engine.usecases.diagrams import pathway_diagram
from carepath.engine.usecases.pathway_outline import version_outline
from carepath.engine.usecases.users import known_groups
from carepath.engine.views import PathwayVersionView

from ..attachments import pathway_source_response
from ..params import VersionPath
from ..uploads import read_uploads, size_in_words
from .cookies import WebUser, engine_of, settings_of
from .flash import redirect_saying
from .pages import page, posted_form, require_user
from .pathway_upload import COMPANION_TYPES, COMPANIONS_FIELD, DIAGRAM_FIELD, DIAGRAM_TYPES, refusal, uploaded_files

router = APIRouter(include_in_schema=False)
PATHWAYS = "/app/pathways"
UPLOAD = f"{PATHWAYS}/upload"
Key = Annotated[str, PathParam(min_length=1, max_length=255)]


def _authors(user: WebUser) -> bool:
    return may_take(VERSION_RULES["deploy"], user.principal)


def pathway_url(key: str) -> str:
    """The pathway's page; the key is a BPMN id from an upload, so it is quoted for the path."""
    return f"{PATHWAYS}/{quote(key, safe='')}"


def version_url(key: str, version: int) -> str:
    return f"{pathway_url(key)}/versions/{version}"


URLS: dict[str, Any] = {"pathway_url": pathway_url, "version_url": version_url}


def _times(request: Request) -> dict[str, Any]:
    """What the templates need to show times in the care setting's zone, and to say which zone."""
    zone = engine_of(request).time_context().tz

    def local_time(moment: datetime) -> str:
        return moment.astimezone(zone).strftime("%a %d %b %Y %H:%M")

    return {"local_time": local_time, "zone": zone.key}


@router.get(PATHWAYS)
def pathway_list(request: Request) -> Response:
    user = require_user(request)
    with engine_of(request).db.read() as session:
        versions = all_pathway_versions(session)
        running = running_per_version(session)
    by_key: dict[str, list[PathwayVersionView]] = defaultdict(list)
    for version in versions:
        by_key[version.key].append(version)
    return page(request, "pathways.html", user=user, pathways=dict(by_key), running=running,
                may_author=_authors(user), **URLS, **_times(request))


def _upload_page(request: Request, user: WebUser, status: int = 200, **context: object) -> Response:
    limit = size_in_words(settings_of(request).max_upload_bytes)
    return page(request, "pathway_upload.html", status, user=user, limit=limit, diagram_field=DIAGRAM_FIELD,
                companions_field=COMPANIONS_FIELD, diagram_types=DIAGRAM_TYPES, companion_types=COMPANION_TYPES,
                **context)


@router.get(UPLOAD)
def upload_form(request: Request) -> Response:
    user = require_user(request)
    check_role(VERSION_RULES["deploy"], user.principal)
    return _upload_page(request, user)


@router.post(UPLOAD)
async def upload_submit(request: Request) -> Response:
    user = require_user(request)
    form = await posted_form(request, user)
    check_role(VERSION_RULES["deploy"], user.principal)
    engine = engine_of(request)
    chosen = uploaded_files(form)
    if not chosen:
        return _upload_page(request, user, 422, field_error="Choose the pathway's diagram, a .bpmn file.")
    try:
        sources = read_uploads(chosen, settings_of(request).max_upload_bytes)
    except PayloadTooLarge as too_large:
        return _upload_page(request, user, 413, field_error=f"{too_large.message}. Nothing was stored.")
    try:
        result = deploy_pathways(engine, user.principal, sources, known_groups(engine))
    except DiagramInvalid as refused:
        return _upload_page(request, user, 422, refusal=refusal(refused, sources), uploaded=sources)
    created = any(p.created for p in result.processes)
    return page(request, "pathway_deployed.html", 201 if created else 200, user=user, result=result, **URLS)


@router.get(PATHWAYS + "/{key}")
def pathway_page(request: Request, key: Key) -> Response:
    user = require_user(request)
    with engine_of(request).db.read() as session:
        versions = pathway_versions(session, key)
    if not versions:
        raise NotFound(f"pathway '{key}' is not deployed")
    current = [v for v in versions if not v.retired]
    return _version_page(request, user, key, (current or versions)[-1].version)


@router.get(PATHWAYS + "/{key}/versions/{version}")
def version_page(request: Request, key: Key, version: VersionPath) -> Response:
    return _version_page(request, require_user(request), key, version)


def _version_page(request: Request, user: WebUser, key: str, version: int) -> Response:
    engine = engine_of(request)
    outline = version_outline(engine, key, version)
    with engine.db.read() as session:
        versions = pathway_versions(session, key)
        running = running_per_version(session, key)
    return page(request, "pathway_version.html", user=user, outline=outline, v=outline.version,
                versions=versions, running=running, may_author=_authors(user), **URLS,
                may_start=may_take(INSTANCE_RULES["start"], user.principal), **_times(request),
                may_migrate=may_take(INSTANCE_RULES["migrate"], user.principal),
                when_due=lambda text: value_words(deadline_words(str(text), schema_titles(outline.version.start_data)),
                                                  engine.time_context().tz))


@router.get(PATHWAYS + "/{key}/versions/{version}/diagram.svg")
def version_diagram(request: Request, key: Key, version: VersionPath) -> Response:
    user = require_user(request)
    svg = pathway_diagram(engine_of(request), user.principal, key, version)
    return Response(svg, media_type="image/svg+xml")


@router.get(PATHWAYS + "/{key}/versions/{version}/source")
def version_source(request: Request, key: Key, version: VersionPath) -> Response:
    require_user(request)
    return pathway_source_response(engine_of(request), key, version, "attachment")


@router.get(PATHWAYS + "/{key}/versions/{version}/retire")
def retire_confirm(request: Request, key: Key, version: VersionPath) -> Response:
    user = require_user(request)
    check_role(VERSION_RULES["retire"], user.principal)
    outline = version_outline(engine_of(request), key, version)
    return page(request, "pathway_retire.html", user=user, v=outline.version, running=outline.running, **URLS)


@router.post(PATHWAYS + "/{key}/versions/{version}/retire")
async def retire_submit(request: Request, key: Key, version: VersionPath) -> Response:
    user = require_user(request)
    await posted_form(request, user)
    retire_version(engine_of(request), user.principal, key, version)
    return redirect_saying(request, version_url(key, version), f"Version {version} of {key} was retired.")
