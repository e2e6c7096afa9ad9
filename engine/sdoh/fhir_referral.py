"""A referral as the Gravity Project's SDOH Clinical Care IG (STU 3, FHIR R4) shapes it: a ServiceRequest
(what is asked: the need's domain, for the patient, with consent) and a referral Task (intent order, code
fulfill, focus the ServiceRequest, owner the organization, status from the referral's), sent together to a
partner organization's endpoint as a transaction Bundle.

Nothing from 42 CFR Part 2 travels: the payload names the need, the service and the patient, never the
episode's clinical data.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

SDOHCC_CODES = "http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/SDOHCC-CodeSystemTemporaryCodes"
SNOMED = "http://snomed.info/sct"
TASK_CODES = "http://hl7.org/fhir/CodeSystem/task-code"
URN = "urn:carepath"

# The API's domains as the IG's SDOH category value set names them (SDOHCC-ValueSetSDOHCategory): the IG has
# no utilities category, so utility shut-offs are filed under material hardship; safety under intimate
# partner violence, the AHC HRSN's safety questions being about harm by people the patient lives with.
DOMAIN_CATEGORIES = {
    "food": ("food-insecurity", "Food Insecurity"),
    "housing": ("housing-instability", "Housing Instability"),
    "transportation": ("transportation-insecurity", "Transportation Insecurity"),
    "utilities": ("material-hardship", "Material Hardship"),
    "safety": ("intimate-partner-violence", "Intimate Partner Violence"),
}
SOCIAL_SERVICE_PROCEDURE = {"system": SNOMED, "code": "410606002", "display": "Social service procedure"}


def _reference(kind: str, value: str | None, display: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"identifier": {"system": f"{URN}:{kind}", "value": value or "unknown"}}
    if display:
        out["display"] = display
    return out


def service_request(referral: Any) -> dict[str, Any]:
    code, display = DOMAIN_CATEGORIES[referral.domain]
    return {
        "resourceType": "ServiceRequest",
        "id": f"sr-{referral.id}",
        "status": "active",
        "intent": "order",
        "category": [{"coding": [{"system": SDOHCC_CODES, "code": code, "display": display}]},
                     {"coding": [SOCIAL_SERVICE_PROCEDURE]}],
        "code": {"text": referral.service_name},
        "subject": _reference("patient", referral.patient_id),
        "authoredOn": _instant(referral.created_at),
        "requester": {"display": "CarePath care management"},
        "performer": [_reference("organization", referral.organization_id, referral.organization_name)],
        "supportingInfo": [{"display": "Patient consented to share this referral with the organization"}],
    } | ({"note": [{"text": referral.note}]} if referral.note else {})


def referral_task(referral: Any) -> dict[str, Any]:
    task: dict[str, Any] = {
        "resourceType": "Task",
        "id": referral.id,
        "status": referral.status,
        "intent": "order",
        "code": {"coding": [{"system": TASK_CODES, "code": "fulfill", "display": "Fulfill the focal request"}]},
        "focus": {"reference": f"ServiceRequest/sr-{referral.id}"},
        "for": _reference("patient", referral.patient_id),
        "authoredOn": _instant(referral.created_at),
        "lastModified": _instant(referral.updated_at),
        "requester": {"display": "CarePath care management"},
        "owner": _reference("organization", referral.organization_id, referral.organization_name),
    }
    if referral.status_reason:
        task["statusReason"] = {"text": referral.status_reason}
    return task


def referral_bundle(referral: Any) -> dict[str, Any]:
    """The ServiceRequest and the referral Task, as one transaction the organization's system applies."""
    entries = [service_request(referral), referral_task(referral)]
    return {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": f"{URN}:{r['resourceType']}:{r['id']}", "resource": r,
         "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}} for r in entries]}


def _instant(moment: datetime) -> str:
    """A FHIR instant (stored times are UTC; SQLite gives them back without their offset)."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")
