"""/api/audit: the audit trail (changes and record reads) for auditors and admins, as pages or a file."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from carepath.engine.audit import AuditFilter
from carepath.engine.audit_export import MEDIA_TYPES
from carepath.engine.usecases.audit import audit_events, export_audit
from carepath.engine.usecases.periods import period_in_utc

from ..attachments import content_disposition
from ..deps import ClientDep, CurrentUser, EngineDep
from ..params import INSTANT_OR_DAY, InstantOrDay, OffsetParam
from ..schemas import ERROR_RESPONSES, EXACT_TOTAL, AuditEventPage, errors

router = APIRouter(prefix="/api/audit", tags=["audit"], responses=ERROR_RESPONSES)


def audit_filter(engine: EngineDep,
                 patient_id: Annotated[str | None, Query(description="the patient's events")] = None,
                 actor: Annotated[str | None, Query(alias="user", description="who acted or read")] = None,
                 pathway: Annotated[str | None, Query(description="pathway key")] = None,
                 event_type: Annotated[list[str] | None, Query(alias="type",
                                                               description="event type (repeatable)")] = None,
                 instance_id: Annotated[str | None, Query(description="one instance's events")] = None,
                 since: Annotated[InstantOrDay, Query(alias="from", description=f"events at or after; "
                                                                                f"{INSTANT_OR_DAY}")] = None,
                 until: Annotated[InstantOrDay, Query(alias="to", description=f"events before; {INSTANT_OR_DAY} "
                                                                              "(the day included)")] = None,
                 ) -> AuditFilter:
    """The filters of the list and the export, one set for both."""
    since, until = period_in_utc(engine, pathway, since, until)
    return AuditFilter(patient_id=patient_id, actor=actor, pathway=pathway, types=tuple(event_type or ()),
                       instance_id=instance_id, since=since, until=until)


FilterDep = Annotated[AuditFilter, Depends(audit_filter)]


@router.get("/events", response_model=AuditEventPage, responses=errors(422))
def events(engine: EngineDep, principal: CurrentUser, client: ClientDep, filters: FilterDep,
           order: Literal["newest", "oldest"] = "newest",
           limit: Annotated[int, Query(ge=1, le=1000)] = 50, offset: OffsetParam = 0,
           exact_total: Annotated[bool, Query(description=EXACT_TOTAL)] = False) -> AuditEventPage:
    """Every change and every read of a patient's record, filtered; `record_viewed` events answer "who
    viewed this patient's record?"."""
    filters = replace(filters, newest_first=order == "newest")
    page = audit_events(engine, principal, filters, limit=limit, offset=offset, exact_total=exact_total,
                        client=client)
    return AuditEventPage.model_validate(page)


@router.get("/export", response_class=StreamingResponse,
            responses={200: {"description": "the events, oldest first, streamed",
                             "content": {media: {} for media in MEDIA_TYPES.values()}},
                       **errors(401, 403, 422, json=False)})
def export(request: Request, engine: EngineDep, user: CurrentUser, client: ClientDep, filters: FilterDep,
           fmt: Annotated[Literal["csv", "jsonl", "fhir"], Query(alias="format")] = "jsonl") -> StreamingResponse:
    """The audit trail as CSV, JSON Lines or FHIR R4 AuditEvent NDJSON (Bulk Data), streamed as it is
    read, oldest first; the same filters as /api/audit/events, all checked before the first byte."""
    chunks = export_audit(engine, user, replace(filters, newest_first=False), fmt, observer=str(request.base_url),
                          client=client)
    extension = {"csv": "csv", "jsonl": "jsonl", "fhir": "ndjson"}[fmt]
    return StreamingResponse(chunks, media_type=MEDIA_TYPES[fmt], headers={
        "Content-Disposition": content_disposition("attachment", f"carepath-audit.{extension}")})
