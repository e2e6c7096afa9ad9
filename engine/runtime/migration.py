"""Moving a running workflow onto another version of its spec, with SpiffWorkflow's diff utilities.

`diff_workflow` aligns the old version's task specs with the new one's (by BPMN id, else by structure);
`migrate_workflow` points every task at its aligned spec and resets each ready or waiting task's branch
so that what follows it is predicted from the new version. That reset also wipes the task's internal
data and copies its parent's data over its own: a waiting timer would compute its due time again from
the migration time (a 7-day follow-up would slide by however long the episode had already waited). So
each reset task's internal data and data are put back afterwards: a timer keeps its due time, and the
task keeps its id, which is what its projections (assignee, claim, draft, due date) hang on.

Only the product's dataclasses leave this module.
"""

from __future__ import annotations

from copy import deepcopy
from dataclasses import dataclass, replace
from typing import Any

from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.util.diff import diff_workflow, migrate_workflow
from SpiffWorkflow.util.task import TaskState as SpiffState

from ..clock import Clock
from .serializer import serializer_for
from .workflow import RunningWorkflow, element_kind

ACTIVE = SpiffState.READY | SpiffState.WAITING | SpiffState.STARTED | SpiffState.ERROR
RESET = SpiffState.READY | SpiffState.WAITING  # what migrate_workflow resets


@dataclass(frozen=True)
class StepMapping:
    """An open or waiting step and the element it continues as in the new version."""

    task_id: str
    element_id: str
    to_element_id: str
    kind: str  # "user task", "timer intermediate catch event", ...
    changed: tuple[str, ...] = ()  # what the new version changes in it (serialized attribute names)


@dataclass(frozen=True)
class MigrationPlan:
    """Whether one instance can move to the new version, and what moving it does."""

    can_move: bool
    reasons: tuple[str, ...] = ()  # why it cannot move
    steps: tuple[StepMapping, ...] = ()
    added: tuple[str, ...] = ()  # element ids the new version has and the old did not
    removed: tuple[str, ...] = ()  # element ids the old version had and the new does not
    not_kept: tuple[str, ...] = ()  # what moving cannot keep, in words
    restarted: tuple[str, ...] = ()  # ids of steps whose waits began again (filled on a move)


class CannotMigrate(Exception):
    def __init__(self, plan: MigrationPlan) -> None:
        super().__init__("; ".join(plan.reasons))
        self.plan = plan


def plan_migration(workflow: RunningWorkflow, spec: Any, subprocess_specs: dict[str, Any]) -> MigrationPlan:
    """The plan for moving `workflow` onto `spec` (and `subprocess_specs`); changes nothing."""
    registry = serializer_for(workflow.family).registry
    top_diff, sp_diffs = diff_workflow(registry, workflow.workflow, spec, subprocess_specs)
    reasons: list[str] = []
    steps: list[StepMapping] = []
    not_kept: list[str] = []
    removed = removed_from_spec(workflow.workflow.spec, spec)
    _read_diff(registry, workflow.workflow, top_diff, "", reasons, steps, not_kept)
    for sp_id, sp in workflow.workflow.subprocesses.items():
        where = f" (in subprocess '{sp.spec.name}')"
        sp_diff = sp_diffs.get(sp_id)
        if sp_diff is None:
            reasons.append(f"it is inside subprocess '{sp.spec.name}', which the new version no longer has")
            continue
        _read_diff(registry, sp, sp_diff, where, reasons, steps, not_kept)
    added = _added_elements(workflow.workflow.spec, spec)
    return MigrationPlan(not reasons, tuple(dict.fromkeys(reasons)), tuple(steps), tuple(added),
                         tuple(sorted(set(removed))), tuple(not_kept))


def migrate(workflow: RunningWorkflow, spec: Any, subprocess_specs: dict[str, Any], clock: Clock, *,
            run: bool = True) -> MigrationPlan:
    """Move `workflow` onto the new spec in place and (with `run`) run it to its next wait. Raises
    CannotMigrate when the plan says it cannot move (the workflow untouched) or when the moved state would
    not restore (the workflow is then half-moved: the caller discards it and keeps the stored state)."""
    plan = plan_migration(workflow, spec, subprocess_specs)
    if not plan.can_move:
        raise CannotMigrate(plan)
    registry = serializer_for(workflow.family).registry
    top = workflow.workflow
    kept = {task.id: (deepcopy(task.internal_data), deepcopy(task.data))
            for sub in (top, *top.subprocesses.values()) for task in sub.get_tasks(state=RESET)}
    top_diff, sp_diffs = diff_workflow(registry, top, spec, subprocess_specs)
    with workflow._engine(clock):
        migrate_workflow(top_diff, top, spec)
        for sp_id, sp in list(top.subprocesses.items()):
            migrate_workflow(sp_diffs[sp_id], sp, subprocess_specs[sp.spec.name])
        top.subprocess_specs = subprocess_specs
        restarted = _restore_kept(top, kept)
    stale = _stale_steps(top)
    if stale:
        raise CannotMigrate(replace(plan, can_move=False, reasons=tuple(
            f"step {element}, which the engine's record of the episode still refers to, no longer exists in the "
            "new version" for element in stale)))
    if run and workflow.incident is None:  # an episode in incident stays so until retried: running could hide it
        workflow.run(clock)
    began_again = [f"step {task_id} was laid out afresh by the move: its wait began again from the move and "
                   "its due time is not kept" for task_id in restarted]
    return replace(plan, restarted=tuple(restarted), not_kept=plan.not_kept + tuple(began_again))


def rehearse(workflow: RunningWorkflow, spec: Any, subprocess_specs: dict[str, Any], clock: Clock) -> MigrationPlan:
    """The plan, checked by moving `workflow` (a copy restored for the purpose, which is then thrown away)
    without running it: what the diff alone cannot see (a step the state still refers to) is found too."""
    try:
        return migrate(workflow, spec, subprocess_specs, clock, run=False)
    except CannotMigrate as refused:
        return refused.plan


def _stale_steps(top: Any) -> list[str]:
    """Steps left in the task tree whose spec the new version does not have (a prediction under a step that
    was not reset): the state would not restore."""
    stale = []
    for sub in (top, *top.subprocesses.values()):
        for task in sub.tasks.values():
            if sub.spec.task_specs.get(task.task_spec.name) is not task.task_spec:
                stale.append(_element(task.task_spec) if task.task_spec.bpmn_id else repr(task.task_spec.name))
    return list(dict.fromkeys(stale))


def _restore_kept(top: Any, kept: dict[Any, tuple[dict[str, Any], dict[str, Any]]]) -> list[str]:
    """Give each reset task back its internal data (a timer's due time) and data; the ids of the ones the
    reset dropped from the tree (their waits began again)."""
    restarted = []
    for task_id, (internal, data) in kept.items():
        task = _find(top, task_id)
        if task is None:
            restarted.append(str(task_id))
            continue
        task.internal_data = internal
        task.data = data
    return restarted


def _find(top: Any, task_id: Any) -> Any:
    for sub in (top, *top.subprocesses.values()):
        if task_id in sub.tasks:
            return sub.tasks[task_id]
    return None


def _read_diff(registry: Any, workflow: Any, diff: Any, where: str, reasons: list[str], steps: list[StepMapping],
               not_kept: list[str]) -> None:
    """Reasons not to move (active or passed steps the new version lacks, a step that changed kind) and
    the mapping of each open step."""
    for task in diff.removed:
        element = _element(task.task_spec)
        if task.has_state(ACTIVE):
            reasons.append(f"its current step {element}{where} no longer exists in the new version")
        elif task.has_state(SpiffState.COMPLETED) and task.task_spec.bpmn_id:
            reasons.append(f"step {element}{where}, which it has passed, no longer exists in the new version, "
                           "and the engine's record of the episode refers to it")
    changed = dict.fromkeys(diff.changed)
    for task in workflow.get_tasks(state=ACTIVE, skip_subprocesses=True):
        new = diff.alignment.get(task)
        if new is None or not task.task_spec.bpmn_id:
            continue
        changes = _changes(registry, diff, task) if task in changed else ()
        if "typename" in changes:
            reasons.append(f"its current step {_element(task.task_spec)}{where} is a {element_kind(task.task_spec)} "
                           f"in this version and a {element_kind(new)} in the new one")
            continue
        steps.append(StepMapping(str(task.id), task.task_spec.bpmn_id, new.bpmn_id or new.name,
                                 element_kind(task.task_spec), changes))
        not_kept.extend(_not_kept(task, new, changes, where))


def _changes(registry: Any, diff: Any, task: Any) -> tuple[str, ...]:
    # WorkflowDiff keeps no per-task comparison (nor the spec diff it was built from): compare the two
    # specs' serialized forms here, as SpecDiff does.
    old, new = task.task_spec, diff.alignment[task]
    s1, s2 = registry.convert(old), registry.convert(new)
    if s1.get("typename") != s2.get("typename"):
        return ("typename",)
    ignored = {"inputs", "outputs"}  # the flows around it: what follows is predicted afresh anyway
    return tuple(sorted(k for k, v in s1.items() if k not in ignored and s2.get(k) != v))


def _not_kept(task: Any, new: Any, changes: tuple[str, ...], where: str) -> list[str]:
    element = _element(task.task_spec)
    old_definition = getattr(task.task_spec, "event_definition", None)
    if "event_definition" in changes and isinstance(old_definition, TimerEventDefinition):
        return [f"timer {element}{where} is defined differently in the new version; it keeps the due time it "
                "already has, and the new definition applies the next time it is reached"]
    if "event_definition" in changes and isinstance(old_definition, MessageEventDefinition):
        return [f"{element}{where} waits for another message in the new version: its wait is rewritten"]
    if changes and task.task_spec.manual:
        return [f"task {element}{where} changed in the new version ({', '.join(changes)}); its assignee, claim, "
                "draft and due date are kept, and the new definition applies to what it does from now"]
    return []


def _element(spec: Any) -> str:
    name = spec.bpmn_name
    return f"'{spec.bpmn_id}'" + (f" ({name})" if name and name != spec.bpmn_id else "")


def _added_elements(old_spec: Any, new_spec: Any) -> list[str]:
    return sorted(s.bpmn_id for name, s in new_spec.task_specs.items()
                  if name not in old_spec.task_specs and getattr(s, "bpmn_id", None))


def removed_from_spec(old_spec: Any, new_spec: Any) -> list[str]:
    """Element ids of the old version the new one does not have (whether or not an instance reached them)."""
    return sorted(s.bpmn_id for name, s in old_spec.task_specs.items()
                  if name not in new_spec.task_specs and getattr(s, "bpmn_id", None))
