"""A CarePath event as a FHIR R4 AuditEvent (the mapping table is in docs/audit.md).

What a user asked for over the API is a RESTful operation (type `rest`, subtype the interaction);
what the engine did as a consequence or on its own (a task becoming ready, a timer firing) is DICOM's
"Application Activity"; user, token and password changes are DICOM's "User Security Attributes Changed";
web sign-in, sign-out and lockouts are DICOM's "User Authentication" (subtype Login or Logout). Every
resource also carries the CarePath event type as a second subtype and the event id, so nothing of the
original is lost.
"""

from __future__ import annotations

import json
from typing import Any

from .audit import RECORD_VIEWED, AuditRecord, utc_instant
from .identity import SCHEDULER, SYSTEM

AUDIT_EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
DICOM = "http://dicom.nema.org/resources/ontology/DCM"
RESTFUL_INTERACTION = "http://hl7.org/fhir/restful-interaction"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
NETWORK_IP = "2"
# CarePath's own names (URNs until the project has a canonical URL of its own).
CAREPATH_EVENT_TYPE = "urn:carepath:event-type"
CAREPATH_EVENT_ID = "urn:carepath:extension:event-id"
IDS = {"event": "urn:carepath:event", "instance": "urn:carepath:instance", "task": "urn:carepath:task",
       "patient": "urn:carepath:patient-id", "user": "urn:carepath:user", "pathway": "urn:carepath:pathway",
       "patient-record": "urn:carepath:patient"}  # a patient's id in the patients table (GET /api/patients/{id})
# Events about a patient identity rather than an episode: their data names the patient (`patient`).
PATIENT_EVENTS = frozenset({"patient_merged", "patient_unmerged", "patient_updated"})
SYSTEM_ACTORS = frozenset({SYSTEM.name, SCHEDULER.name})

REST = {"system": AUDIT_EVENT_TYPE, "code": "rest", "display": "RESTful Operation"}
APPLICATION_ACTIVITY = {"system": DICOM, "code": "110100", "display": "Application Activity"}
SECURITY_ATTRIBUTES = {"system": DICOM, "code": "110137", "display": "User Security Attributes Changed"}
AUDIT_LOG_USED = {"system": DICOM, "code": "110101", "display": "Audit Log Used"}
USER_AUTHENTICATION = {"system": DICOM, "code": "110114", "display": "User Authentication"}
LOGIN = {"system": DICOM, "code": "110122", "display": "Login"}
LOGOUT = {"system": DICOM, "code": "110123", "display": "Logout"}
# Break-glass access (usecases/break_glass.py): the grant, and every read made under one, carry the purpose
# of use "emergency treatment" (HL7 v3 ActReason ETREAT).
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
EMERGENCY_TREATMENT = {"system": ACT_REASON, "code": "ETREAT", "display": "Emergency Treatment"}
# Web sign-in events (engine/usecases/web_sessions.py): the DICOM subtype of each.
AUTHENTICATION_SUBTYPES = {"signed_in": LOGIN, "sign_in_locked": LOGIN, "signed_out": LOGOUT,
                           "session_ended": LOGOUT}

# CarePath event type -> (AuditEvent.type, restful interaction or None, action).
_USER_UPDATES = ("task_claimed", "task_unclaimed", "task_assigned", "task_delegated", "task_resolved", "task_held",
                 "task_resumed", "task_completed", "task_draft_saved", "task_due_date_changed",
                 "task_priority_changed", "task_released", "cancelled", "retried", "pathway_retired",
                 "message_received", "patient_merged", "patient_unmerged", "patient_updated")
MAPPING: dict[str, tuple[dict[str, str], str | None, str]] = {
    RECORD_VIEWED: (REST, "read", "R"),
    "instance_started": (REST, "create", "C"),
    "task_comment": (REST, "create", "C"),
    "pathway_deployed": (REST, "create", "C"),
    "resources_imported": (REST, "update", "U"),
    "message_buffered": (REST, "create", "C"),
    **dict.fromkeys(_USER_UPDATES, (REST, "update", "U")),
    "task_ready": (APPLICATION_ACTIVITY, None, "C"),
    "timer_scheduled": (APPLICATION_ACTIVITY, None, "C"),
    "message_awaited": (APPLICATION_ACTIVITY, None, "C"),
    "task_cancelled": (APPLICATION_ACTIVITY, None, "U"),
    "timer_cancelled": (APPLICATION_ACTIVITY, None, "U"),
    "message_wait_cancelled": (APPLICATION_ACTIVITY, None, "U"),
    "completed": (APPLICATION_ACTIVITY, None, "U"),
    "user_added": (SECURITY_ATTRIBUTES, None, "C"),
    "token_issued": (SECURITY_ATTRIBUTES, None, "C"),
    "user_groups_changed": (SECURITY_ATTRIBUTES, None, "U"),
    "user_role_changed": (SECURITY_ATTRIBUTES, None, "U"),
    "user_deactivated": (SECURITY_ATTRIBUTES, None, "U"),
    "token_revoked": (SECURITY_ATTRIBUTES, None, "D"),
    "password_set": (SECURITY_ATTRIBUTES, None, "U"),
    "break_glass_granted": (SECURITY_ATTRIBUTES, None, "C"),
    "break_glass_ended": (SECURITY_ATTRIBUTES, None, "U"),
    "audit_log_used": (AUDIT_LOG_USED, None, "R"),
    **dict.fromkeys(AUTHENTICATION_SUBTYPES, (USER_AUTHENTICATION, None, "E")),
}
# Anything else (timer_fired, incident, call_bound, measure_outcomes, alerts, notifications, types added
# later) is the engine executing part of a pathway.
DEFAULT = (APPLICATION_ACTIVITY, None, "E")
# A failed step of the pathway, recorded for a retry or an incident: minor failure.
FAILURES = frozenset({"incident", "timer_failed", "notification_failed", "task_alert_failed", "sign_in_locked"})
# Events whose data says which client they came from (agent.network).
GRANT_EVENTS = frozenset({"break_glass_granted", "break_glass_ended"})  # their patient is in their data
FROM_A_CLIENT = frozenset({RECORD_VIEWED, "audit_log_used", "signed_in", "sign_in_locked"})


def fhir_audit_event(record: AuditRecord, observer: str) -> dict[str, Any]:
    event_type, interaction, action = MAPPING.get(record.type, DEFAULT)
    if record.type == RECORD_VIEWED and record.data.get("what") == "history":
        interaction = "history-instance"
    subtype = [{"system": RESTFUL_INTERACTION, "code": interaction}] if interaction else []
    if record.type in AUTHENTICATION_SUBTYPES:
        subtype.append(AUTHENTICATION_SUBTYPES[record.type])
    subtype.append({"system": CAREPATH_EVENT_TYPE, "code": record.type})
    resource: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": str(record.id),
        "extension": [{"url": CAREPATH_EVENT_ID, "valueIdentifier": {"system": IDS["event"], "value": str(record.id)}}],
        "type": event_type, "subtype": subtype, "action": action,
        "recorded": utc_instant(record.at),
        "outcome": "4" if record.type in FAILURES else "0",
        "agent": [_agent(record)],
        "source": {"site": observer, "observer": {"display": "CarePath", "identifier": {"value": observer}},
                   "type": [{"system": SOURCE_TYPE, "code": "4", "display": "Application Server"}]},
        "entity": _entities(record),
    }
    if record.type in FAILURES and record.data.get("error"):
        resource["outcomeDesc"] = str(record.data["error"])[:1000]
    if record.type == "break_glass_granted" or (record.type == RECORD_VIEWED and "break_glass" in record.data):
        resource["purposeOfEvent"] = [{"coding": [EMERGENCY_TREATMENT], "text": "break-glass access"}]
    return resource


def _agent(record: AuditRecord) -> dict[str, Any]:
    agent: dict[str, Any] = {"who": {"identifier": {"system": IDS["user"], "value": record.actor},
                                     "display": record.actor},
                             "requestor": record.actor not in SYSTEM_ACTORS}
    client = record.data.get("client") if record.type in FROM_A_CLIENT else None
    if isinstance(client, dict) and client.get("host"):
        agent["network"] = {"address": str(client["host"]), "type": NETWORK_IP}
    return agent


def _entity(kind: str, value: str, entity_type: str, role: str, display: str | None = None) -> dict[str, Any]:
    what: dict[str, Any] = {"identifier": {"system": IDS[kind], "value": value}}
    if display:
        what["display"] = display
    return {"what": what, "type": {"system": ENTITY_TYPE, "code": entity_type},
            "role": {"system": OBJECT_ROLE, "code": role}}


def _pathway_display(record: AuditRecord) -> str | None:
    """The pathway and the version the event was recorded under: "tcm-discharge v3" (the key alone when
    the event has no version)."""
    if record.pathway and record.pathway_version is not None:
        return f"{record.pathway} v{record.pathway_version}"
    return record.pathway


def _entities(record: AuditRecord) -> list[dict[str, Any]]:
    """The patient, the pathway instance, the task, the user or pathway an admin change concerns, and
    the event's own data (as a detail, JSON)."""
    entities = []
    patient_id = record.patient_id or (record.data.get("patient_id") if record.type in GRANT_EVENTS else None)
    if patient_id:
        entities.append(_entity("patient", str(patient_id), "1", "1"))  # person, patient
    if record.type in PATIENT_EVENTS or (record.type == RECORD_VIEWED and record.data.get("what") == "patient"):
        entities.append(_entity("patient-record", str(record.data.get("patient")), "1", "1"))
    if record.instance_id:
        entities.append(_entity("instance", record.instance_id, "2", "4", _pathway_display(record)))  # object, resource
    if record.task_id:
        entities.append(_entity("task", record.task_id, "2", "4"))
    user = record.data.get("user")
    if record.type in MAPPING and MAPPING[record.type][0] is SECURITY_ATTRIBUTES and user:
        entities.append(_entity("user", str(user), "1", "11"))  # person, security user entity
    elif record.instance_id is None and record.pathway:
        entities.append(_entity("pathway", record.pathway, "2", "5", _pathway_display(record)))  # master file
    entities.append({"type": {"system": ENTITY_TYPE, "code": "4"}, "description": "CarePath event data",
                     "detail": [{"type": "data", "valueString": json.dumps(record.data, default=str)}]})
    return entities
