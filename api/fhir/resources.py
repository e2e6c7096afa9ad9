"""CarePath's tasks, episodes and pathway versions as FHIR R4 resources, and the tables that map CarePath's
states to FHIR codes (each mapping written once; searches read the same tables backwards)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from carepath.engine.model import InstanceStatus, TaskState
from carepath.engine.persistence.tables import Instance, PathwayVersion, Patient
from carepath.engine.views import TaskView

# Identifier and code systems CarePath names itself (URNs: no address to resolve).
USER_SYSTEM = "urn:carepath:user"
GROUP_SYSTEM = "urn:carepath:group"
BUSINESS_KEY_SYSTEM = "urn:carepath:business-key"
PATHWAY_URL_PREFIX = "urn:carepath:pathway:"  # + pathway key: a PlanDefinition's canonical url
STEP_SYSTEM_PREFIX = "urn:carepath:step:"  # + pathway key: businessStatus codes are the step's BPMN element id
PLAN_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/plan-definition-type"

# FHIR Task.status for each CarePath task state. No CarePath state is `failed`: a failing step puts its
# episode in incident (CarePlan on-hold) and leaves its tasks as they were.
TASK_STATUS: dict[TaskState, str] = {
    TaskState.READY: "ready", TaskState.IN_PROGRESS: "in-progress", TaskState.ON_HOLD: "on-hold",
    TaskState.COMPLETED: "completed", TaskState.CANCELLED: "cancelled"}
TASK_STATUS_CODES = ("draft", "requested", "received", "accepted", "rejected", "ready", "cancelled", "in-progress",
                     "on-hold", "failed", "completed", "entered-in-error")  # FHIR value set task-status

# FHIR CarePlan.status for each episode status.
CAREPLAN_STATUS: dict[InstanceStatus, str] = {
    InstanceStatus.RUNNING: "active", InstanceStatus.INCIDENT: "on-hold",
    InstanceStatus.COMPLETED: "completed", InstanceStatus.CANCELLED: "revoked"}
CAREPLAN_STATUS_CODES = ("draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown")

# FHIR PlanDefinition.status for a version: retired, else active.
PLAN_STATUS: dict[bool, str] = {False: "active", True: "retired"}
PLAN_STATUS_CODES = ("draft", "active", "retired", "unknown")

# FHIR request priority for CarePath's 0-100 task priority (default 50): the first row whose floor it reaches.
TASK_PRIORITY: tuple[tuple[int, str], ...] = ((90, "stat"), (75, "asap"), (60, "urgent"), (0, "routine"))


def states_for(table: dict[Any, str], fhir_codes: Sequence[str]) -> tuple[str, ...]:
    """The CarePath states a search for these FHIR codes matches (none, for a code no state maps to)."""
    return tuple(str(state.value) for state, code in table.items() if code in fhir_codes)


def priority_code(priority: int) -> str:
    return next(code for floor, code in TASK_PRIORITY if priority >= floor)


def instant(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _clean(resource: dict[str, Any]) -> dict[str, Any]:
    """Drops empty elements (FHIR allows no nulls, empty strings or empty lists)."""
    return {k: v for k, v in resource.items() if v not in (None, "", [], {})}


def patient_reference(patient: str | None, patient_id: str | None, system: str) -> dict[str, Any] | None:
    """The patient (as it stands now: the survivor of any merge), and the identifier the episode was started
    with (its free-text patient id, in the deployment's default system)."""
    if not patient and not patient_id:
        return None
    return _clean({"reference": patient and f"Patient/{patient}", "type": "Patient",
                   "identifier": patient_id and {"system": system, "value": patient_id}})


def user_reference(name: str) -> dict[str, Any]:
    return {"type": "Practitioner", "identifier": {"system": USER_SYSTEM, "value": name}, "display": name}


def careplan_reference(instance_id: str, business_key: str | None) -> dict[str, Any]:
    return _clean({"reference": f"CarePlan/{instance_id}", "display": business_key and f"Episode {business_key}"})


def canonical(version: PathwayVersion) -> str:
    return f"{PATHWAY_URL_PREFIX}{version.key}|{version.version}"


def task_resource(task: TaskView, last_changed: datetime, patient: str | None, patient_system: str,
                  hold_reason: str | None = None) -> dict[str, Any]:
    """A human task as the FHIR Workflow module shapes it (`statusReason`: why it is on hold)."""
    episode = careplan_reference(task.instance_id, task.business_key)
    return _clean({
        "resourceType": "Task", "id": task.id, "meta": {"lastUpdated": instant(last_changed)},
        "basedOn": [episode], "status": TASK_STATUS[TaskState(task.state)],
        "statusReason": {"text": hold_reason} if hold_reason else None,
        "businessStatus": {"coding": [{"system": f"{STEP_SYSTEM_PREFIX}{task.pathway_key}", "code": task.element_id,
                                       "display": task.name}], "text": task.name},
        "intent": "order", "priority": priority_code(task.priority), "description": task.documentation,
        "focus": episode, "for": patient_reference(patient, task.patient_id, patient_system),
        "executionPeriod": _clean({"start": instant(task.created_at), "end": instant(task.completed_at)}),
        "authoredOn": instant(task.created_at), "lastModified": instant(last_changed),
        "owner": user_reference(task.assignee) if task.assignee else None,
        "performerType": [{"coding": [{"system": GROUP_SYSTEM, "code": group}], "text": group}
                          for group in task.candidate_groups],
        "restriction": {"period": {"end": instant(task.due_date)}} if task.due_date else None,
    })


def careplan_resource(instance: Instance, version: PathwayVersion | None, task_ids: Sequence[str],
                      patient: str | None, patient_system: str) -> dict[str, Any]:
    """An episode: the plan its pathway version instantiates, its tasks as activities."""
    return _clean({
        "resourceType": "CarePlan", "id": instance.id, "meta": {"lastUpdated": instant(instance.updated_at)},
        "identifier": [{"system": BUSINESS_KEY_SYSTEM, "value": instance.business_key}],
        "instantiatesCanonical": [canonical(version)] if version else None,
        "status": CAREPLAN_STATUS[InstanceStatus(instance.status)], "intent": "plan",
        "title": (version.name or version.key) if version else None,
        "subject": patient_reference(patient, instance.patient_id, patient_system) or {"display": "no patient"},
        "period": _clean({"start": instant(instance.created_at), "end": instant(instance.ended_at)}),
        "created": instant(instance.created_at),
        "activity": [{"reference": {"reference": f"Task/{task_id}"}} for task_id in task_ids],
    })


def plan_definition_resource(version: PathwayVersion) -> dict[str, Any]:
    """A pathway version: its canonical url and version, title, status and description."""
    return _clean({
        "resourceType": "PlanDefinition", "id": str(version.id), "meta": {"lastUpdated": instant(version.deployed_at)},
        "url": f"{PATHWAY_URL_PREFIX}{version.key}", "version": str(version.version), "name": version.key,
        "title": version.name or version.key,
        "type": {"coding": [{"system": PLAN_TYPE_SYSTEM, "code": "workflow-definition"}]},
        "status": PLAN_STATUS[version.retired], "date": instant(version.deployed_at),
        "description": version.documentation,
    })


def patient_resource(row: Patient, identifiers: Sequence[tuple[str, str]], merged: Sequence[str]) -> dict[str, Any]:
    """A patient: identifiers, name, birth date, phone and address (nothing more is kept); a merged patient is
    inactive and `replaced-by` its survivor, which `replaces` it."""
    name = _clean({"family": row.family, "given": [row.given] if row.given else None})
    links = [{"other": {"reference": f"Patient/{row.merged_into}"}, "type": "replaced-by"}] if row.merged_into else []
    links += [{"other": {"reference": f"Patient/{other}"}, "type": "replaces"} for other in merged]
    return _clean({
        "resourceType": "Patient", "id": row.id, "meta": {"lastUpdated": instant(row.updated_at)},
        "identifier": [{"system": system, "value": value} for system, value in identifiers],
        "active": row.merged_into is None, "name": [name] if name else None,
        "telecom": [{"system": "phone", "value": row.phone}] if row.phone else None,
        "birthDate": row.birth_date.isoformat() if row.birth_date else None,
        "address": [{"text": row.address}] if row.address else None, "link": links,
    })
