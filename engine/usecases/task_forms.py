"""A task's form and the values it shows: the episode's data, and the task's own input parameters.

Input parameters (camunda:inputOutput) are the task's local variables: they live in the task's data in the
workflow, not in the episode's data projection. A task inside a multi-instance activity (one per need,
say) shows its own instance's data: the episode's projection holds the latest instance's values of the
item and of what each instance set, which would fill one need's form with another's (its domain, the
service chosen). Only a task whose rule says `local_inputs` or `instance_data` (set at deploy) has its
workflow read; every other form is plain SQL.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from ..application import CarePath
from ..bounds import shown
from ..persistence.tables import Instance, Task
from ..queries import task_form
from ..runtime.workflow import RunningWorkflow
from .specs import resolve_specs


def task_form_values(app: CarePath, session: Session, task_id: str) -> tuple[dict[str, Any] | None,
                                                                           dict[str, Any]] | None:
    """(the form's JSON Schema or None, the values it shows), or None when the task does not exist."""
    found = task_form(session, task_id)
    row = session.get(Task, task_id)
    if found is None or row is None or row.completed_at is not None:
        return found
    instance = session.get(Instance, row.instance_id)
    assert instance is not None
    resolved = resolve_specs(app, session, instance.pathway_version_id, instance.call_bindings)
    rule = resolved.task_rules.get(row.element_id, {})
    if not (rule.get("local_inputs") or rule.get("instance_data")):
        return found
    workflow = RunningWorkflow.restore(instance.state, resolved.spec, resolved.subprocess_specs, resolved.family,
                                       app.script_engine, instance.business_key)
    schema, data = found
    if rule.get("instance_data"):
        data = shown(workflow.task_data(task_id)[1])
    return schema, {**data, **workflow.task_inputs(task_id)}
