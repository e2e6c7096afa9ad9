"""Episodes for auditors (and anyone who may read them): find them, open one, its diagram with the path it
took, its printable report.

Every page reads through the use cases the JSON API calls (`list_instances`, `get_instance_view`,
`get_instance_history`, `instance_measures`, `instance_diagram`, `instance_report`), so visibility is the
engine's: an episode the user may not read is "not found". The episode page records one read of the
patient's record per view (`record_access`), its diagram none (it is part of that page).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, Response

from carepath.engine.application import CarePath
from carepath.engine.errors import DiagramInvalid, ValidationFailed
from carepath.engine.identity import Principal, instance_scope
from carepath.engine.labels import event_details, event_label, labelled_values, schema_titles
from carepath.engine.measures import MeasureResult, MeasureStatus
from carepath.engine.model import InstanceStatus
from carepath.engine.queries import Page, list_instances, list_pathways, pathway_versions
from carepath.engine.render import STYLE as DIAGRAM_STYLE
from carepath.engine.usecases.access import record_access
from carepath.engine.usecases.audit import reads_audit_trail
from carepath.engine.usecases.diagrams import instance_diagram
from carepath.engine.usecases.instance_report import STYLE as REPORT_STYLE
from carepath.engine.usecases.instance_report import instance_report
from carepath.engine.usecases.instances import get_instance_history, get_instance_view, retry_instance
from carepath.engine.usecases.measures import instance_measures
from carepath.engine.usecases.patient_records import patient_of_instance
from carepath.engine.usecases.periods import report_period

from .cookies import client_of, engine_of
from .flash import redirect_saying
from .headers import policy_allowing_styles
from .pages import page, posted_form, require_user
from .search_values import (
    MAX_TEXT,
    PAGE_ROWS,
    OffsetQuery,
    Paging,
    TextQuery,
    choice_value,
    day_value,
    field_errors,
    kept_query,
    local_time,
    text_value,
)

router = APIRouter(include_in_schema=False)
EPISODES = "/app/episodes"
InstancePath = Annotated[str, PathParam(min_length=1, max_length=MAX_TEXT)]
# The report and the diagram are the API's own self-contained drawings, with their fixed style blocks.
REPORT_POLICY = policy_allowing_styles(REPORT_STYLE, DIAGRAM_STYLE)
DIAGRAM_POLICY = policy_allowing_styles(DIAGRAM_STYLE)


@router.get(EPISODES)
def find_episodes(request: Request, patient_id: TextQuery = None, business_key: TextQuery = None,
                  pathway: TextQuery = None, status: TextQuery = None, started_from: TextQuery = None,
                  started_to: TextQuery = None, offset: OffsetQuery = 0) -> Response:
    user = require_user(request)
    engine = engine_of(request)
    asked = {"patient_id": text_value(patient_id), "business_key": text_value(business_key),
             "pathway": text_value(pathway), "status": text_value(status),
             "started_from": text_value(started_from), "started_to": text_value(started_to)}
    with engine.db.read() as session:
        pathways = [p.key for p in list_pathways(session)]
    context = {"user": user, "asked": asked, "pathways": pathways, "statuses": [s.value for s in InstanceStatus],
               "zone": engine.time_context().tz.key, "when": local_time(engine.time_context().tz)}
    try:
        found = _find(engine, user.principal, asked, offset)
    except ValidationFailed as refused:  # the form again, the error beside its field
        return page(request, "episodes.html", 422, errors=field_errors(refused), episodes=[], **context)
    return page(request, "episodes.html", episodes=found.items, errors={}, **context, paging=Paging(
        offset, len(found.items), found.total, found.total_exact, kept_query(asked), EPISODES))


def _find(engine: CarePath, principal: Principal, asked: dict[str, str | None], offset: int) -> Page:
    status = choice_value("status", asked["status"], InstanceStatus)
    since, until = report_period(engine, asked["pathway"], day_value("started_from", asked["started_from"]),
                                 day_value("started_to", asked["started_to"]), ("started_from", "started_to"))
    with engine.db.read() as session:
        return list_instances(session, status=status, pathway=asked["pathway"], patient_id=asked["patient_id"],
                              business_key=asked["business_key"], visible_to=instance_scope(principal),
                              started_from=since, started_before=until, limit=PAGE_ROWS, offset=offset)


@dataclass(frozen=True)
class MeasureRow:
    result: MeasureResult
    late_by: str | None  # a missed measure: how long after its deadline it was met (or is, still unmet)


@dataclass(frozen=True)
class HistoryRow:
    id: int
    at: datetime
    actor: str
    type: str  # the recorded name, kept in the page's title attribute
    label: str  # the type in words
    task_id: str | None
    changed: str | None  # "Field: old → new" when the event records a changed value
    details: list[tuple[str, str]]


@router.get(EPISODES + "/{instance_id}")
def episode(request: Request, instance_id: InstancePath, offset: OffsetQuery = 0) -> Response:
    user = require_user(request)
    engine = engine_of(request)
    view = get_instance_view(engine, instance_id, user.principal)  # NotFound: the 404 page
    history = get_instance_history(engine, instance_id, user.principal, limit=PAGE_ROWS, offset=offset)
    # The start data is the first event's; a later page of the history reads that one event again.
    start = history.items[:1] if offset == 0 else get_instance_history(engine, instance_id, user.principal,
                                                                       limit=1).items
    measures = instance_measures(engine, instance_id, user.principal)
    record_access(engine, user.principal, "instance", instance_id, client=client_of(request))
    now, zone = engine.now(), engine.time_context().tz
    paging = Paging(offset, len(history.items), history.total, history.total_exact, {},
                    f"{EPISODES}/{instance_id}")
    start_data = start[0].data.get("data") if start and start[0].type == "instance_started" else None
    titles = _start_titles(engine, view.pathway_key, view.version)
    return page(request, "episode.html", user=user, episode=view, patient=patient_of_instance(engine, instance_id),
                tasks=history.tasks, paging=paging,
                history=[_history_row(e, zone) for e in history.items],
                start_data=labelled_values(start_data or {}, zone, titles),
                measures=[MeasureRow(m, _late_by(m, now)) for m in measures], zone=zone.key,
                reads_audit_trail=reads_audit_trail(user.principal),
                when=local_time(zone), span=span_words)


@router.post(EPISODES + "/{instance_id}/retry")
async def episode_retry(request: Request, instance_id: InstancePath) -> Response:
    """Run the failed step of an episode in incident again, as `POST /api/instances/{id}/retry` does."""
    user = require_user(request)
    await posted_form(request, user)
    view = retry_instance(engine_of(request), user.principal, instance_id)
    said = ("The failed step was run again: the episode goes on." if view.incident is None
            else "The step failed again: " + str(view.incident.get("message") or "see the problem below."))
    return redirect_saying(request, f"{EPISODES}/{instance_id}", said)


@router.get(EPISODES + "/{instance_id}/diagram.svg")
def episode_diagram(request: Request, instance_id: InstancePath) -> Response:
    """The episode's diagram with its path, for the episode page (whose view is the one recorded read)."""
    user = require_user(request)
    try:
        svg = instance_diagram(engine_of(request), user.principal, instance_id)
    except DiagramInvalid as exc:  # a pathway uploaded without a layout: the page still stands, with words
        svg = _no_picture(exc.message)
    return Response(svg, media_type="image/svg+xml", headers={"Content-Security-Policy": DIAGRAM_POLICY})


@router.get(EPISODES + "/{instance_id}/report")
def episode_report(request: Request, instance_id: InstancePath) -> Response:
    """The API's printable report (GET /api/instances/{id}/report.html), reached with the session cookie;
    recorded as a read of the report, as the API records it."""
    user = require_user(request)
    engine = engine_of(request)
    report = instance_report(engine, user.principal, instance_id)
    record_access(engine, user.principal, "report", instance_id, client=client_of(request))
    return HTMLResponse(report, headers={"Content-Security-Policy": REPORT_POLICY})


def _no_picture(message: str) -> str:
    return ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 960 40" width="960" height="40" role="img">'
            f'<text x="8" y="24" font-family="sans-serif" font-size="14" fill="#1b1b1f">{escape(message)}</text>'
            "</svg>\n")


def _late_by(result: MeasureResult, now: datetime) -> str | None:
    if result.status is not MeasureStatus.NOT_MET or result.deadline is None:
        return None
    late = (result.met_at or now) - result.deadline
    return span_words(late.total_seconds()) if late > timedelta(0) else None


def _start_titles(engine: CarePath, key: str, version: int) -> dict[str, str]:
    """The start form's field titles of the episode's pathway version (its sidecar's start schema)."""
    with engine.db.read() as session:
        schema = next((v.start_data for v in pathway_versions(session, key) if v.version == version), None)
    return schema_titles(schema)


def _history_row(event: Any, zone: ZoneInfo) -> HistoryRow:
    changed, details = event_details(event.data, zone)
    return HistoryRow(event.id, event.at, event.actor, event.type, event_label(event.type), event.task_id, changed,
                      details)


def span_words(seconds: float | None) -> str:
    """A duration as people say it: "2 d 3 h", "3 h 05 min", "12 min"."""
    if seconds is None:
        return "—"
    minutes = int(seconds // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {mins:02d} min" if hours else f"{mins} min"
