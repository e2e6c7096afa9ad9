"""A task's form and the values it shows: the episode's data, and the task's own input parameters.

Input parameters (camunda:inputOutput) are the task's local variables: they live in the task's data in the
workflow, not in the episode's data projection. Only a task whose pathway gives it input parameters (its
task rule says `local_inputs`, set at deploy) has its workflow read; every other form is plain SQL.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from ..application import CarePath
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
    if not resolved.task_rules.get(row.element_id, {}).get("local_inputs"):
        return found
    workflow = RunningWorkflow.restore(instance.state, resolved.spec, resolved.subprocess_specs, resolved.family,
                                       app.script_engine, instance.business_key)
    schema, data = found
    return schema, {**data, **workflow.task_inputs(task_id)}
