"""The audit trail's read side: every event (state changes and record views), filtered for auditors.

Both the paged list and the export read the `events` table, joined to `instances` for the patient and
the pathway. Filters on an instance or a patient walk `ix_events_instance_id_id`; the others walk the
primary key in the order asked for and stop after the page (see docs/audit.md for their cost).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from .bounds import shown
from .model import RECORD_VIEWED
from .patient_links import linked_patient_ids
from .persistence.tables import Event, Instance, PathwayVersion
from .queries import Page, _page, version_numbers

__all__ = ["RECORD_VIEWED", "VIEWABLE", "AuditFilter", "AuditRecord", "list_audit_events",
           "stream_audit_records", "utc_instant"]
VIEWABLE = ("instance", "task", "form", "history", "measures", "comments", "report", "diagram", "case",
            "referral")


@dataclass(frozen=True)
class AuditFilter:
    patient_id: str | None = None
    actor: str | None = None
    pathway: str | None = None
    types: tuple[str, ...] = ()
    instance_id: str | None = None
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    newest_first: bool = True


@dataclass(frozen=True)
class AuditRecord:
    """One event with the patient and pathway it concerns (from its instance, or its pathway version)."""

    id: int
    at: datetime
    type: str
    actor: str
    instance_id: str | None
    patient_id: str | None
    pathway: str | None
    task_id: str | None
    data: dict[str, Any]
    pathway_version: int | None = None  # the number of the event's pathway version (events.pathway_version_id)


def utc_instant(at: datetime) -> str:
    """A FHIR instant: UTC, with the offset written Z."""
    return at.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _filtered(session: Session, query: Select[Any], f: AuditFilter) -> Select[Any]:
    # Patient and pathway select the instances first (their indexes), then the events of those instances
    # (ix_events_instance_id_id), rather than joining every event to its instance.
    if f.instance_id is not None:
        query = query.where(Event.instance_id == f.instance_id)
    if f.patient_id is not None:  # and the patients merged with theirs (engine/patient_links.py)
        patients = linked_patient_ids(session, f.patient_id)
        query = query.where(Event.instance_id.in_(select(Instance.id).where(Instance.patient_id.in_(patients))))
    if f.pathway is not None:
        versions = select(PathwayVersion.id).where(PathwayVersion.key == f.pathway)
        query = query.where(Event.instance_id.in_(select(Instance.id).where(Instance.pathway_key == f.pathway))
                            | Event.pathway_version_id.in_(versions) & Event.instance_id.is_(None))
    if f.actor is not None:
        query = query.where(Event.actor == f.actor)
    if f.types:
        query = query.where(Event.type.in_(f.types))
    if f.since is not None:
        query = query.where(Event.at >= f.since)
    if f.until is not None:
        query = query.where(Event.at < f.until)
    return query


def _order(f: AuditFilter) -> list[Any]:
    return [Event.id.desc() if f.newest_first else Event.id]


def list_audit_events(session: Session, f: AuditFilter, *, limit: int = 50, offset: int = 0,
                      exact_total: bool = False) -> Page:
    """A page of events, totals capped as other lists are."""
    rows, total, exact = _page(session, _filtered(session, select(Event), f), _order(f), limit, offset, exact_total)
    context = _instance_context(session, {r.instance_id for r in rows if r.instance_id})
    versions = version_numbers(session, {r.pathway_version_id for r in rows if r.pathway_version_id})
    items = [_record(r, context.get(r.instance_id or ""), versions.get(r.pathway_version_id or 0)) for r in rows]
    return Page(items, total, limit, offset, exact)


def _record(row: Event, instance: tuple[str | None, str] | None, version: tuple[str, int] | None) -> AuditRecord:
    patient_id, pathway = instance if instance else (None, version[0] if version else None)
    return AuditRecord(id=row.id, at=row.at, type=row.type, actor=row.actor, instance_id=row.instance_id,
                       patient_id=patient_id, pathway=pathway, task_id=row.task_id, data=shown(row.data),
                       pathway_version=version[1] if version else None)


def _instance_context(session: Session, ids: set[str]) -> dict[str, tuple[str | None, str]]:
    if not ids:
        return {}
    rows = session.execute(select(Instance.id, Instance.patient_id, Instance.pathway_key).where(Instance.id.in_(ids)))
    return {row.id: (row.patient_id, row.pathway_key) for row in rows}


def stream_audit_records(session: Session, f: AuditFilter, batch: int = 1000) -> Iterator[AuditRecord]:
    """Every matching event in id order, read `batch` rows at a time (a server-side cursor on
    PostgreSQL), so memory stays constant however many there are."""
    columns = select(Event.id, Event.at, Event.type, Event.actor, Event.instance_id, Instance.patient_id,
                     func.coalesce(Instance.pathway_key, PathwayVersion.key), Event.task_id, Event.data,
                     PathwayVersion.version)
    query = _filtered(session, columns, f)
    query = (query.outerjoin(Instance, Instance.id == Event.instance_id)
             .outerjoin(PathwayVersion, PathwayVersion.id == Event.pathway_version_id)
             .order_by(*_order(f)))
    result = session.execute(query.execution_options(yield_per=batch))
    for row in result:
        record = AuditRecord(*row)
        yield replace(record, data=shown(record.data))
