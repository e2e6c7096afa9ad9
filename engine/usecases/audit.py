"""The audit trail for auditors and admins: a page of events, or all of them as a file."""

from __future__ import annotations

from collections.abc import Iterator

from ..application import CarePath
from ..audit import AuditFilter, list_audit_events, stream_audit_records
from ..audit_export import FORMATS, export_chunks
from ..errors import Problem, ValidationFailed
from ..identity import Principal, Role, require_role
from ..queries import Page

EXPORT_BATCH = 1000


def audit_events(app: CarePath, principal: Principal, filters: AuditFilter, *, limit: int = 50, offset: int = 0,
                 exact_total: bool = False) -> Page:
    require_role(principal, Role.AUDITOR, action="Reading the audit trail")
    _check_window(filters)
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
