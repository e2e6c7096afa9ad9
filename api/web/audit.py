"""The auditor's screens: who viewed a patient's record, the compliance report with its charts and CSV,
the audit-trail search and export, and whether the history verifies.

Each reads through the use case the JSON API calls (`audit_events`, `export_audit`, `compliance_report`,
`verify_history`), so the roles and the recording of the audit trail's own use (`audit_log_used`) are the
engine's; the filters have the API's names (`/api/audit/events`, `/api/reports/compliance`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import Response, StreamingResponse

from carepath.engine.audit import RECORD_VIEWED, AuditFilter
from carepath.engine.audit_export import MEDIA_TYPES
from carepath.engine.errors import ValidationFailed
from carepath.engine.identity import require_role
from carepath.engine.labels import event_label, instants_in_words, labelled_values
from carepath.engine.model import EVENT_TYPES
from carepath.engine.queries import list_pathways
from carepath.engine.usecases.audit import audit_events, export_audit, require_audit_reader
from carepath.engine.usecases.periods import period_in_utc, report_period
from carepath.engine.usecases.reports import (
    MISSES_SCREEN,
    REPORT_ROLES,
    CompliancePage,
    compliance_page,
)
from carepath.engine.usecases.verify_history import check_history, latest_checkpoint

from ..attachments import content_disposition
from ..compliance_files import misses_csv_lines, report_csv
from .compliance_chart import chart_of
from .cookies import client_of, engine_of
from .pages import page, require_user
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
    with_query,
)

router = APIRouter(include_in_schema=False)
From = Annotated[str | None, Query(alias="from", max_length=MAX_TEXT)]
To = Annotated[str | None, Query(alias="to", max_length=MAX_TEXT)]
ExportFormat = Literal["csv", "jsonl", "fhir"]
EXTENSIONS = {"csv": "csv", "jsonl": "jsonl", "fhir": "ndjson"}


@router.get("/app/patients/{patient_id:path}/views")
def patient_views(request: Request, patient_id: Annotated[str, PathParam(max_length=MAX_TEXT)],
                  offset: OffsetQuery = 0) -> Response:
    """Who viewed this patient's record: the `record_viewed` events of the patient's episodes, newest first."""
    user = require_user(request)
    engine = engine_of(request)
    filters = AuditFilter(patient_id=patient_id, types=(RECORD_VIEWED,))
    found = audit_events(engine, user.principal, filters, limit=PAGE_ROWS, offset=offset, exact_total=True,
                         client=client_of(request))
    zone = engine.time_context().tz
    paging = Paging(offset, len(found.items), found.total, found.total_exact, {}, request.url.path)
    return page(request, "patient_views.html", user=user, patient_id=patient_id, views=found.items, paging=paging,
                zone=zone.key, when=local_time(zone))


def _audit_filter(request: Request, asked: dict[str, str | None]) -> AuditFilter:
    since, until = period_in_utc(engine_of(request), asked["pathway"], day_value("from", asked["from"]),
                                 day_value("to", asked["to"]))
    kind = choice_value("type", asked["type"], EVENT_TYPES)
    return AuditFilter(patient_id=asked["patient_id"], actor=asked["user"], pathway=asked["pathway"],
                       types=(kind,) if kind else (), instance_id=asked["instance_id"], since=since, until=until)


def _asked(patient_id: str | None, user: str | None, pathway: str | None, type: str | None,
           instance_id: str | None, from_: str | None, to: str | None) -> dict[str, str | None]:
    return {"patient_id": text_value(patient_id), "user": text_value(user), "pathway": text_value(pathway),
            "type": text_value(type), "instance_id": text_value(instance_id), "from": text_value(from_),
            "to": text_value(to)}


@router.get("/app/audit")
def audit_search(request: Request, patient_id: TextQuery = None, user: TextQuery = None, pathway: TextQuery = None,
                 type: TextQuery = None, instance_id: TextQuery = None, from_: From = None, to: To = None,
                 order: Literal["newest", "oldest"] = "newest", offset: OffsetQuery = 0) -> Response:
    signed_in = require_user(request)
    engine = engine_of(request)
    require_audit_reader(signed_in.principal)
    asked = _asked(patient_id, user, pathway, type, instance_id, from_, to)
    zone = engine.time_context().tz
    types = [(kind, event_label(kind)) for kind in sorted(EVENT_TYPES, key=event_label)]
    context = {"user": signed_in, "asked": asked, "order": order, "types": types,
               "pathways": _pathway_keys(request), "zone": zone.key, "when": local_time(zone),
               "details": lambda data: labelled_values(data, zone),
               "exports": {fmt: with_query("/app/audit/export", {**kept_query(asked), "format": fmt})
                           for fmt in EXTENSIONS}}
    try:
        filters = replace(_audit_filter(request, asked), newest_first=order == "newest")
        found = audit_events(engine, signed_in.principal, filters, limit=PAGE_ROWS, offset=offset,
                             client=client_of(request))
    except ValidationFailed as refused:  # the form again, the error beside its field
        return page(request, "audit.html", 422, events=[], errors=field_errors(refused), **context)
    paging = Paging(offset, len(found.items), found.total, found.total_exact, kept_query({**asked, "order": order}),
                    "/app/audit")
    return page(request, "audit.html", events=found.items, paging=paging, errors={}, **context)


@router.get("/app/audit/export")
def audit_export(request: Request, patient_id: TextQuery = None, user: TextQuery = None, pathway: TextQuery = None,
                 type: TextQuery = None, instance_id: TextQuery = None, from_: From = None, to: To = None,
                 format: ExportFormat = "csv") -> Response:
    """The API's export (GET /api/audit/export) with the session cookie: streamed, oldest first."""
    signed_in = require_user(request)
    filters = _audit_filter(request, _asked(patient_id, user, pathway, type, instance_id, from_, to))
    chunks = export_audit(engine_of(request), signed_in.principal, filters, format,
                          observer=str(request.base_url), client=client_of(request))
    return StreamingResponse(chunks, media_type=MEDIA_TYPES[format], headers={
        "Content-Disposition": content_disposition("attachment", f"carepath-audit.{EXTENSIONS[format]}")})


def _report(request: Request, asked: dict[str, str | None], *, misses_limit: int | None = None,
            misses_after: str | None = None) -> CompliancePage:
    user = require_user(request)
    engine = engine_of(request)
    start, end = report_period(engine, asked["pathway"], day_value("from", asked["from"]),
                               day_value("to", asked["to"]))
    return compliance_page(engine, user.principal, pathway=asked["pathway"], start=start, end=end,
                           group=asked["group"], misses_limit=misses_limit, misses_after=misses_after)


def _report_asked(pathway: str | None, from_: str | None, to: str | None,
                  group: str | None) -> dict[str, str | None]:
    return {"pathway": text_value(pathway), "from": text_value(from_), "to": text_value(to),
            "group": text_value(group)}


@router.get("/app/compliance")
def compliance(request: Request, pathway: TextQuery = None, from_: From = None, to: To = None,
               group: TextQuery = None, misses_after: TextQuery = None) -> Response:
    """The report with its misses a page at a time (MISSES_SCREEN; the misses CSV has them all)."""
    user = require_user(request)
    require_role(user.principal, *REPORT_ROLES, action="Reading compliance reports")
    asked = _report_asked(pathway, from_, to, group)
    kept = kept_query(asked)
    zone = engine_of(request).time_context().tz
    context = {"user": user, "asked": asked, "pathways": _pathway_keys(request), "zone": zone.key,
               "when": local_time(zone), "detail": lambda text: instants_in_words(text, zone),
               "csv_url": with_query("/app/compliance.csv", kept),
               "misses_url": with_query("/app/compliance.csv", {**kept, "lines": "misses"})}
    try:
        report = _report(request, asked, misses_limit=MISSES_SCREEN, misses_after=text_value(misses_after))
    except ValidationFailed as refused:  # the form again, the error beside its field
        return page(request, "compliance.html", 422, rows=[], errors=field_errors(refused), **context)
    following = (with_query("/app/compliance", {**kept, "misses_after": report.misses_next}) + "#misses"
                 if report.misses_next else None)
    return page(request, "compliance.html", rows=report.rows, chart=chart_of(report.rows), errors={},
                misses_total=report.misses_total, misses_next=following,
                misses_first_url=with_query("/app/compliance", kept) + "#misses" if misses_after else None,
                **context)


@router.get("/app/compliance.csv")
def compliance_csv(request: Request, pathway: TextQuery = None, from_: From = None, to: To = None,
                   group: TextQuery = None, lines: Literal["measures", "misses"] = "measures") -> Response:
    """The API's CSV (GET /api/reports/compliance?format=csv) with the session cookie."""
    asked = _report_asked(pathway, from_, to, group)
    if lines == "misses":  # every miss, streamed
        return StreamingResponse(misses_csv_lines(_report(request, asked).rows), media_type="text/csv",
                                 headers={"Content-Disposition": content_disposition("attachment", "misses.csv")})
    return Response(report_csv(_report(request, asked, misses_limit=0).rows), media_type="text/csv",
                    headers={"Content-Disposition": content_disposition("attachment", "compliance.csv")})


@router.get("/app/audit/verify")
def verify(request: Request, full: bool = False) -> Response:
    """Check every checkpoint and the events from the last checkpoint an earlier check found intact
    (engine/usecases/verify_history.check_history); `?full=true` (the page's button) every event, as
    `carepath audit verify` does, which on a long history takes as long as reading it."""
    user = require_user(request)
    engine = engine_of(request)
    result, checked = check_history(engine, user.principal, full=full)
    checkpoint = latest_checkpoint(engine)
    zone = engine.time_context().tz
    signed = bool(engine.config.audit_keyring())  # without a key only the hash chains can be checked
    return page(request, "audit_verify.html", user=user, result=result, checkpoint=checkpoint, signed=signed,
                checked=checked, checked_at=engine.now(), zone=zone.key, when=local_time(zone))


def _pathway_keys(request: Request) -> list[str]:
    with engine_of(request).db.read() as session:
        return [p.key for p in list_pathways(session)]
