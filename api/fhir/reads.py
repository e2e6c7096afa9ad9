"""What each FHIR resource type answers: its read, its search and its search parameters, in one table
(`RESOURCES`). The routes (routes.py) and the CapabilityStatement (capability.py) are both built from it, so
what /fhir/metadata says is what the server does.

Visibility is the JSON API's: a task as `GET /api/tasks/{id}` and the worklist decide it (identity.task_scope),
an episode as `GET /api/instances/{id}` and the instance list (identity.instance_scope). A read of one task or
episode is recorded in the audit trail as the JSON API's read is (`record_access`); searches, like the JSON
API's lists, record nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from carepath.engine.application import CarePath
from carepath.engine.errors import BadRequest, NotFound
from carepath.engine.fhir_queries import (
    EpisodeSearch,
    PatientSearch,
    TaskSearch,
    VersionSearch,
    episode_patients,
    episode_tasks,
    hold_reasons,
    last_changes,
    merged_into,
    patient_identifiers,
    readable_patient,
    search_episodes,
    search_patients,
    search_tasks,
    search_versions,
    versions_by_id,
)
from carepath.engine.identity import Principal, acts_only_as_integration, instance_scope, task_scope
from carepath.engine.persistence.tables import PathwayVersion
from carepath.engine.queries import readable_instance, visible_task
from carepath.engine.rules import sees_unrouted
from carepath.engine.usecases.access import Client, record_access, record_patient_access

from . import referrals as rf
from . import search_params as sp
from .resources import (
    CAREPLAN_STATUS,
    CAREPLAN_STATUS_CODES,
    PATHWAY_URL_PREFIX,
    PLAN_STATUS,
    PLAN_STATUS_CODES,
    STEP_SYSTEM_PREFIX,
    TASK_STATUS,
    TASK_STATUS_CODES,
    careplan_resource,
    patient_resource,
    plan_definition_resource,
    states_for,
    task_resource,
)

Resource = dict[str, Any]


@dataclass(frozen=True)
class Reader:
    """Who reads, through which engine, from where (for the audit trail)."""

    engine: CarePath
    user: Principal
    client: Client


@dataclass(frozen=True)
class FhirResource:
    """One resource type this server serves: read by id, and search with exactly these parameters."""

    name: str
    documentation: str
    params: tuple[sp.SearchParam, ...]
    read: Callable[[Reader, str], Resource]
    search: Callable[[Reader, dict[str, list[str]], sp.Paging], tuple[list[Resource], bool]]
    integration: bool = False  # integration accounts read it too (their organization's referrals)
    writes: tuple[str, ...] = ()  # interactions beside read and search (referral_updates.py)


# --- Task -------------------------------------------------------------------------------------------------

def read_task(reader: Reader, task_id: str) -> Resource:
    """A human task, else a referral's Task (api/fhir/referrals.py)."""
    engine, user = reader.engine, reader.user
    with engine.db.read() as session:  # an integration account has no human tasks
        view = None if acts_only_as_integration(user) else visible_task(session, task_id, task_scope(user),
                                                                          sees_unrouted(user))
        if view is not None:
            changed = last_changes(session, [view])[view.id]
            patient = episode_patients(session, [view.instance_id]).get(view.instance_id)
            held = hold_reasons(session, [view]).get(view.id)
    if view is None:
        return rf.read_referral_task(reader, task_id)
    record_access(engine, user, "task", view.instance_id, view.id, reader.client)
    return task_resource(view, changed, patient, engine.config.patient_id_system, held)


def _steps(value: str) -> tuple[tuple[str | None, str], ...]:
    steps = []
    for item in sp.alternatives("business-status", value):
        system, _, code = item.rpartition("|")
        if system and not system.startswith(STEP_SYSTEM_PREFIX):
            raise BadRequest(f"search parameter 'business-status': system '{system[:80]}' is not "
                                f"{STEP_SYSTEM_PREFIX}PATHWAY")
        steps.append((system.removeprefix(STEP_SYSTEM_PREFIX) or None, code))
    return tuple(steps)


def search_task(reader: Reader, values: dict[str, list[str]], page: sp.Paging) -> tuple[list[Resource], bool]:
    if rf.wants_referrals(values) or acts_only_as_integration(reader.user):
        return rf.search_referral_tasks(reader, values, page)
    status, patient, owner, step = (sp.one(values, n) for n in ("status", "patient", "owner", "business-status"))
    search = TaskSearch(
        states=states_for(TASK_STATUS, sp.codes("status", status, TASK_STATUS_CODES)) if status else None,
        patient=sp.reference("patient", patient, "Patient") if patient else None,
        assignee=sp.reference("owner", owner, "Practitioner") if owner else None,
        steps=_steps(step) if step else None,
        changed=tuple(b for v in values.get("_lastUpdated", []) for b in sp.date_bounds("_lastUpdated", v)))
    with reader.engine.db.read() as session:
        views, more = search_tasks(session, search, task_scope(reader.user), limit=page.count, offset=page.offset)
        changed = last_changes(session, views)
        patients = episode_patients(session, (v.instance_id for v in views))
        held = hold_reasons(session, views)
    system = reader.engine.config.patient_id_system
    return [task_resource(v, changed[v.id], patients.get(v.instance_id), system, held.get(v.id))
            for v in views], more


TASK = FhirResource("Task", "A human task of an episode, shaped as the FHIR Workflow module does; or a "
                   "referral's Task (Gravity SDOH Clinical Care, code fulfill): searched with code=fulfill, focus "
                   "or owner=Organization/ID, updated by the owning organization with PUT", (
    sp.SearchParam("patient", "reference", "the patient the task is for (Patient/ID or ID), and the patients "
                   "merged with it"),
    sp.SearchParam("status", "token", "task status codes, comma-separated (any matches)"),
    sp.SearchParam("owner", "reference", "who holds the task: a user name (Practitioner/NAME or NAME); a "
                   "referral Task's organization (Organization/ID)"),
    *rf.REFERRAL_TASK_PARAMS,
    sp.SearchParam("business-status", "token",
                   f"the step: its BPMN element id, optionally as {STEP_SYSTEM_PREFIX}PATHWAY|ID; comma-separated"),
    sp.SearchParam("_lastUpdated", "date", "when the task last changed, with prefix eq, ge, gt, le or lt; "
                   "give it twice for a range", repeats=True),
    *sp.PAGING), read_task, search_task, integration=True, writes=("update", "patch"))


# --- CarePlan ---------------------------------------------------------------------------------------------

def read_careplan(reader: Reader, instance_id: str) -> Resource:
    engine, user = reader.engine, reader.user
    with engine.db.read() as session:
        row = readable_instance(session, instance_id, instance_scope(user))
        if row is None:
            raise NotFound(f"CarePlan/{instance_id} does not exist")
        version = session.get(PathwayVersion, row.pathway_version_id)
        tasks = episode_tasks(session, [row.id])[row.id]
        patient = episode_patients(session, [row.id]).get(row.id)
    record_access(engine, user, "instance", row.id, client=reader.client)
    return careplan_resource(row, version, tasks, patient, engine.config.patient_id_system)


def _canonicals(value: str) -> tuple[tuple[str, int | None], ...]:
    """Pathway versions named by canonical URLs (`url` or `url|version`); another server's match nothing."""
    found: list[tuple[str, int | None]] = []
    for item in sp.alternatives("instantiates-canonical", value):
        url, _, version = item.partition("|")
        if not url.startswith(PATHWAY_URL_PREFIX) or (version and not version.isdigit()):
            continue
        found.append((url.removeprefix(PATHWAY_URL_PREFIX), int(version) if version else None))
    return tuple(found)


def search_careplan(reader: Reader, values: dict[str, list[str]], page: sp.Paging) -> tuple[list[Resource], bool]:
    status, patient, canonical = (sp.one(values, n) for n in ("status", "patient", "instantiates-canonical"))
    search = EpisodeSearch(
        statuses=states_for(CAREPLAN_STATUS, sp.codes("status", status, CAREPLAN_STATUS_CODES)) if status else None,
        patient=sp.reference("patient", patient, "Patient") if patient else None,
        versions=_canonicals(canonical) if canonical else None)
    with reader.engine.db.read() as session:
        rows, more = search_episodes(session, search, instance_scope(reader.user), limit=page.count,
                                     offset=page.offset)
        versions = versions_by_id(session, (r.pathway_version_id for r in rows))
        tasks = episode_tasks(session, (r.id for r in rows))
        patients = episode_patients(session, (r.id for r in rows))
        system = reader.engine.config.patient_id_system
        return [careplan_resource(r, versions.get(r.pathway_version_id), tasks[r.id], patients.get(r.id), system)
                for r in rows], more


CAREPLAN = FhirResource("CarePlan", "An episode: one patient's run of a pathway version", (
    sp.SearchParam("patient", "reference", "the patient the episode is for (Patient/ID or ID), and the patients "
                   "merged with it"),
    sp.SearchParam("status", "token", "care plan status codes, comma-separated (any matches)"),
    sp.SearchParam("instantiates-canonical", "reference",
                   f"the pathway: {PATHWAY_URL_PREFIX}KEY (any version) or {PATHWAY_URL_PREFIX}KEY|VERSION"),
    *sp.PAGING), read_careplan, search_careplan)


# --- PlanDefinition ---------------------------------------------------------------------------------------

def read_plan_definition(reader: Reader, version_id: str) -> Resource:
    with reader.engine.db.read() as session:
        version = session.get(PathwayVersion, int(version_id)) if version_id.isdigit() and len(version_id) <= 9 \
            else None
        if version is None:
            raise NotFound(f"PlanDefinition/{version_id} does not exist")
        return plan_definition_resource(version)


def search_plan_definition(reader: Reader, values: dict[str, list[str]],
                           page: sp.Paging) -> tuple[list[Resource], bool]:
    name, version, status, url = (sp.one(values, n) for n in ("name", "version", "status", "url"))
    known_version = version is None or (version.isdigit() and len(version) <= 9)
    if not known_version or (url is not None and not url.startswith(PATHWAY_URL_PREFIX)):
        return [], False  # a version or url no pathway of this server has
    statuses = sp.codes("status", status, PLAN_STATUS_CODES) if status else None
    retired = [r for r, code in PLAN_STATUS.items() if statuses is None or code in statuses]
    if not retired:
        return [], False
    search = VersionSearch(key=url.removeprefix(PATHWAY_URL_PREFIX) if url else None, key_prefix=name,
                           version=int(version) if version else None,
                           retired=retired[0] if len(retired) == 1 else None)
    with reader.engine.db.read() as session:
        rows, more = search_versions(session, search, limit=page.count, offset=page.offset)
        return [plan_definition_resource(r) for r in rows], more


PLAN_DEFINITION = FhirResource("PlanDefinition", "A pathway version (immutable once deployed)", (
    sp.SearchParam("name", "string", "the pathway key, starting with this text (any case)"),
    sp.SearchParam("version", "token", "the version number"),
    sp.SearchParam("status", "token", "active or retired (comma-separated: any matches)"),
    sp.SearchParam("url", "uri", f"the canonical url, {PATHWAY_URL_PREFIX}KEY"),
    *sp.PAGING), read_plan_definition, search_plan_definition)


# --- Patient ----------------------------------------------------------------------------------------------

def _patients(reader: Reader, rows: list[Any]) -> list[Resource]:
    with reader.engine.db.read() as session:
        identifiers = patient_identifiers(session, (r.id for r in rows))
        merged = merged_into(session, (r.id for r in rows))
    return [patient_resource(r, identifiers[r.id], merged[r.id]) for r in rows]


def read_patient(reader: Reader, patient_id: str) -> Resource:
    """Who may read a patient is who may read one of its episodes, or of the patients merged with it."""
    with reader.engine.db.read() as session:
        row = readable_patient(session, patient_id, instance_scope(reader.user))
    if row is None:
        raise NotFound(f"Patient/{patient_id} does not exist")
    record_patient_access(reader.engine, reader.user, row.id, reader.client)
    return _patients(reader, [row])[0]


def _identifier(value: str) -> tuple[str | None, str]:
    system, bar, code = value.rpartition("|")
    if not code:
        raise BadRequest("search parameter 'identifier': write it as system|value or value")
    return (system or None) if bar else None, code


def search_patient(reader: Reader, values: dict[str, list[str]], page: sp.Paging) -> tuple[list[Resource], bool]:
    identifier, name = sp.one(values, "identifier"), sp.one(values, "name")
    born = tuple(b for v in values.get("birthdate", []) for b in sp.date_bounds("birthdate", v, dates_only=True))
    search = PatientSearch(identifier=_identifier(identifier) if identifier else None, name=name, born=born)
    with reader.engine.db.read() as session:
        rows, more = search_patients(session, search, instance_scope(reader.user), limit=page.count,
                                     offset=page.offset)
    return _patients(reader, rows), more


PATIENT = FhirResource("Patient", "Who episodes are for: identifiers, name, birth date, phone, address", (
    sp.SearchParam("identifier", "token", "system|value, or a value in any system; a merged patient's identifier "
                   "finds the patient that replaced it"),
    sp.SearchParam("name", "string", "the start of the family or given name, any case"),
    sp.SearchParam("birthdate", "date", "the birth date (YYYY-MM-DD, YYYY-MM or YYYY) with prefix eq, ge, gt, le "
                   "or lt; give it twice for a range", repeats=True),
    *sp.PAGING), read_patient, search_patient)


SERVICE_REQUEST = FhirResource("ServiceRequest", "A referral to a community organization (Gravity SDOH Clinical "
                               "Care): the need's domain, for the patient, with consent", rf.REQUEST_PARAMS,
                               rf.read_request, rf.search_requests, integration=True)

RESOURCES: tuple[FhirResource, ...] = (PATIENT, TASK, CAREPLAN, PLAN_DEFINITION, SERVICE_REQUEST)
