"""Loading an instance for a change and saving it back with its projections and history."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import bindparam, inspect, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import undefer
from sqlalchemy.orm.exc import StaleDataError

from ..application import CarePath
from ..errors import Conflict, NotFound
from ..model import Incident, InstanceStatus, Snapshot
from ..persistence.tables import Instance, PathwayVersion, Task
from ..persistence.unit_of_work import UnitOfWork
from ..rules import INSTANCE_RULES, engine_step
from ..runtime.workflow import RunningWorkflow
from .measure_states import declared_measures, project_on_commit
from .measures import record_measure_outcomes
from .projections import sync_projections
from .specs import resolve_specs

T = TypeVar("T")


def with_conflict_retries(app: CarePath, action: Callable[[], T]) -> T:
    """Run a whole transaction again when another process changed the same instance first."""
    last: Exception | None = None
    for _ in range(app.config.conflict_retries):
        try:
            return action()
        except StaleDataError as exc:
            last = exc
        except OperationalError as exc:
            if not is_serialization_failure(exc):
                raise
            last = exc
        except IntegrityError as exc:  # another writer appended to the same history chain first
            if "uq_events_chain_seq" not in str(exc) and "events.chain, events.seq" not in str(exc):
                raise
            last = exc
    raise Conflict("the instance was changed by another request at the same time; try again") from last


def is_serialization_failure(exc: OperationalError) -> bool:
    code = getattr(exc.orig, "sqlstate", None)
    return code in ("40001", "40P01") or "database is locked" in str(exc)


def lock_instance(uow: UnitOfWork, instance_id: str) -> Instance:
    """The instance row, locked for this transaction; with its (deferred) state in the same statement
    when this process has no cached workflow for it, as after a restart or in another worker."""
    options = [] if instance_id in uow.app.workflows else [undefer(Instance.state)]
    instance = uow.session.get(Instance, instance_id, with_for_update=True, populate_existing=True,
                               options=options)
    if instance is None:
        raise NotFound(f"instance {instance_id} does not exist")
    return instance


# Built once (with the stored state for a workflow not in the cache): every completion runs one.
_LOCK_INSTANCE_AND_TASK = (
    select(Instance, Task).join(Task, Task.instance_id == Instance.id)
    .where(Instance.id == bindparam("instance_id"), Task.id == bindparam("task_id")).with_for_update()
    .execution_options(populate_existing=True))
_LOCK_INSTANCE_WITH_STATE_AND_TASK = _LOCK_INSTANCE_AND_TASK.options(undefer(Instance.state))


def lock_instance_and_task(uow: UnitOfWork, instance_id: str, task_id: str) -> tuple[Instance, Task]:
    """`lock_instance`, and the task's row locked in the same statement (a completion changes both): on
    PostgreSQL the rows are locked in the order of the FROM list, the instance first, as `lock_instance`
    then `load_task` would."""
    query = _LOCK_INSTANCE_AND_TASK if instance_id in uow.app.workflows else _LOCK_INSTANCE_WITH_STATE_AND_TASK
    row = uow.session.execute(query, {"instance_id": instance_id, "task_id": task_id}).first()
    if row is None:
        raise NotFound(f"task {task_id} of instance {instance_id} does not exist")
    return row[0], row[1]


def load_workflow(uow: UnitOfWork, instance: Instance) -> RunningWorkflow:
    app = uow.app
    cached = app.workflows.take(instance.id)
    resolved = resolve_specs(app, uow.session, instance.pathway_version_id, instance.call_bindings)
    if cached is not None and cached[0] == instance.lock_version:
        workflow: RunningWorkflow = cached[1]
    else:
        workflow = RunningWorkflow.restore(instance.state, resolved.spec, resolved.subprocess_specs,
                                           resolved.family, app.script_engine, instance.business_key,
                                           _incident_from_dict(instance.incident))
    workflow.bound_versions = resolved.bound_versions
    workflow.task_rules = resolved.task_rules
    workflow.time_context = app.time_context(resolved.time_settings)
    return workflow


def save_workflow(uow: UnitOfWork, instance: Instance, workflow: RunningWorkflow, actor: str,
                  *, completed_task_id: str | None = None) -> Snapshot:
    """State, projections and history from the engine's snapshot, which is returned; the workflow goes back
    to the cache after commit. Only saves: use cases call it through `after_steps.after_engine_steps`."""
    now = uow.app.now()
    snapshot = workflow.snapshot(now)
    previous = instance.status
    if previous != InstanceStatus.CANCELLED:
        instance.status = snapshot.status.value
    instance.state = workflow.dump()
    instance.data = snapshot.data
    instance.incident = _incident_dict(snapshot.incident)
    instance.updated_at = now
    _record_call_bindings(uow, instance, workflow, actor)
    sync_projections(uow, instance, snapshot, actor, completed_task_id, workflow.completed_among)
    if declared_measures(uow.app, uow.session, instance.pathway_version_id):
        project_on_commit(uow, instance)
    if instance.status != previous:
        _record_status_change(uow, instance, previous, actor, snapshot.incident)
    app = uow.app
    if uow.batched:  # the batch's one flush writes this instance with the others (no savepoints there)
        key = instance.id
        uow.after_commit(lambda: _cache_flushed(app, key, instance, workflow))
        return snapshot
    uow.session.flush()
    # Read now: after a later savepoint of the same transaction rolls back, the instance object is
    # expired and cannot be read once the session has closed; the database keeps this version.
    key, version = instance.id, instance.lock_version

    def cache_after_commit() -> None:
        app.workflows.put(key, (version, workflow))

    uow.after_commit(cache_after_commit)
    return snapshot


def _cache_flushed(app: CarePath, key: str, instance: Instance, workflow: RunningWorkflow) -> None:
    """Cache the workflow with the version its instance's row was last flushed with (it is committed)."""
    version = inspect(instance).dict.get("lock_version")  # never a load: the session is closed
    if version is not None:
        app.workflows.put(key, (version, workflow))


def changes_of(before: dict[str, Any], after: dict[str, Any], *, replaced: bool = False) -> dict[str, Any]:
    """{field: {"old", "new"}} for each field `after` sets to another value than `before` had (absent: None);
    with `replaced`, `after` replaces `before` entirely, so fields it drops are changes to None too."""
    fields = set(after) | (set(before) if replaced else set())
    return {f: {"old": before.get(f), "new": after.get(f)} for f in sorted(fields) if before.get(f) != after.get(f)
            or (f in before) != (f in after)}


def _incident_from_dict(data: dict[str, Any] | None) -> Incident | None:
    if not data:
        return None
    return Incident(message=data.get("message", ""), element_id=data.get("element_id"),
                    task_id=data.get("task_id"), detail=data.get("detail"))


def _incident_dict(incident: Any) -> dict[str, Any] | None:
    if incident is None:
        return None
    return {"message": incident.message, "element_id": incident.element_id, "task_id": incident.task_id,
            "detail": incident.detail}


# The engine's own status changes (a row of INSTANCE_RULES each); a cancellation is recorded by `cancel`.
ENGINE_STATUS_ACTIONS = {InstanceStatus.INCIDENT: "engine_incident", InstanceStatus.COMPLETED: "engine_complete",
                         InstanceStatus.RUNNING: "engine_resolve"}


def _record_status_change(uow: UnitOfWork, instance: Instance, previous: str, actor: str,
                          incident: Any) -> None:
    status = instance.status
    if status in (InstanceStatus.COMPLETED, InstanceStatus.CANCELLED):
        instance.ended_at = uow.app.now()
    action = ENGINE_STATUS_ACTIONS.get(InstanceStatus(status))
    if action is None:
        return
    rule = engine_step(INSTANCE_RULES, action, previous, f"instance {instance.id}")
    change = {"field": rule.field, "old": previous, "new": status}
    details = _incident_dict(incident) or {} if status == InstanceStatus.INCIDENT else {}
    uow.record(rule.event or action, actor, instance_id=instance.id, pathway_version_id=instance.pathway_version_id,
               task_id=incident.task_id if incident and details else None, data={**details, **change})
    if status == InstanceStatus.COMPLETED:
        record_measure_outcomes(uow, instance, actor)


def _record_call_bindings(uow: UnitOfWork, instance: Instance, workflow: RunningWorkflow, actor: str) -> None:
    used = workflow.subprocess_spec_names()
    offered = workflow.bound_versions
    new = {key: vid for key, vid in offered.items() if key in used and key not in instance.call_bindings}
    if not new:
        return
    instance.call_bindings = {**instance.call_bindings, **new}
    for key, version_id in new.items():
        version = uow.session.get(PathwayVersion, version_id)
        uow.record("call_bound", actor, instance_id=instance.id, pathway_version_id=instance.pathway_version_id,
                   data={"called_pathway": key, "called_version": version.version if version else None})


def instance_by_business_key(uow: UnitOfWork, pathway_key: str, business_key: str) -> Instance | None:
    query = select(Instance).where(Instance.pathway_key == pathway_key, Instance.business_key == business_key,
                                   Instance.status.in_([s.value for s in (InstanceStatus.RUNNING,
                                                                          InstanceStatus.INCIDENT)]))
    return uow.session.scalars(query).first()
