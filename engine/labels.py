"""What people read for the product's own names: roles, history event types, recorded values and times.

Care teams read the pages and the printable report, not programmers: `clinical_lead` is "Clinical lead",
`task_claimed` is "Task claimed", `null` is "—", `true` is "Yes", an instant is a time in the care setting's
zone. Each table is here once; the web pages (api/web) and the report (usecases/instance_report.py) use it.
The JSON API, the CSV and the exports keep the raw names and ISO 8601 UTC.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, tzinfo
from typing import Any

from .identity import Role

ROLE_LABELS: dict[str, str] = {
    Role.CLINICAL_LEAD: "Clinical lead", Role.COORDINATOR: "Coordinator", Role.AUDITOR: "Auditor",
    Role.SUPERVISOR: "Supervisor", Role.ADMIN: "Administrator", Role.INTEGRATION: "Integration (a system)",
}

# Every type in model.EVENT_TYPES (a test keeps them whole), in words.
EVENT_LABELS: dict[str, str] = {
    "record_viewed": "Record viewed", "audit_log_used": "Audit trail searched or exported",
    "instance_started": "Episode started", "completed": "Episode completed", "cancelled": "Episode cancelled",
    "incident": "Problem stopped the episode", "incident_resolved": "Problem resolved", "retried": "Step retried",
    "call_bound": "Sub-pathway called", "measure_outcomes": "Quality measures recorded",
    "task_ready": "Task ready", "task_claimed": "Task claimed", "task_unclaimed": "Task given back",
    "task_assigned": "Task assigned", "task_delegated": "Task delegated", "task_resolved": "Delegated task resolved",
    "task_held": "Task put on hold", "task_resumed": "Task resumed", "task_draft_saved": "Task draft saved",
    "task_completed": "Task completed", "task_cancelled": "Task cancelled", "task_comment": "Comment on a task",
    "task_due_date_changed": "Task due date changed", "task_priority_changed": "Task priority changed",
    "task_released": "Task released", "task_reminder_alert": "Reminder sent",
    "task_overdue_alert": "Overdue alert sent",
    "task_alert_failed": "Alert could not be sent", "timer_scheduled": "Timer set", "timer_fired": "Timer fired",
    "timer_cancelled": "Timer cancelled", "timer_failed": "Timer failed", "timer_retry_scheduled": "Timer retry set",
    "message_awaited": "Waiting for a message", "message_received": "Message received",
    "message_wait_cancelled": "Stopped waiting for a message", "message_buffered": "Message kept until awaited",
    "message_refused": "Message refused", "notification_delivered": "Notification delivered",
    "notification_failed": "Notification not delivered", "pathway_deployed": "Pathway deployed",
    "pathway_retired": "Pathway version retired", "user_added": "User added",
    "user_groups_changed": "User's groups changed", "user_role_changed": "User's role changed",
    "user_deactivated": "User deactivated", "token_issued": "API token issued", "token_revoked": "API token revoked",
    "password_set": "Password set", "signed_in": "Signed in", "signed_out": "Signed out",
    "session_ended": "Session ended", "sign_in_locked": "Sign-in locked after failures",
    "break_glass_granted": "Emergency access granted", "break_glass_ended": "Emergency access ended early",
    "patient_updated": "Patient details updated", "patient_merged": "Patient records merged",
    "patient_unmerged": "Patient records unmerged", "inbox_message_reprocessed": "Inbox message reprocessed",
    "resources_imported": "Resource directory imported",
    "partner_added": "Partner organization added", "partner_updated": "Partner organization changed",
    "partner_secret_rotated": "Partner's signing secret replaced",
    "partner_deactivated": "Partner organization deactivated",
    "partner_activated": "Partner organization reactivated",
    "outbound_delivery_retried": "Delivery to a partner retried",
    "instance_migrated": "Episode moved to a new pathway version",
    "external_task_created": "Waiting for an external worker",
    "external_task_locked": "External worker took the task",
    "external_task_lock_extended": "External worker kept the task longer",
    "external_task_unlocked": "External task given back",
    "external_task_completed": "External worker completed the task",
    "external_task_failed": "External worker reported a failure",
    "external_task_bpmn_error": "External worker reported a business error",
    "external_task_cancelled": "External task no longer needed",
    "referral_sent": "Referral sent to a community organization", "referral_status_changed": "Referral status changed",
    "referral_outcome_recorded": "Referral outcome recorded",
    "referral_consent_withdrawn": "Patient withdrew consent to share with the organization",
}

# The part of a patient's record a read was of (audit.VIEWABLE), as the "who viewed" list says it.
RECORD_PART_LABELS: dict[str, str] = {
    "instance": "Episode", "task": "Task", "form": "Task form", "history": "Episode history",
    "measures": "Quality measures", "comments": "Comments", "report": "Printable report", "diagram": "Diagram",
    "case": "Patient's case (every episode)",
    "referral": "Referral",
}

MAX_WORDS = 300  # characters of one recorded value shown in a cell (the exports have them whole)
TIME_FORMAT = "%d %b %Y %H:%M"
DATE_FORMAT = "%d %b %Y"
_ISO = r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})"
_INSTANT = re.compile(f"^{_ISO}$")
_INSTANT_IN_TEXT = re.compile(rf"\b{_ISO}")


def role_label(role: object) -> str:
    """`clinical_lead` → "Clinical lead"; an unknown name in words all the same."""
    return ROLE_LABELS.get(str(role), key_label(str(role)))


def event_label(kind: object) -> str:
    """`task_claimed` → "Task claimed"."""
    return EVENT_LABELS.get(str(kind), key_label(str(kind)))


def record_part_label(part: object) -> str:
    """`instance` → "Episode": what a record read was of."""
    return RECORD_PART_LABELS.get(str(part), key_label(str(part)))


# Referral statuses (the Gravity Task's) and outcomes are hyphenated codes; these read as words.
REFERRAL_WORDS = {"entered-in-error": "Entered in error", "in-progress": "In progress", "on-hold": "On hold",
                  "got-help": "Got help", "couldnt-contact": "Couldn't contact", "not-eligible": "Not eligible",
                  "no-capacity": "No capacity", "no-longer-interested": "No longer interested",
                  "referred-elsewhere": "Referred elsewhere"}


def referral_words(code: str) -> str:
    """A referral's status or outcome in words: `got-help` → "Got help", `requested` → "Requested"."""
    return REFERRAL_WORDS.get(code) or key_label(code)


def key_label(key: str, titles: Mapping[str, str] | None = None) -> str:
    """A data key as a label: the form's title when it has one, else `follow_up_date` → "Follow up date"."""
    if titles and key in titles:
        return titles[key]
    words = key.replace("_", " ").replace(".", " ").strip()
    return words[:1].upper() + words[1:] if words else key


def schema_titles(schema: Any) -> dict[str, str]:
    """The field titles of a JSON Schema form (its top-level `properties`), by key."""
    properties = schema.get("properties") if isinstance(schema, Mapping) else None
    if not isinstance(properties, Mapping):
        return {}
    return {str(key): str(prop["title"]) for key, prop in properties.items()
            if isinstance(prop, Mapping) and isinstance(prop.get("title"), str) and prop["title"].strip()}


def labelled_values(data: Mapping[str, Any], zone: tzinfo | None = None,
                    titles: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """Recorded data as (label, value in words) pairs, for a definition list: start data, event details."""
    roles = {"role"} | ({"old", "new"} if data.get("field") == "role" else set())
    return [(key_label(str(key), titles),
             role_label(value) if key in roles and str(value) in ROLE_LABELS else value_words(value, zone))
            for key, value in data.items()]


def event_details(data: Mapping[str, Any], zone: tzinfo | None = None) -> tuple[str | None, list[tuple[str, str]]]:
    """A history event's data in words: the changed value ("Status: running → completed", when the event
    records one) and the other details as (label, value) pairs."""
    rest = dict(data)
    if "field" not in rest or not ("old" in rest or "new" in rest):
        return None, labelled_values(rest, zone)
    field = str(rest.pop("field"))
    (_, old), (_, new) = labelled_values({"field": field, "old": rest.pop("old", None),
                                          "new": rest.pop("new", None)}, zone)[1:]
    return f"{key_label(field)}: {old} → {new}", labelled_values(rest, zone)


def time_words(moment: datetime | None, zone: tzinfo) -> str:
    """An instant as a time in the care setting's zone (the page or report names the zone once)."""
    return moment.astimezone(zone).strftime(TIME_FORMAT) if moment else "—"


def value_words(value: Any, zone: tzinfo | None = None) -> str:
    """A recorded value in words: None "—", booleans Yes/No, an empty list or object "none", a list joined
    by commas, an object as "field: value" pairs, an ISO instant as a time in `zone`; cut at MAX_WORDS."""
    text = _words(value, zone, depth=0)
    return text if len(text) <= MAX_WORDS else text[:MAX_WORDS] + "…"


def _words(value: Any, zone: tzinfo | None, depth: int) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, datetime):
        return time_words(value, zone) if zone is not None and value.tzinfo else value.strftime(TIME_FORMAT)
    if isinstance(value, str):
        return _instant_words(value, zone) if zone is not None and _INSTANT.match(value) else value
    if depth > 4:
        return "…"
    if isinstance(value, Mapping) and set(value) == {"old", "new"}:  # a change recorded inside an event
        return f"{_words(value['old'], zone, depth + 1)} → {_words(value['new'], zone, depth + 1)}"
    if isinstance(value, Mapping):
        pairs = [f"{key_label(str(k))}: {_words(v, zone, depth + 1)}" for k, v in value.items()]
        return "; ".join(pairs) if pairs else "none"
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(_words(v, zone, depth + 1) for v in value) or "none"
    return str(value)


def instants_in_words(text: str, zone: tzinfo) -> str:
    """Free text recorded with ISO instants in it (a measure's detail recorded before details were worded)
    with each instant as a time in `zone`."""
    return _INSTANT_IN_TEXT.sub(lambda found: _instant_words(found.group(0), zone), text)


def _instant_words(text: str, zone: tzinfo) -> str:
    try:
        return time_words(datetime.fromisoformat(text.replace("Z", "+00:00")), zone)
    except ValueError:
        return text
