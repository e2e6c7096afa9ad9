"""Searching the resource directory: SQL on the directory's tables (persistence/directory_tables.py).

`q` matches every word in the service's name, alternate name, description or organization name; `zip` a
postal code the service serves or is given at; `language` an ISO 639 code or a language name; `open_now`
the weekly open hours at the clock's moment, read in each schedule's UTC offset or else the care setting's
time zone. Inactive and defunct services are never found.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, exists, func, or_, select
from sqlalchemy.orm import Session

from .directory import DOMAINS
from .directory.hours import LocalMoment
from .errors import NotFound, ValidationFailed
from .model import ServiceStatus
from .persistence.directory_tables import (
    ResourceArea,
    ResourceDomain,
    ResourceHours,
    ResourceLanguage,
    ResourceLocation,
    ResourceOrganization,
    ResourceSchedule,
    ResourceService,
    ResourceTerm,
    ResourceZip,
)
from .queries import _page

HIDDEN_STATUSES = (ServiceStatus.INACTIVE.value, ServiceStatus.DEFUNCT.value)
MAX_SERVICE_ID = 100  # the column's length (persistence/directory_tables.py)
_ZIP = re.compile(r"^(\d{5})(?:-\d{4})?$")


@dataclass(frozen=True)
class ResourceFilters:
    domain: str | None = None
    zip: str | None = None
    q: str | None = None
    language: str | None = None
    open_now: bool = False


@dataclass
class ResourceView:
    id: str
    name: str
    status: str
    organization: str | None
    description: str | None
    phone: str | None
    url: str | None
    domains: list[str] = field(default_factory=list)
    languages: list[dict[str, str | None]] = field(default_factory=list)
    locations: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] | None = None  # only for one service: areas, schedules, terms, eligibility, ...


@dataclass(frozen=True)
class ResourcePage:
    items: list[ResourceView]
    total: int
    total_exact: bool  # false: more than `total` match (counted up to 100 or the end of the page)


def search_resources(session: Session, filters: ResourceFilters, *, now: datetime, zone: ZoneInfo,
                     limit: int = 20, offset: int = 0, exact_total: bool = False) -> ResourcePage:
    """A page in name order. The total is counted as the worklists count theirs (queries._page)."""
    query = select(ResourceService).where(*_conditions(session, filters, now, zone))
    services, total, exact = _page(session, query, [ResourceService.name, ResourceService.id], limit, offset,
                                   exact_total)
    return ResourcePage(_views(session, services), total, exact)


def is_active_service(session: Session, service_id: str) -> bool:
    """The id names a service of the directory that searches find (not inactive, not defunct)."""
    if not service_id or len(service_id) > MAX_SERVICE_ID:
        return False
    return session.scalar(select(ResourceService.id).where(
        ResourceService.id == service_id, ResourceService.status.not_in(HIDDEN_STATUSES))) is not None


def resource_detail(session: Session, service_id: str) -> ResourceView:
    service = session.get(ResourceService, service_id)
    if service is None:
        raise NotFound(f"resource {service_id} does not exist")
    (view,) = _views(session, [service])
    view.details = {
        "alternate_name": service.alternate_name, "email": service.email, "eligibility": service.eligibility,
        "application_process": service.application_process, "fees": service.fees,
        "source": service.source, "updated_at": service.updated_at,
        "service_areas": _children(session, ResourceArea, service_id, ("area_id", "name", "description")),
        "schedules": _children(session, ResourceSchedule, service_id, (
            "schedule_id", "location_id", "freq", "byday", "opens_at", "closes_at", "valid_from", "valid_to",
            "timezone", "description")),
        "taxonomy_terms": _children(session, ResourceTerm, service_id, ("term_id", "code", "name", "taxonomy"))}
    return view


def _conditions(session: Session, filters: ResourceFilters, now: datetime,
                zone: ZoneInfo) -> list[ColumnElement[bool]]:
    service_id = ResourceService.id
    found: list[ColumnElement[bool]] = [ResourceService.status.not_in(HIDDEN_STATUSES)]
    if filters.domain:
        if filters.domain not in DOMAINS:
            raise ValidationFailed(f"domain '{filters.domain}' is not one of {', '.join(DOMAINS)}")
        found.append(exists().where(ResourceDomain.service_id == service_id, ResourceDomain.domain == filters.domain))
    if filters.zip:
        wanted = filters.zip.strip()
        match = _ZIP.match(wanted)
        found.append(exists().where(ResourceZip.service_id == service_id,
                                    ResourceZip.postal_code == (match.group(1) if match else wanted)))
    if filters.language:
        wanted = filters.language.strip().lower()
        found.append(exists().where(ResourceLanguage.service_id == service_id, or_(
            ResourceLanguage.code == wanted, func.lower(ResourceLanguage.name) == wanted)))
    for word in (filters.q or "").lower().split()[:10]:
        escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        found.append(ResourceService.search_text.like(f"%{escaped}%", escape="\\"))
    if filters.open_now:
        found.append(_open_at(session, now, zone))
    return found


def _open_at(session: Session, now: datetime, zone: ZoneInfo) -> ColumnElement[bool]:
    """Open hours hold at `now`: the hours without an offset read in the care setting's zone, the others each
    in their own offset (a directory uses a handful of offsets at most)."""
    offsets = session.scalars(select(ResourceHours.utc_offset_min).distinct()
                              .where(ResourceHours.utc_offset_min.is_not(None))).all()
    moments: list[tuple[int | None, LocalMoment]] = [(None, LocalMoment.of(now.astimezone(zone)))]
    moments += [(offset, LocalMoment.at_offset(now, offset)) for offset in offsets if offset is not None]
    alternatives = []
    for offset, local in moments:
        alternatives.append(and_(
            ResourceHours.utc_offset_min.is_(None) if offset is None else ResourceHours.utc_offset_min == offset,
            ResourceHours.weekday == local.weekday, ResourceHours.opens_min <= local.minute,
            ResourceHours.closes_min > local.minute,
            or_(ResourceHours.valid_from.is_(None), ResourceHours.valid_from <= local.day),
            or_(ResourceHours.valid_to.is_(None), ResourceHours.valid_to >= local.day)))
    return exists().where(ResourceHours.service_id == ResourceService.id, or_(*alternatives))


def _views(session: Session, services: list[ResourceService]) -> list[ResourceView]:
    ids = [service.id for service in services]
    organization_ids = {s.organization_id for s in services if s.organization_id}
    organizations: dict[str, str] = dict(session.execute(
        select(ResourceOrganization.id, ResourceOrganization.name).where(
            ResourceOrganization.id.in_(organization_ids))).all()) if organization_ids else {}
    domains, languages, locations = defaultdict(list), defaultdict(list), defaultdict(list)
    for service_id, domain in session.execute(select(ResourceDomain.service_id, ResourceDomain.domain)
                                              .where(ResourceDomain.service_id.in_(ids))):
        domains[service_id].append(domain)
    for language in session.scalars(select(ResourceLanguage).where(ResourceLanguage.service_id.in_(ids))
                                    .order_by(ResourceLanguage.id)):
        languages[language.service_id].append({"code": language.code, "name": language.name})
    for location in session.scalars(select(ResourceLocation).where(ResourceLocation.service_id.in_(ids))
                                    .order_by(ResourceLocation.id)):
        locations[location.service_id].append(_columns(location, (
            "location_id", "name", "address_1", "address_2", "city", "state_province", "postal_code", "country",
            "latitude", "longitude")))
    return [ResourceView(service.id, service.name, service.status, organizations.get(service.organization_id or ""),
                         service.description, service.phone, service.url,
                         sorted(domains[service.id], key=DOMAINS.index), languages[service.id],
                         locations[service.id]) for service in services]


def _children(session: Session, table: Any, service_id: str, names: tuple[str, ...]) -> list[dict[str, Any]]:
    return [_columns(row, names) for row in session.scalars(select(table).where(table.service_id == service_id)
                                                             .order_by(table.id))]


def _columns(row: Any, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(row, name) for name in names}
