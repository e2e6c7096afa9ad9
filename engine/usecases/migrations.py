"""Moving running episodes of a pathway from one version to another: a plan (dry run), then one transaction
per episode. The rule is INSTANCE_RULES["migrate"]; what moving does to an engine state is runtime/migration.py's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, undefer

from ..application import CarePath
from ..errors import CarePathError, Conflict, NotFound, ValidationFailed
from ..identity import Principal
from ..persistence.tables import Instance, PathwayVersion, Task, Timer
from ..persistence.unit_of_work import UnitOfWork
from ..rules import ACTIVE, INSTANCE_RULES, check_role
from ..runtime.migration import CannotMigrate, MigrationPlan, migrate, rehearse
from ..runtime.workflow import RunningWorkflow
from .after_steps import after_engine_steps
from .specs import resolve_specs
from .store import load_workflow, with_conflict_retries
from .transitions import locked_instance

MAX_EPISODES = 200  # per request: a page of the dry run, or the episodes named
DEFAULT_PAGE = 50
ACTIVE_VALUES = tuple(status.value for status in ACTIVE)


@dataclass(frozen=True)
class EpisodeMove:
    """One episode in a migration: `outcome` is "can_move" / "cannot_move" (dry run) or "moved" / "not_moved"."""

    instance_id: str
    business_key: str | None
    outcome: str
    plan: MigrationPlan | None = None
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class VersionRef:
    """A pathway version as read once, outside the transactions that use it."""

    id: int
    key: str
    version: int
    name: str | None

    @classmethod
    def of(cls, row: PathwayVersion) -> VersionRef:
        return cls(row.id, row.key, row.version, row.name)


@dataclass(frozen=True)
class MigrationReport:
    pathway: str
    from_version: int
    to_version: int
    dry_run: bool
    episodes: list[EpisodeMove]
    next_after: str | None = None  # the `after` cursor of the next page, when there are more episodes


def migrate_episodes(app: CarePath, principal: Principal, pathway_key: str, *, from_version: int, to_version: int,
                     instance_ids: list[str] | None = None, dry_run: bool = True, limit: int = DEFAULT_PAGE,
                     after: str | None = None) -> MigrationReport:
    """The plan for each episode (dry run), or each moved in its own transaction. Without `instance_ids`:
    the running episodes of `from_version` in id order, `limit` of them after the cursor `after`."""
    rule = INSTANCE_RULES["migrate"]
    check_role(rule, principal)
    _check_request(from_version, to_version, instance_ids, limit, after)
    with app.db.read() as session:
        source, target = _versions(session, pathway_key, from_version, to_version)
        ids, next_after = _episode_ids(session, source.id, instance_ids, limit, after)
    act = _plan_one if dry_run else _move_one
    episodes = [act(app, principal, source, target, instance_id) for instance_id in ids]
    return MigrationReport(pathway_key, from_version, to_version, dry_run, episodes, next_after)


def _check_request(from_version: Any, to_version: Any, instance_ids: Any, limit: Any, after: Any) -> None:
    for name, value in (("from_version", from_version), ("to_version", to_version)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValidationFailed(f"{name} must be a version number (a whole number from 1)")
    if from_version == to_version:
        raise ValidationFailed("from_version and to_version are the same version: there is nothing to move")
    if not isinstance(limit, int) or not 1 <= limit <= MAX_EPISODES:
        raise ValidationFailed(f"limit must be a whole number from 1 to {MAX_EPISODES}")
    if after is not None and (not isinstance(after, str) or len(after) > 36):
        raise ValidationFailed("after must be the next_after cursor of a previous answer")
    if instance_ids is None:
        return
    if not isinstance(instance_ids, list) or not all(isinstance(i, str) and 0 < len(i) <= 36 for i in instance_ids):
        raise ValidationFailed("instance_ids must be a list of instance ids")
    if len(instance_ids) > MAX_EPISODES:
        raise ValidationFailed(f"at most {MAX_EPISODES} instance_ids per request; this one names "
                               f"{len(instance_ids)}: send them in pages")


def _versions(session: Session, key: str, from_version: int, to_version: int) -> tuple[VersionRef, VersionRef]:
    rows = {row.version: row for row in session.scalars(select(PathwayVersion).where(
        PathwayVersion.key == key, PathwayVersion.version.in_([from_version, to_version])))}
    for number in (from_version, to_version):
        if number not in rows:
            raise NotFound(f"pathway '{key}' has no version {number}")
    source, target = rows[from_version], rows[to_version]
    if target.retired:
        raise Conflict(f"version {to_version} of pathway '{key}' is retired: episodes cannot move onto it")
    if source.family != target.family:
        raise Conflict(f"versions {from_version} and {to_version} of pathway '{key}' were drawn for different "
                       f"engine dialects ({source.family}, {target.family}): episodes cannot move between them")
    return VersionRef.of(source), VersionRef.of(target)


def _episode_ids(session: Session, source_id: int, named: list[str] | None, limit: int,
                 after: str | None) -> tuple[list[str], str | None]:
    if named is not None:
        return list(dict.fromkeys(named)), None
    query = select(Instance.id).where(Instance.pathway_version_id == source_id,
                                      Instance.status.in_(ACTIVE_VALUES))
    if after:
        query = query.where(Instance.id > after)
    ids = list(session.scalars(query.order_by(Instance.id).limit(limit + 1)))
    return ids[:limit], ids[limit - 1] if len(ids) > limit else None


def _plan_one(app: CarePath, principal: Principal, source: VersionRef, target: VersionRef,
              instance_id: str) -> EpisodeMove:
    """The plan, rehearsed on a workflow restored afresh for it (a cached one may be another request's to
    change), which is then thrown away."""
    with app.db.read() as session:
        instance = session.get(Instance, instance_id, options=[undefer(Instance.state)])
        refusal = _not_movable(instance, instance_id, source)
        if refusal is not None or instance is None:
            return refusal or EpisodeMove(instance_id, None, "cannot_move")
        resolved = resolve_specs(app, session, instance.pathway_version_id, instance.call_bindings)
        workflow = RunningWorkflow.restore(instance.state, resolved.spec, resolved.subprocess_specs,
                                           resolved.family, app.script_engine, instance.business_key)
        new = resolve_specs(app, session, target.id, instance.call_bindings)
        plan = rehearse(workflow, new.spec, new.subprocess_specs, app.clock)
        outcome = "can_move" if plan.can_move else "cannot_move"
        return EpisodeMove(instance_id, instance.business_key, outcome, plan, plan.reasons)


def _not_movable(instance: Instance | None, instance_id: str, source: VersionRef) -> EpisodeMove | None:
    if instance is None or instance.pathway_key != source.key:
        return EpisodeMove(instance_id, None, "cannot_move", reasons=(
            f"there is no episode {instance_id} of pathway '{source.key}'",))
    if instance.pathway_version_id != source.id:
        return EpisodeMove(instance_id, instance.business_key, "cannot_move", reasons=(
            f"it runs on another version of the pathway, not version {source.version}",))
    if instance.status not in ACTIVE_VALUES:
        return EpisodeMove(instance_id, instance.business_key, "cannot_move", reasons=(
            f"it is {instance.status}: only running episodes and those in incident move",))
    return None


def _move_one(app: CarePath, principal: Principal, source: VersionRef, target: VersionRef,
              instance_id: str) -> EpisodeMove:
    """One transaction, under the instance's lock; an episode that cannot move is rolled back untouched."""
    rule = INSTANCE_RULES["migrate"]

    def attempt() -> EpisodeMove:
        with UnitOfWork(app) as uow:
            instance = locked_instance(uow, principal, rule, instance_id)
            refusal = _not_movable(instance, instance_id, source)  # checked again under the lock
            if refusal is not None:
                return EpisodeMove(instance_id, refusal.business_key, "not_moved", reasons=refusal.reasons)
            workflow = load_workflow(uow, instance)
            new = resolve_specs(app, uow.session, target.id, instance.call_bindings)
            try:
                plan = migrate(workflow, new.spec, new.subprocess_specs, app.clock)
            except CannotMigrate as refused:
                return EpisodeMove(instance_id, instance.business_key, "not_moved", refused.plan,
                                   refused.plan.reasons)
            workflow.bound_versions, workflow.task_rules = new.bound_versions, new.task_rules
            workflow.time_context = app.time_context(new.time_settings)
            instance.pathway_version_id = target.id
            uow.migrated_instances.add(instance.id)  # its old version's message waits end here
            _record_move(uow, instance, source, target, plan, principal.name)
            after_engine_steps(uow, instance, workflow, principal.name)
            _rename_projections(uow, instance, workflow, target)
            uow.commit()
            return EpisodeMove(instance_id, instance.business_key, "moved", plan)

    try:
        return with_conflict_retries(app, attempt)
    except CarePathError as refused:  # not found, or not in a state that moves: this episode only
        return EpisodeMove(instance_id, None, "not_moved", reasons=(str(refused),))


def _record_move(uow: UnitOfWork, instance: Instance, source: VersionRef, target: VersionRef,
                 plan: MigrationPlan, actor: str) -> None:
    rule = INSTANCE_RULES["migrate"]
    uow.record(rule.event or rule.action, actor, instance_id=instance.id, pathway_version_id=target.id,
               data={"field": rule.field, "old": source.version, "new": target.version,
                     "from_version_id": source.id, "to_version_id": target.id,
                     "steps": [{"task_id": s.task_id, "element_id": s.element_id, "to_element_id": s.to_element_id}
                               for s in plan.steps],
                     "added": list(plan.added), "removed": list(plan.removed), "not_kept": list(plan.not_kept)})


def _rename_projections(uow: UnitOfWork, instance: Instance, workflow: RunningWorkflow,
                        target: VersionRef) -> None:
    """Open task rows (kept, with their assignee, claim, draft and due date) and pending timer rows take the
    element id and name their step has in the new version."""
    snapshot = workflow.snapshot(uow.app.now())
    for task in snapshot.open_tasks:
        row = uow.session.get(Task, task.id)
        if row is not None and (row.element_id, row.name, row.pathway_name) != (task.element_id, task.name,
                                                                               target.name):
            row.element_id, row.name, row.pathway_name = task.element_id, task.name, target.name
    waits = {wait.task_id: wait for wait in snapshot.timers}
    for timer in uow.session.scalars(select(Timer).where(Timer.instance_id == instance.id,
                                                         Timer.state == "pending", Timer.kind == "bpmn")):
        wait = waits.get(timer.task_id)
        if wait is not None and timer.element_id != wait.element_id:
            timer.element_id = wait.element_id


__all__ = ["MAX_EPISODES", "EpisodeMove", "MigrationReport", "migrate_episodes"]
