"""Starting, cancelling and retrying pathway instances."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.exc import IntegrityError

from ..application import CarePath
from ..bounds import check_json
from ..errors import Conflict, NotFound, Problem, ValidationFailed
from ..forms import seeded, validate_start_data
from ..identity import Principal, instance_scope
from ..model import InstanceStatus
from ..patients import PatientDetails
from ..persistence.tables import Instance, PathwayVersion
from ..persistence.unit_of_work import UnitOfWork
from ..queries import Page, instance_history, instance_is_visible, instance_view
from ..rules import INSTANCE_RULES, Rule, check_role
from ..runtime.workflow import RunningWorkflow
from ..views import InstanceView
from .after_steps import after_engine_steps
from .change_answers import answer_of_change
from .measures import record_measure_outcomes
from .patients import patient_of_start
from .specs import latest_version, resolve_specs
from .store import (
    changes_of,
    load_workflow,
    with_conflict_retries,
)
from .transitions import locked_instance

MAX_KEY_LENGTH = 255


def start_instance(app: CarePath, principal: Principal, pathway_key: str, *, business_key: str,
                   patient_id: str | None = None, data: dict[str, Any] | None = None,
                   version: int | None = None, patient: PatientDetails | None = None) -> InstanceView:
    """Start an episode; its patient (named by `patient_id` and/or `patient`) is found or created in the
    same transaction."""
    check_role(INSTANCE_RULES["start"], principal)
    check_json(app, data, "data")
    _check_key("business_key", business_key)
    if patient_id is not None:
        _check_key("patient_id", patient_id)

    def attempt() -> InstanceView:
        with UnitOfWork(app) as uow:
            pathway = _startable_version(uow, pathway_key, version)
            instance = begin_instance(uow, pathway, business_key, patient_id, data or {}, principal.name,
                                      patient=patient)
            answer = answer_of_change(uow, instance, principal)
            uow.commit()
            return answer

    return with_conflict_retries(app, attempt)


def begin_instance(uow: UnitOfWork, pathway: PathwayVersion, business_key: str, patient_id: str | None,
                   data: dict[str, Any], actor: str, *, message: tuple[str, dict[str, Any]] | None = None,
                   patient: PatientDetails | None = None) -> Instance:
    """Create, run to the first wait and save an instance inside the caller's transaction, for the patient
    `patient_id` and `patient` name (found or created here)."""
    validate_start_data(pathway.key, pathway.start_data, data)  # every start path, before anything is stored
    app = uow.app
    resolved = resolve_specs(app, uow.session, pathway, {})
    patient_row, patient_id = patient_of_start(uow, patient_id, patient)
    now = app.now()
    instance = Instance(id=str(uuid.uuid4()), pathway_version_id=pathway.id, pathway_key=pathway.key,
                        business_key=business_key, patient_id=patient_id,
                        patient_ref=patient_row.id if patient_row else None,
                        status=InstanceStatus.RUNNING.value, state="", data={}, incident=None,
                        call_bindings={}, created_at=now, updated_at=now, started_by=actor)
    uow.session.add(instance)  # inserted with its state by the save below, which the unique key may refuse
    uow.new_chain(instance.id)
    seed = {**seeded(pathway.start_data, data), "business_key": business_key,
            **({"patient_id": patient_id} if patient_id else {})}
    workflow = RunningWorkflow.create(resolved.spec, resolved.subprocess_specs, resolved.family,
                                      app.script_engine, seed, business_key)
    workflow.bound_versions = resolved.bound_versions
    workflow.task_rules = resolved.task_rules
    workflow.time_context = app.time_context(resolved.time_settings)
    uow.record("instance_started", actor, instance_id=instance.id, pathway_version_id=pathway.id,
               data={"pathway": pathway.key, "version": pathway.version, "business_key": business_key,
                     "patient_id": patient_id, "data": data})
    workflow.run(app.clock)
    if message is not None:
        name, payload = message
        workflow.deliver_message(name, payload, app.clock, business_key)
        uow.record("message_received", actor, instance_id=instance.id, pathway_version_id=pathway.id,
                   data={"name": name, "data": payload, "start": True})
    duplicate = f"pathway '{pathway.key}' already has an active instance for business key '{business_key}'"
    try:
        after_engine_steps(uow, instance, workflow, actor)
    except IntegrityError as exc:  # another active instance has the business key (or a concurrent start)
        if "uq_instances_active_business_key" not in str(exc) and "instances.business_key" not in str(exc):
            raise
        raise Conflict(duplicate) from None
    return instance


def _startable_version(uow: UnitOfWork, key: str, version: int | None) -> PathwayVersion:
    if version is None:
        found = latest_version(uow.session, key)
        if found is None:
            if latest_version(uow.session, key, include_retired=True) is not None:
                raise Conflict(f"every version of pathway '{key}' is retired; deploy a new one")
            raise NotFound(f"pathway '{key}' is not deployed")
        return found
    from sqlalchemy import select

    found = uow.session.scalars(select(PathwayVersion).where(
        PathwayVersion.key == key, PathwayVersion.version == version)).first()
    if found is None:
        raise NotFound(f"pathway '{key}' has no version {version}")
    if found.retired:
        raise Conflict(f"version {version} of pathway '{key}' is retired and starts no new instances")
    return found


def _check_key(field: str, value: Any) -> None:
    message = None
    if not isinstance(value, str) or not value.strip():
        message = f"{field} must be a non-empty string"
    elif len(value) > MAX_KEY_LENGTH:
        message = f"{field} is longer than {MAX_KEY_LENGTH} characters"
    if message:  # located, so that a form shows it at its field
        raise ValidationFailed(message, [Problem(message, field=field)])


def cancel_instance(app: CarePath, principal: Principal, instance_id: str, reason: str) -> InstanceView:
    rule = INSTANCE_RULES["cancel"]
    check_role(rule, principal)
    if not isinstance(reason, str) or not reason.strip():
        raise ValidationFailed("a reason is required to cancel an instance")

    def attempt() -> InstanceView:
        with UnitOfWork(app) as uow:
            instance = locked_instance(uow, principal, rule, instance_id)
            end_cancelled(uow, instance, rule, principal.name, reason)
            answer = answer_of_change(uow, instance, principal)
            uow.commit()
            return answer

    return with_conflict_retries(app, attempt)


def end_cancelled(uow: UnitOfWork, instance: Instance, rule: Rule, actor: str, reason: str) -> None:
    """Cancel a locked instance inside the caller's transaction, under `rule` (already checked)."""
    workflow = load_workflow(uow, instance)
    workflow.cancel()
    workflow.incident = None
    old, instance.status = instance.status, rule.to[0].value
    uow.record(rule.event or rule.action, actor, instance_id=instance.id,
               pathway_version_id=instance.pathway_version_id,
               data={"reason": reason, "field": rule.field, "old": old, "new": instance.status})
    after_engine_steps(uow, instance, workflow, actor)
    instance.ended_at = uow.app.now()
    record_measure_outcomes(uow, instance, actor)


def retry_instance(app: CarePath, principal: Principal, instance_id: str,
                   data: dict[str, Any] | None = None) -> InstanceView:
    """Run the failed step again, optionally with corrected data merged into it first."""
    rule = INSTANCE_RULES["retry"]
    check_role(rule, principal)
    check_json(app, data, "data")
    if data is not None and not isinstance(data, dict):
        raise ValidationFailed("retry data must be a JSON object")

    def attempt() -> InstanceView:
        with UnitOfWork(app) as uow:
            instance = locked_instance(uow, principal, rule, instance_id)
            workflow = load_workflow(uow, instance)
            current = instance.data or {}
            uow.record(rule.event or rule.action, principal.name, instance_id=instance.id,
                       pathway_version_id=instance.pathway_version_id,
                       data={"incident": instance.incident, "data": data or {},
                             "changes": changes_of(current, data or {})})
            workflow.retry(app.clock, data or {})
            after_engine_steps(uow, instance, workflow, principal.name)
            answer = answer_of_change(uow, instance, principal)
            uow.commit()
            return answer

    return with_conflict_retries(app, attempt)


def get_instance_history(app: CarePath, instance_id: str, principal: Principal, *, limit: int = 200,
                         offset: int = 0) -> Page:
    """Who did what to the instance and when, oldest first; only for those who may read the instance."""
    with app.db.read() as session:
        if not instance_is_visible(session, instance_id, instance_scope(principal)):
            raise NotFound(f"instance {instance_id} does not exist")
        return instance_history(session, instance_id, limit=limit, offset=offset, now=app.now())


def get_instance_view(app: CarePath, instance_id: str, principal: Principal | None = None, *,
                      actions_for: Principal | None = None) -> InstanceView:
    """The instance, if it exists and the principal (when given) may read it; else NotFound. Its `actions`
    and its open tasks' are those of the principal (or of `actions_for`, who was just allowed to act)."""
    with app.db.read() as session:
        visible = principal is None or instance_is_visible(session, instance_id, instance_scope(principal))
        view = instance_view(session, instance_id, app.now(), principal or actions_for) if visible else None
    if view is None:
        raise NotFound(f"instance {instance_id} does not exist")
    return view
