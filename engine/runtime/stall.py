"""The stall invariant: after engine steps, an instance that has not ended has something to go on with.

Something ready (a person's task), something it waits for (a timer, a message, a signal, an external worker:
any waiting task that is not a join), or an incident. A state with none of these would sit in the database
forever with nobody told — a patient nobody calls — so it becomes an incident naming where it stopped: a
task that started and never finished (a service task nothing implements), or a join waiting for a branch
that can no longer arrive.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import LoopTask, MultiInstanceTask
from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import SubWorkflowTask
from SpiffWorkflow.specs.Join import Join
from SpiffWorkflow.util.task import TaskState

from ..model import Incident

# Tasks that are "started" while their inner tasks run: they hold no work of their own.
_CONTAINERS = (SubWorkflowTask, MultiInstanceTask, LoopTask)


def stall_incident(workflow: BpmnWorkflow, kind_of: Callable[[Any], str]) -> Incident | None:
    """An incident when the instance has not ended yet has nothing ready and waits for nothing; else None.
    `kind_of` says what an element is in words ("service task")."""
    if workflow.is_completed():
        return None
    flows = (workflow, *workflow.subprocesses.values())
    # Lazily: a running instance has a ready or waiting task early in the walk, and this runs every step.
    if any(task.has_state(TaskState.READY) or _waits_outside(task)
           for flow in flows for task in flow.get_tasks_iterator()):
        return None
    tasks = [task for flow in flows for task in flow.get_tasks()]
    stuck = _stuck_task(tasks)
    spec = stuck.task_spec if stuck is not None else None
    element_id = getattr(spec, "bpmn_id", None)
    where = f"{kind_of(spec)} '{spec.bpmn_name or element_id}'" if spec is not None and element_id else "its last step"
    return Incident(
        message=(f"The pathway stopped at {where}: no task is open and it waits for no timer, message or worker, "
                 "so it would never go on. Correct the diagram, or move the instance on by hand."),
        element_id=element_id, task_id=str(stuck.id) if stuck is not None else None,
        detail=f"stalled at a {type(spec).__name__} in state {TaskState.get_name(stuck.state)}" if stuck else "stalled")


def _waits_outside(task: Any) -> bool:
    return task.has_state(TaskState.WAITING) and not isinstance(task.task_spec, Join)


def _stuck_task(tasks: list[Any]) -> Any:
    """The task the instance stopped at: one started that never finished, else a join left waiting."""
    started = [task for task in tasks if task.has_state(TaskState.STARTED)
               and not isinstance(task.task_spec, _CONTAINERS) and getattr(task.task_spec, "bpmn_id", None)]
    waiting = [task for task in tasks if task.has_state(TaskState.WAITING) and getattr(task.task_spec, "bpmn_id", None)]
    return next(iter(started or waiting), None)
