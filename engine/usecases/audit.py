"""The audit trail for auditors and admins: a page of events, or all of them as a file."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from datetime import datetime

from ..application import CarePath
from ..audit import AuditFilter, list_audit_events, stream_audit_records
from ..audit_export import FORMATS, export_chunks
from ..errors import Problem, ValidationFailed
from ..identity import Principal, Role, require_role
from ..persistence.unit_of_work import UnitOfWork
from ..queries import Page

EXPORT_BATCH = 1000


def audit_events(app: CarePath, principal: Principal, filters: AuditFilter, *, limit: int = 50, offset: int = 0,
                 exact_total: bool = False) -> Page:
    require_role(principal, Role.AUDITOR, action="Reading the audit trail")
    _check_window(filters)
    _record_use(app, principal, "events", filters)
    with app.db.read() as session:
        return list_audit_events(session, filters, limit=limit, offset=offset, exact_total=exact_total)


def export_audit(app: CarePath, principal: Principal, filters: AuditFilter, fmt: str, *,
                 observer: str) -> Iterator[str]:
    """Checked now (role, format, window); the events are read only as the returned chunks are taken,
    in a read session held until the last one."""
    require_role(principal, Role.AUDITOR, action="Exporting the audit trail")
    if fmt not in FORMATS:
        message = f"format must be one of {', '.join(FORMATS)}"
        raise ValidationFailed(message, [Problem(message, field="format")])
    _check_window(filters)
    _record_use(app, principal, "export", filters, fmt)
    return _chunks(app, filters, fmt, observer)


def _chunks(app: CarePath, filters: AuditFilter, fmt: str, observer: str) -> Iterator[str]:
    with app.db.read() as session:
        yield from export_chunks(stream_audit_records(session, filters, EXPORT_BATCH), fmt, observer=observer)


def _check_window(filters: AuditFilter) -> None:
    for name, value in (("from", filters.since), ("to", filters.until)):
        if value is not None and value.tzinfo is None:
            message = f"{name} needs a UTC offset, e.g. 2026-11-30T17:00:00Z"
            raise ValidationFailed(message, [Problem(message, field=name)])
    if filters.since and filters.until and filters.since > filters.until:
        raise ValidationFailed("from is after to", [Problem("from is after to", field="from")])


def _record_use(app: CarePath, principal: Principal, what: str, filters: AuditFilter, fmt: str | None = None) -> None:
    """Reading the audit trail is itself recorded (DICOM "Audit Log Used"): who, when, what they asked."""
    asked = {key: (value.isoformat() if isinstance(value, datetime) else list(value) if isinstance(value, tuple)
                   else value)
             for key, value in asdict(filters).items() if value not in (None, ()) and key != "newest_first"}
    with UnitOfWork(app) as uow:
        uow.record("audit_log_used", principal.name, data={"what": what, "filters": asked,
                                                            **({"format": fmt} if fmt else {})})
        uow.commit()
