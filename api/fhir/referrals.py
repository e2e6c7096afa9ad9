"""Referrals as FHIR (docs/fhir.md, "Referrals"): the ServiceRequest and the referral Task as the Gravity SDOH
Clinical Care IG shapes them (engine/sdoh/fhir_referral.py, the shapes sent to partner organizations), read
and searched with the visibility of GET /api/referrals (staff: the episodes they may read; an organization's
integration account: its own referrals), a read of one recorded in the audit trail as other FHIR reads are.

A referral Task and a human task share /fhir/Task: a read tries the human tasks first, then the referrals (an
integration account has no human tasks: the referrals only); a search is of referral Tasks when it says
`code=fulfill`, `focus=ServiceRequest/...` or `owner=Organization/...` (or the caller is an integration
account), of human tasks otherwise.
"""

from __future__ import annotations

from typing import Any

from carepath.engine.errors import BadRequest, NotFound
from carepath.engine.fhir_queries import episode_patients
from carepath.engine.model import ReferralStatus
from carepath.engine.sdoh.fhir_referral import (
    DOMAIN_CATEGORIES,
    SDOHCC_CODES,
    TASK_CODES,
    referral_task,
    service_request,
)
from carepath.engine.sdoh.fhir_task_update import OUTCOME_SYSTEM
from carepath.engine.usecases.access import record_access
from carepath.engine.usecases.referrals import ReferralFilters, ReferralView, get_referral, list_referrals

from . import search_params as sp

Resource = dict[str, Any]
SR_PREFIX = "sr-"  # a ServiceRequest's id is its referral's with this prefix (fhir_referral.service_request)
OPEN = ("requested", "accepted", "in-progress", "on-hold")
# The ServiceRequest's status from its referral's (the request stays active while the Task is open).
REQUEST_STATUS = {**dict.fromkeys(OPEN, "active"), "draft": "draft", "completed": "completed",
                  "rejected": "revoked", "failed": "revoked", "cancelled": "revoked",
                  "entered-in-error": "entered-in-error"}
REQUEST_STATUS_CODES = tuple(dict.fromkeys(REQUEST_STATUS.values()))
TASK_STATUS_CODES = tuple(s.value for s in ReferralStatus)
CATEGORY_DOMAINS = {code: domain for domain, (code, _) in DOMAIN_CATEGORIES.items()}


def _meta(view: ReferralView) -> dict[str, str]:
    return {"versionId": str(view.version), "lastUpdated": _instant(view)}


def _instant(view: ReferralView) -> str:
    return str(referral_task(view)["lastModified"])


def patients_of(engine: Any, views: list[ReferralView]) -> dict[str, str]:
    """The Patient (its id on this server, the survivor of any merge) each referral's episode is for."""
    with engine.db.read() as session:
        return episode_patients(session, (v.instance_id for v in views))


def request_resource(view: ReferralView, patient: str | None) -> Resource:
    resource = service_request(view) | {"status": REQUEST_STATUS[view.status], "meta": _meta(view)}
    if patient:
        resource["subject"] = {"reference": f"Patient/{patient}", **resource["subject"]}
    return resource


def task_resource(view: ReferralView, patient: str | None) -> Resource:
    resource = referral_task(view) | {"meta": _meta(view)}
    if patient:
        resource["for"] = {"reference": f"Patient/{patient}", **resource["for"]}
    if view.outcome:
        outcome = {"coding": [{"system": OUTCOME_SYSTEM, "code": view.outcome}]}
        resource["businessStatus"] = outcome
        resource["output"] = [{"type": {"text": "outcome"}, "valueCodeableConcept": outcome}]
    return resource


def read_request(reader: Any, request_id: str) -> Resource:
    view = _read(reader, request_id.removeprefix(SR_PREFIX) if request_id.startswith(SR_PREFIX) else None,
                 f"ServiceRequest/{request_id}")
    return request_resource(view, patients_of(reader.engine, [view]).get(view.instance_id))


def read_referral_task(reader: Any, task_id: str) -> Resource:
    view = _read(reader, task_id, f"Task/{task_id}")
    return task_resource(view, patients_of(reader.engine, [view]).get(view.instance_id))


def _read(reader: Any, referral_id: str | None, named: str) -> ReferralView:
    try:
        view = get_referral(reader.engine, reader.user, referral_id) if referral_id else None
    except NotFound:
        view = None
    if view is None:
        raise NotFound(f"{named} does not exist")
    record_access(reader.engine, reader.user, "referral", view.instance_id, client=reader.client)
    return view


def _changed(values: dict[str, list[str]]) -> tuple[tuple[str, Any], ...]:
    return tuple((b.op, b.at) for v in values.get("_lastUpdated", []) for b in sp.date_bounds("_lastUpdated", v))


def _page(reader: Any, filters: ReferralFilters, page: sp.Paging) -> tuple[list[ReferralView], bool]:
    views = list_referrals(reader.engine, reader.user, filters, page.count + 1, page.offset)
    return views[:page.count], len(views) > page.count


def search_requests(reader: Any, values: dict[str, list[str]], page: sp.Paging) -> tuple[list[Resource], bool]:
    status, patient, category = (sp.one(values, n) for n in ("status", "patient", "category"))
    statuses = None
    if status:
        wanted = sp.codes("status", status, REQUEST_STATUS_CODES)
        statuses = tuple(s for s, code in REQUEST_STATUS.items() if code in wanted)
    domains = tuple(CATEGORY_DOMAINS[c] for c in sp.codes("category", category, tuple(CATEGORY_DOMAINS),
                                                          SDOHCC_CODES)) if category else None
    filters = ReferralFilters(patient_ref=sp.reference("patient", patient, "Patient") if patient else None,
                              statuses=statuses, domains=domains, changed=_changed(values))
    views, more = _page(reader, filters, page)
    patients = patients_of(reader.engine, views)
    return [request_resource(v, patients.get(v.instance_id)) for v in views], more


def wants_referrals(values: dict[str, list[str]]) -> bool:
    owner = sp.one(values, "owner") or ""
    return bool(values.get("code") or values.get("focus")) or owner.startswith("Organization/")


def search_referral_tasks(reader: Any, values: dict[str, list[str]],
                          page: sp.Paging) -> tuple[list[Resource], bool]:
    code, focus, owner, status, patient = (sp.one(values, n) for n in ("code", "focus", "owner", "status", "patient"))
    if values.get("business-status"):
        raise BadRequest("search parameter 'business-status' is for human tasks; referral Tasks are searched "
                         "by code, focus, owner, patient, status and _lastUpdated")
    if code:
        sp.codes("code", code, ("fulfill",), TASK_CODES)  # human tasks have no code: only fulfill finds any
    ids = None
    if focus:
        ids = tuple(f.removeprefix(SR_PREFIX) for f in (sp.reference("focus", item, "ServiceRequest")
                                                       for item in sp.alternatives("focus", focus))
                    if f.startswith(SR_PREFIX))
    filters = ReferralFilters(
        patient_ref=sp.reference("patient", patient, "Patient") if patient else None, ids=ids,
        statuses=tuple(sp.codes("status", status, TASK_STATUS_CODES)) if status else None,
        organization=sp.reference("owner", owner, "Organization") if owner else None, changed=_changed(values))
    views, more = _page(reader, filters, page)
    patients = patients_of(reader.engine, views)
    return [task_resource(v, patients.get(v.instance_id)) for v in views], more


REQUEST_PARAMS = (
    sp.SearchParam("patient", "reference", "the patient referred (Patient/ID or ID)"),
    sp.SearchParam("status", "token", "request status codes, comma-separated: active (the referral is open), "
                   "completed, revoked (rejected, failed or cancelled), draft, entered-in-error"),
    sp.SearchParam("category", "token", f"the SDOH domain as the IG's category code ({SDOHCC_CODES}|CODE or "
                   f"CODE): {', '.join(CATEGORY_DOMAINS)}; comma-separated"),
    sp.SearchParam("_lastUpdated", "date", "when the referral last changed, with prefix eq, ge, gt, le or lt; "
                   "give it twice for a range", repeats=True),
    *sp.PAGING)
REFERRAL_TASK_PARAMS = (
    sp.SearchParam("code", "token", f"fulfill ({TASK_CODES}): referral Tasks (Gravity SDOH), not human tasks"),
    sp.SearchParam("focus", "reference", "the referral's ServiceRequest (ServiceRequest/sr-ID): its referral Task"),
)
