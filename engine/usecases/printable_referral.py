"""A referral on paper (`GET /api/referrals/{id}/printable`), for an organization without a system: one
self-contained HTML page, no scripts, as the episode report is.

Only what the organization needs to serve the patient (HIPAA's minimum necessary): the patient's name and
phone, the need (its domain, not the screening answers or any clinical data, so substance-use treatment
information never travels), the service with its organization, address, phone and hours from the resource
directory, the date, and the case manager who sent it. Printing it is a read of the record: the route records
it (`record_viewed`, what `referral`) so the auditors' "who viewed this patient's record" finds it.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from html import escape
from typing import Any

from ..application import CarePath
from ..errors import NotFound
from ..identity import Principal
from ..patients import Patient
from ..persistence.tables import Instance
from ..resource_queries import ResourceView, resource_detail
from .instance_report import STYLE
from .patient_records import patient_of_episode
from .referrals import _readable

DAYS = {"MO": "Mon", "TU": "Tue", "WE": "Wed", "TH": "Thu", "FR": "Fri", "SA": "Sat", "SU": "Sun"}


def printable_referral(app: CarePath, principal: Principal, referral_id: str) -> tuple[str, str]:
    """The page and the episode it belongs to (for the read's record); NotFound as for reading the referral."""
    with app.db.read() as session:
        referral = _readable(session, principal, referral_id)
        instance = session.get(Instance, referral.instance_id)
        patient = patient_of_episode(session, instance.patient_ref if instance else None)
        try:
            service: ResourceView | None = resource_detail(session, referral.service_id)
        except NotFound:
            service = None  # gone from the directory since: the referral still names it
        name, phone = _contact(patient, instance.data if instance else {})
    zone = app.time_context().tz
    rows = [("Patient", name), ("Patient's phone", phone), ("Need", referral.domain.capitalize()),
            ("Service", referral.service_name), ("Organization", referral.organization_name or "—"),
            ("Address", _addresses(service)), ("Phone", (service.phone if service else None) or "—"),
            ("Hours", _hours(service)), ("Referred on", _date(referral.created_at, zone)),
            ("Case manager", referral.created_by), ("Referral", referral.id)]
    note = f"<h2>Note</h2><p>{_e(referral.note)}</p>" if referral.note else ""
    page = (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Referral — "
            f"{_e(referral.service_name)}</title><style>{STYLE}</style></head><body>"
            f"<h1>Referral to {_e(referral.organization_name or referral.service_name)}</h1><dl>"
            + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in rows) + f"</dl>{note}"
            "<p>The patient consented to share this information with the organization named above, for this "
            "referral only.</p></body></html>\n")
    return page, referral.instance_id


def _contact(patient: Patient | None, data: dict[str, Any]) -> tuple[str, str]:
    """The patient's name and phone: the patient record's, else the episode's start data (`patient`)."""
    found = data.get("patient")
    given: dict[str, Any] = found if isinstance(found, dict) else {}
    name = (patient.display_name if patient else None) or given.get("name")
    phone = (patient.demographics.phone if patient else None) or given.get("phone")
    return str(name or "—")[:200], str(phone or "—")[:60]


def _addresses(service: ResourceView | None) -> str:
    places = []
    for location in (service.locations if service else []):
        parts = [location.get(k) for k in ("address_1", "address_2", "city", "state_province", "postal_code")]
        if any(parts):
            places.append(", ".join(str(p) for p in parts if p))
    return "; ".join(places) or "—"


def _hours(service: ResourceView | None) -> str:
    schedules: list[dict[str, Any]] = ((service.details or {}).get("schedules") or []) if service else []
    hours = []
    for schedule in schedules:
        days = ", ".join(DAYS.get(d.strip().upper(), d) for d in str(schedule.get("byday") or "").split(",") if d)
        times = "–".join(str(schedule[k])[:5] for k in ("opens_at", "closes_at") if schedule.get(k))
        said = " ".join(p for p in (days, times) if p)
        hours.append(said or str(schedule.get("description") or ""))  # the description only when no times
    return "; ".join(h for h in hours if h) or "—"


def _date(value: datetime, zone: tzinfo) -> str:
    return value.astimezone(zone).strftime("%d %b %Y")


def _e(value: object) -> str:
    return escape(str(value), quote=True)
