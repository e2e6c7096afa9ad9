"""The audit trail for auditors and admins: a page of events, or all of them as a file."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, replace
from datetime import datetime
from itertools import chain

from sqlalchemy import select

from ..application import CarePath
from ..audit import AuditFilter, list_audit_events, stream_audit_records
from ..audit_export import FORMATS, export_chunks
from ..clock import to_utc
from ..errors import Problem, ValidationFailed
from ..identity import Principal, Role, require_role
from ..model import EVENT_TYPES
from ..persistence.tables import Event
from ..persistence.unit_of_work import UnitOfWork
from ..queries import Page
from .access import Client, client_data

EXPORT_BATCH = 1000


AUDIT_READERS = (Role.AUDITOR,)  # and admins, as everywhere


def require_audit_reader(principal: Principal, action: str = "Reading the audit trail") -> None:
    """Auditors (and admins) read the audit trail and check its integrity; PermissionDenied for others."""
    require_role(principal, *AUDIT_READERS, action=action)


def reads_audit_trail(principal: Principal) -> bool:
    return principal.role is Role.ADMIN or principal.role in AUDIT_READERS


def audit_events(app: CarePath, principal: Principal, filters: AuditFilter, *, limit: int = 50, offset: int = 0,
                 exact_total: bool = False, client: Client | None = None) -> Page:
    require_audit_reader(principal)
    filters = _checked_window(filters)
    _check_types(app, filters)
    _record_use(app, principal, client, "events", filters)
    with app.db.report_read() as session:
        return list_audit_events(session, filters, limit=limit, offset=offset, exact_total=exact_total)


def export_audit(app: CarePath, principal: Principal, filters: AuditFilter, fmt: str, *,
                 observer: str, client: Client | None = None) -> Iterator[str]:
    """Checked now (role, format, window, its conversion to UTC), and the query run and its first row read,
    so that nothing can fail on the input once the first byte is sent; the other events are read as the
    returned chunks are taken, in a read session held until the last one."""
    require_audit_reader(principal, "Exporting the audit trail")
    if fmt not in FORMATS:
        message = f"format must be one of {', '.join(FORMATS)}"
        raise ValidationFailed(message, [Problem(message, field="format")])
    filters = _checked_window(filters)
    _check_types(app, filters)
    _record_use(app, principal, client, "export", filters, fmt)
    chunks = _chunks(app, filters, fmt, observer)
    first = next(chunks, None)  # the query has run: whatever the database makes of the filters is known here
    return iter(()) if first is None else _after(first, chunks)  # JSON Lines of no event: an empty file


def _after(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield first
    yield from rest  # closing this closes the read session


def _chunks(app: CarePath, filters: AuditFilter, fmt: str, observer: str) -> Iterator[str]:
    with app.db.report_read() as session:
        records = stream_audit_records(session, filters, EXPORT_BATCH)
        first = next(records, None)
        yield from export_chunks(records if first is None else chain([first], records), fmt, observer=observer)


def _checked_window(filters: AuditFilter) -> AuditFilter:
    """The filters with `from` and `to` in UTC; ValidationFailed naming the one without an offset, outside
    the calendar in UTC, or a `from` after the `to`."""
    since, until = (_utc(name, value) for name, value in (("from", filters.since), ("to", filters.until)))
    filters = replace(filters, since=since, until=until)
    if filters.since and filters.until and filters.since > filters.until:
        raise ValidationFailed("from is after to", [Problem("from is after to", field="from")])
    return filters


def _check_types(app: CarePath, filters: AuditFilter) -> None:
    """A `type` CarePath never records, and no row of the table has: ValidationFailed listing the known ones
    (a row of a type from an older version still matches)."""
    unknown = [t for t in filters.types if t not in EVENT_TYPES]
    if not unknown:
        return
    with app.db.read() as session:
        for name in unknown:
            if session.scalar(select(Event.id).where(Event.type == name).limit(1)) is None:
                message = f"type '{name}' is not an event type; known: {', '.join(sorted(EVENT_TYPES))}"
                raise ValidationFailed(message, [Problem(message, field="type")])


def _utc(name: str, value: datetime | None) -> datetime | None:
    try:
        return None if value is None else to_utc(value)
    except ValueError as error:
        message = f"{name} {error}"
        raise ValidationFailed(message, [Problem(message, field=name)]) from None


def _record_use(app: CarePath, principal: Principal, client: Client | None, what: str, filters: AuditFilter,
                fmt: str | None = None) -> None:
    """Reading the audit trail is itself recorded (DICOM "Audit Log Used"): who, when, from which client,
    what they asked."""
    asked = {key: (value.isoformat() if isinstance(value, datetime) else list(value) if isinstance(value, tuple)
                   else value)
             for key, value in asdict(filters).items() if value not in (None, ()) and key != "newest_first"}
    with UnitOfWork(app) as uow:
        uow.record("audit_log_used", principal.name, data={"what": what, "filters": asked,
                                                            **({"format": fmt} if fmt else {}),
                                                            "client": client_data(client)})
        uow.commit()
