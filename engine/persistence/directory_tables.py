"""The community resource directory (engine/directory/): HSDS 3.0 services kept as plain, indexed rows.

A service's rows are replaced whole when it is imported again (by its HSDS id), so the child tables key on
`service_id` and hold what a case manager searches and reads: the organization, the places with their
addresses, the areas served, the languages, the opening hours (as data), the taxonomy terms and the SDOH
domains derived from them. `resource_zips` gathers every postal code a service serves or sits in, so a zip
search is one indexed lookup; `resource_hours` is the schedules unfolded into weekly open intervals, so
"open now" is SQL too.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .tables import Base, BigId

SERVICE_FK = "resource_services.id"


class ResourceOrganization(Base):
    __tablename__ = "resource_organizations"
    id: Mapped[str] = mapped_column(String(100), primary_key=True)  # the HSDS id
    name: Mapped[str] = mapped_column(String(500))
    description: Mapped[str | None] = mapped_column(Text)
    website: Mapped[str | None] = mapped_column(String(1000))
    email: Mapped[str | None] = mapped_column(String(500))
    updated_at: Mapped[datetime]


class ResourceService(Base):
    __tablename__ = "resource_services"
    __table_args__ = (Index("ix_resource_services_name", "name"),)
    id: Mapped[str] = mapped_column(String(100), primary_key=True)  # the HSDS id
    organization_id: Mapped[str | None] = mapped_column(ForeignKey("resource_organizations.id"), index=True)
    name: Mapped[str] = mapped_column(String(500))
    alternate_name: Mapped[str | None] = mapped_column(String(500))
    description: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(String(1000))
    email: Mapped[str | None] = mapped_column(String(500))
    phone: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(40))  # HSDS: active, inactive, defunct, temporarily closed
    eligibility: Mapped[str | None] = mapped_column(Text)
    application_process: Mapped[str | None] = mapped_column(Text)
    fees: Mapped[str | None] = mapped_column(Text)
    # Lower-cased name, alternate name, description and organization name: what `q` matches.
    search_text: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(500))  # the file it was last imported from
    updated_at: Mapped[datetime]


class ResourceDomain(Base):
    __tablename__ = "resource_domains"
    service_id: Mapped[str] = mapped_column(ForeignKey(SERVICE_FK, ondelete="CASCADE"), primary_key=True)
    domain: Mapped[str] = mapped_column(String(40), primary_key=True, index=True)


class ResourceLocation(Base):
    """A place the service is given at, with one address (a location with several has a row for each)."""

    __tablename__ = "resource_locations"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    service_id: Mapped[str] = mapped_column(ForeignKey(SERVICE_FK, ondelete="CASCADE"), index=True)
    location_id: Mapped[str] = mapped_column(String(100))  # the HSDS ids
    address_id: Mapped[str | None] = mapped_column(String(100))
    name: Mapped[str | None] = mapped_column(String(500))
    address_1: Mapped[str | None] = mapped_column(String(500))
    address_2: Mapped[str | None] = mapped_column(String(500))
    city: Mapped[str | None] = mapped_column(String(200))
    state_province: Mapped[str | None] = mapped_column(String(200))
    postal_code: Mapped[str | None] = mapped_column(String(40))
    country: Mapped[str | None] = mapped_column(String(10))
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)


class ResourceArea(Base):
    __tablename__ = "resource_areas"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    service_id: Mapped[str] = mapped_column(ForeignKey(SERVICE_FK, ondelete="CASCADE"), index=True)
    area_id: Mapped[str | None] = mapped_column(String(100))
    name: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)


class ResourceZip(Base):
    """A postal code the service serves (named in a service area) or is given at (a location's address)."""

    __tablename__ = "resource_zips"
    __table_args__ = (Index("ix_resource_zips_postal_code_service_id", "postal_code", "service_id"),)
    service_id: Mapped[str] = mapped_column(ForeignKey(SERVICE_FK, ondelete="CASCADE"), primary_key=True)
    postal_code: Mapped[str] = mapped_column(String(40), primary_key=True)


class ResourceLanguage(Base):
    __tablename__ = "resource_languages"
    __table_args__ = (Index("ix_resource_languages_code_service_id", "code", "service_id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    service_id: Mapped[str] = mapped_column(ForeignKey(SERVICE_FK, ondelete="CASCADE"), index=True)
    code: Mapped[str | None] = mapped_column(String(20))  # lower-cased ISO 639
    name: Mapped[str | None] = mapped_column(String(200))


class ResourceTerm(Base):
    __tablename__ = "resource_terms"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    service_id: Mapped[str] = mapped_column(ForeignKey(SERVICE_FK, ondelete="CASCADE"), index=True)
    term_id: Mapped[str | None] = mapped_column(String(100))
    code: Mapped[str | None] = mapped_column(String(100))
    name: Mapped[str | None] = mapped_column(String(500))
    taxonomy: Mapped[str | None] = mapped_column(String(500))


class ResourceSchedule(Base):
    """An HSDS schedule as given (iCal-like fields), shown to the case manager."""

    __tablename__ = "resource_schedules"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    service_id: Mapped[str] = mapped_column(ForeignKey(SERVICE_FK, ondelete="CASCADE"), index=True)
    schedule_id: Mapped[str | None] = mapped_column(String(100))
    location_id: Mapped[str | None] = mapped_column(String(100))
    freq: Mapped[str | None] = mapped_column(String(20))
    byday: Mapped[str | None] = mapped_column(String(100))
    opens_at: Mapped[str | None] = mapped_column(String(20))
    closes_at: Mapped[str | None] = mapped_column(String(20))
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    timezone: Mapped[float | None] = mapped_column(Float)  # HSDS: a UTC offset in hours
    description: Mapped[str | None] = mapped_column(Text)


class ResourceHours(Base):
    """A weekly open interval unfolded from a schedule: weekday 0 = Monday, minutes from midnight, in the
    schedule's UTC offset (`utc_offset_min`) or, when it gives none, in the care setting's time zone."""

    __tablename__ = "resource_hours"
    __table_args__ = (Index("ix_resource_hours_weekday_service_id", "weekday", "service_id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    service_id: Mapped[str] = mapped_column(ForeignKey(SERVICE_FK, ondelete="CASCADE"), index=True)
    weekday: Mapped[int] = mapped_column(Integer)
    opens_min: Mapped[int] = mapped_column(Integer)
    closes_min: Mapped[int] = mapped_column(Integer)
    utc_offset_min: Mapped[int | None] = mapped_column(Integer)
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)


CHILD_TABLES = (ResourceDomain, ResourceLocation, ResourceArea, ResourceZip, ResourceLanguage, ResourceTerm,
                ResourceSchedule, ResourceHours)
