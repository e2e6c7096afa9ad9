"""Importing a resource directory (HSDS 3.0): one use case for the CLI and the API.

The whole import is one transaction; each service is written inside a savepoint, so a service that the
database refuses is rolled back alone, reported and skipped, and the rest goes on. A service that fails its
checks is reported the same way and never touches the database. Re-importing replaces a service's rows by
its HSDS id; services missing from a later file are left as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ..application import CarePath
from ..directory import ImportProblem, ResourceFiles, load_taxonomy_map
from ..directory.records import PARTS, ServiceRecord, service_record, service_zips
from ..identity import Principal
from ..persistence.chain import lock_key
from ..persistence.directory_tables import (
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
from ..persistence.unit_of_work import UnitOfWork
from ..rules import DIRECTORY_RULES, check_role

Progress = Callable[[int, int], None]  # (services done, services in all)


@dataclass
class ImportResult:
    source: str
    created: int = 0
    updated: int = 0
    problems: list[ImportProblem] = field(default_factory=list)

    @property
    def skipped(self) -> int:
        return len(self.problems)


def import_resources(app: CarePath, principal: Principal, files: ResourceFiles, *,
                     progress: Progress | None = None, every: int = 500) -> ImportResult:
    check_role(DIRECTORY_RULES["import"], principal)
    inputs = files.services(app.config.resource_import)
    taxonomy = load_taxonomy_map(app.config.resource_taxonomy_map)
    result, seen = ImportResult(files.name), set[str]()
    with UnitOfWork(app) as uow:
        _one_import_at_a_time(uow.session)
        for number, item in enumerate(inputs, start=1):
            service_id = item.raw.get("id") if isinstance(item.raw.get("id"), str) else None
            try:
                record = service_record(item.raw)
                if record.id in seen:
                    raise ValueError("the same service id appears earlier in this import")
                seen.add(record.id)
                domains = taxonomy.domains_of((t["code"], t["name"], t["taxonomy"]) for t in record.terms)
                with uow.session.begin_nested():
                    created = _store(uow.session, app, record, domains, files.name)
                result.created += created
                result.updated += not created
            except ValueError as exc:
                result.problems.append(ImportProblem(item.where, service_id, str(exc)))
            except SQLAlchemyError as exc:
                reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
                result.problems.append(ImportProblem(item.where, service_id, f"the database refused it: {reason}"))
            if progress is not None and (number % every == 0 or number == len(inputs)):
                progress(number, len(inputs))
        uow.record(DIRECTORY_RULES["import"].event or "", principal.name,
                   data={"source": files.name, "created": result.created, "updated": result.updated,
                         "skipped": result.skipped})
        uow.commit()
    return result


def _one_import_at_a_time(session: Session) -> None:
    """Two imports at once would both create a service new to each and one would be refused: the second
    waits for the first to commit, then updates what it wrote. SQLite writers are serialized already."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key("resource-directory-import")})


# The rows each part of a service object replaces.
PART_TABLES: dict[str, tuple[Any, ...]] = {
    "terms": (ResourceTerm, ResourceDomain), "locations": (ResourceLocation, ResourceZip),
    "areas": (ResourceArea, ResourceZip), "languages": (ResourceLanguage,),
    "schedules": (ResourceSchedule, ResourceHours)}


def _replaced(given: set[str], created: bool) -> list[Any]:
    if created:
        return []
    return list(dict.fromkeys(table for part in sorted(given) for table in PART_TABLES[part]))


def _store(session: Session, app: CarePath, record: ServiceRecord, domains: set[str], source: str) -> bool:
    """Write one service and its rows, replacing what an earlier import stored; True if it is new."""
    now = app.now()
    if record.organization is not None:
        organization = session.get(ResourceOrganization, record.organization["id"])
        if organization is None:
            organization = ResourceOrganization(id=record.organization["id"])
            session.add(organization)
        for key, value in record.organization.items():
            setattr(organization, key, value)
        organization.updated_at = now
    service = session.get(ResourceService, record.id)
    created = service is None
    if service is None:
        service = ResourceService(id=record.id)
        session.add(service)
    organization_name = record.organization["name"] if record.organization else None
    words = (record.name, record.fields["alternate_name"], record.fields["description"], organization_name)
    service.organization_id = record.organization["id"] if record.organization else None
    service.name, service.status, service.source, service.updated_at = record.name, record.status, source, now
    for key, value in record.fields.items():
        setattr(service, key, value)
    service.search_text = " ".join(w for w in words if w).lower()
    session.flush()
    for table in _replaced(record.given, created):
        session.execute(delete(table).where(table.service_id == record.id))
    _write_parts(session, record, domains, record.given if not created else set(PARTS.values()))
    return created


def _write_parts(session: Session, record: ServiceRecord, domains: set[str], given: set[str]) -> None:
    if "terms" in given:
        session.add_all([ResourceDomain(service_id=record.id, domain=d) for d in sorted(domains)])
        session.add_all([ResourceTerm(service_id=record.id, **term) for term in record.terms])
    if "locations" in given:
        session.add_all([ResourceLocation(service_id=record.id, **loc) for loc in record.locations])
    if "areas" in given:
        session.add_all([ResourceArea(service_id=record.id, **area) for area in record.areas])
    if "languages" in given:
        session.add_all([ResourceLanguage(service_id=record.id, code=c, name=n) for c, n in sorted(
            record.languages, key=lambda pair: (pair[0] or "", pair[1] or ""))])
    if "schedules" in given:
        session.add_all([ResourceSchedule(service_id=record.id, **s) for s in record.schedules])
        session.add_all([ResourceHours(service_id=record.id, weekday=h.weekday, opens_min=h.opens_min,
                                       closes_min=h.closes_min, utc_offset_min=h.utc_offset_min,
                                       valid_from=h.valid_from, valid_to=h.valid_to) for h in record.hours])
    if given & {"locations", "areas"}:  # a part not given keeps its codes: read them from its stored rows
        postal = ([loc["postal_code"] for loc in record.locations] if "locations" in given else list(
            session.scalars(select(ResourceLocation.postal_code).where(ResourceLocation.service_id == record.id))))
        areas = ([area["name"] for area in record.areas] if "areas" in given else list(
            session.scalars(select(ResourceArea.name).where(ResourceArea.service_id == record.id))))
        zips = sorted(service_zips(postal, areas))
        session.add_all([ResourceZip(service_id=record.id, postal_code=z) for z in zips])
    session.flush()
