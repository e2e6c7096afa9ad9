"""/api/audit: the audit trail (changes and record reads) for auditors and admins, as pages or a file."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from carepath.engine.audit import AuditFilter
from carepath.engine.audit_export import MEDIA_TYPES
from carepath.engine.usecases.audit import audit_events, export_audit

from ..deps import CurrentUser, EngineDep
from ..schemas import ERROR_RESPONSES, EXACT_TOTAL, AuditEventPage

router = APIRouter(prefix="/api/audit", tags=["audit"], responses=ERROR_RESPONSES)
INSTANT = "ISO 8601 with a UTC offset, e.g. 2026-11-30T17:00:00Z"
FromParam = Annotated[datetime | None, Query(alias="from", description=f"events at or after; {INSTANT}")]
ToParam = Annotated[datetime | None, Query(alias="to", description=f"events before; {INSTANT}")]


@router.get("/events", response_model=AuditEventPage)
def events(engine: EngineDep, principal: CurrentUser, patient_id: str | None = None,
           actor: Annotated[str | None, Query(alias="user", description="who acted or read")] = None,
           pathway: Annotated[str | None, Query(description="pathway key")] = None,
           event_type: Annotated[list[str] | None, Query(alias="type", description="event type (repeatable)")] = None,
           instance_id: str | None = None, since: FromParam = None, until: ToParam = None,
           order: Literal["newest", "oldest"] = "newest",
           limit: Annotated[int, Query(ge=1, le=1000)] = 50, offset: Annotated[int, Query(ge=0)] = 0,
           exact_total: Annotated[bool, Query(description=EXACT_TOTAL)] = False) -> AuditEventPage:
    """Every change and every read of a patient's record, filtered; `record_viewed` events answer "who
    viewed this patient's record?"."""
    filters = AuditFilter(patient_id=patient_id, actor=actor, pathway=pathway, types=tuple(event_type or ()),
                          instance_id=instance_id, since=since, until=until, newest_first=order == "newest")
    page = audit_events(engine, principal, filters, limit=limit, offset=offset, exact_total=exact_total)
    return AuditEventPage.model_validate(page)


@router.get("/export", response_class=StreamingResponse,
            responses={200: {"description": "the events, oldest first, streamed",
                             "content": {media: {} for media in MEDIA_TYPES.values()}}})
def export(request: Request, engine: EngineDep, user: CurrentUser,
           fmt: Annotated[Literal["csv", "jsonl", "fhir"], Query(alias="format")] = "jsonl",
           since: FromParam = None, until: ToParam = None, instance_id: str | None = None) -> StreamingResponse:
    """The audit trail as CSV, JSON Lines or FHIR R4 AuditEvent NDJSON (Bulk Data), streamed as it is
    read, oldest first."""
    filters = AuditFilter(instance_id=instance_id, since=since, until=until, newest_first=False)
    chunks = export_audit(engine, user, filters, fmt, observer=str(request.base_url))
    extension = {"csv": "csv", "jsonl": "jsonl", "fhir": "ndjson"}[fmt]
    return StreamingResponse(chunks, media_type=MEDIA_TYPES[fmt], headers={
        "Content-Disposition": f'attachment; filename="carepath-audit.{extension}"'})
