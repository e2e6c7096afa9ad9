"""One HSDS service object checked and flattened into what the directory's tables keep (ValueError: why not)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from ..model import ServiceStatus
from .hours import OpenInterval, unfold

STATUSES = {status.value for status in ServiceStatus}
_US_ZIP = re.compile(r"\b(\d{5})(?:-\d{4})?\b")


@dataclass
class ServiceRecord:
    id: str
    name: str
    status: str
    fields: dict[str, str | None]  # alternate_name, description, url, email, phone, eligibility, ...
    organization: dict[str, str | None] | None
    locations: list[dict[str, Any]] = field(default_factory=list)
    areas: list[dict[str, str | None]] = field(default_factory=list)
    # The parts the object gives: a part left out keeps what an earlier import stored (a `GET /services`
    # list answer often carries no locations); a part given, even empty, replaces it.
    given: set[str] = field(default_factory=set)
    languages: set[tuple[str | None, str | None]] = field(default_factory=set)
    terms: list[dict[str, str | None]] = field(default_factory=list)
    schedules: list[dict[str, Any]] = field(default_factory=list)
    hours: list[OpenInterval] = field(default_factory=list)


PARTS = {"service_at_locations": "locations", "service_areas": "areas", "languages": "languages",
         "attributes": "terms", "schedules": "schedules"}


def service_zips(postal_codes: list[str | None], area_names: list[str | None]) -> set[str]:
    """The postal codes a service is given at (ZIP+4 cut to five digits) or names in a service area."""
    found = set()
    for postal in postal_codes:
        match = _US_ZIP.match(postal or "")
        if postal:
            found.add(match.group(1) if match else postal)
    for name in area_names:
        found.update(_US_ZIP.findall(name or ""))
    return found


def service_record(raw: dict[str, Any]) -> ServiceRecord:
    if "_not_object" in raw:
        raise ValueError("is not a JSON object")
    service_id, name = _text(raw.get("id"), "id", 100), _text(raw.get("name"), "name", 500)
    if not service_id or not name:
        raise ValueError("has no " + ("id" if not service_id else "name"))
    status = (_text(raw.get("status"), "status", 40) or "active").lower()
    if status not in STATUSES:
        raise ValueError(f"status '{status}' is not one of {', '.join(sorted(STATUSES))}")
    phones = _list(raw, "phones")
    record = ServiceRecord(service_id, name, status, {
        "alternate_name": _text(raw.get("alternate_name"), "alternate_name", 500),
        "description": _text(raw.get("description"), "description"),
        "url": _text(raw.get("url"), "url", 1000), "email": _text(raw.get("email"), "email", 500),
        "phone": _text(phones[0].get("number"), "phones.number", 100) if phones else None,
        "eligibility": _text(raw.get("eligibility_description"), "eligibility_description"),
        "application_process": _text(raw.get("application_process"), "application_process"),
        "fees": _text(raw.get("fees_description"), "fees_description")},
        _organization(raw.get("organization")))
    record.given = {part for key, part in PARTS.items() if key in raw}
    if "locations" in record.given:
        record.given.add("schedules")  # their schedules come with them
    _add_locations(record, raw)
    for area in _list(raw, "service_areas"):
        kept = {"area_id": _text(area.get("id"), "service_areas.id", 100),
                "name": _text(area.get("name"), "service_areas.name"),
                "description": _text(area.get("description"), "service_areas.description")}
        record.areas.append(kept)
    for language in _list(raw, "languages"):
        code = _text(language.get("code"), "languages.code", 20)
        record.languages.add((code.lower() if code else None, _text(language.get("name"), "languages.name", 200)))
    for attribute in _list(raw, "attributes"):
        term = attribute.get("taxonomy_term")
        if isinstance(term, dict):
            record.terms.append({"term_id": _text(term.get("id"), "taxonomy_term.id", 100),
                                 "code": _text(term.get("code"), "taxonomy_term.code", 100),
                                 "name": _text(term.get("name"), "taxonomy_term.name", 500),
                                 "taxonomy": _text(term.get("taxonomy"), "taxonomy_term.taxonomy", 500)})
    _add_schedules(record, _list(raw, "schedules"), None)
    return record


def _organization(raw: Any) -> dict[str, str | None] | None:
    if not isinstance(raw, dict) or not raw.get("id"):
        return None
    name = _text(raw.get("name"), "organization.name", 500)
    if not name:
        raise ValueError("organization has no name")
    return {"id": _text(raw.get("id"), "organization.id", 100), "name": name,
            "description": _text(raw.get("description"), "organization.description"),
            "website": _text(raw.get("website"), "organization.website", 1000),
            "email": _text(raw.get("email"), "organization.email", 500)}


def _add_locations(record: ServiceRecord, raw: dict[str, Any]) -> None:
    for link in _list(raw, "service_at_locations"):
        location = link.get("location")
        if not isinstance(location, dict):
            continue
        location_id = _text(location.get("id"), "location.id", 100) or _text(link.get("id"), "id", 100) or ""
        addresses = [a for a in _list(location, "addresses") if a.get("address_type", "physical") != "virtual"]
        base = {"location_id": location_id, "name": _text(location.get("name"), "location.name", 500),
                "latitude": _number(location.get("latitude"), "location.latitude"),
                "longitude": _number(location.get("longitude"), "location.longitude")}
        for address in addresses or [{}]:
            postal = _text(address.get("postal_code"), "address.postal_code", 40)
            record.locations.append({**base, "address_id": _text(address.get("id"), "address.id", 100),
                                     "address_1": _text(address.get("address_1"), "address.address_1", 500),
                                     "address_2": _text(address.get("address_2"), "address.address_2", 500),
                                     "city": _text(address.get("city"), "address.city", 200),
                                     "state_province": _text(address.get("state_province"), "address.state", 200),
                                     "postal_code": postal,
                                     "country": _text(address.get("country"), "address.country", 10)})
        _add_schedules(record, _list(link, "schedules") + _list(location, "schedules"), location_id)


def _add_schedules(record: ServiceRecord, schedules: list[dict[str, Any]], location_id: str | None) -> None:
    for schedule in schedules:
        schedule_id = _text(schedule.get("id"), "schedules.id", 100)
        freq = _text(schedule.get("freq"), "schedules.freq", 20)
        byday = _text(schedule.get("byday"), "schedules.byday", 100)
        opens, closes = (_text(schedule.get(key), f"schedules.{key}", 20) for key in ("opens_at", "closes_at"))
        valid_from, valid_to = (_date(schedule.get(key), f"schedules.{key}") for key in ("valid_from", "valid_to"))
        offset = _number(schedule.get("timezone"), "schedules.timezone")
        try:
            record.hours.extend(unfold(freq, byday, opens, closes, offset, valid_from, valid_to))
        except ValueError as exc:
            raise ValueError(f"schedule {schedule_id or '(no id)'}: {exc}") from None
        kept = {"schedule_id": schedule_id, "location_id": location_id, "freq": freq, "byday": byday,
                "opens_at": opens, "closes_at": closes, "valid_from": valid_from, "valid_to": valid_to,
                "timezone": offset, "description": _text(schedule.get("description"), "schedules.description")}
        record.schedules.append(kept)


def _list(raw: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = raw.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ValueError(f"{key} is not a list of objects")
    return value


def _text(value: Any, name: str, limit: int = 20_000) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"{name} is not text")
    text = str(value).strip()
    if "\x00" in text:
        raise ValueError(f"{name} contains a NUL character")
    if len(text) > limit:
        raise ValueError(f"{name} is longer than {limit:,} characters")
    return text or None


def _number(value: Any, name: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} '{value}' is not a number") from None


def _date(value: Any, name: str) -> date | None:
    text = _text(value, name, 40)
    if text is None:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        raise ValueError(f"{name} '{text}' is not a date such as 2026-01-31") from None
