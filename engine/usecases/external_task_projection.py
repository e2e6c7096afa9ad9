"""Keeping the `external_tasks` projection in step with the engine, after every step, in the same transaction.

A service task that starts waiting for a worker gets a row (available); a row whose task no longer waits is
cancelled (a boundary event fired, the episode was cancelled), unless a worker's action already closed it or it
is the failed task the episode's incident is about; a failed row whose task waits again (the incident was
retried) is available again with its retries starting afresh.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ..definitions import CONNECTOR_TOPIC_PREFIX
from ..model import ExternalTaskState, ExternalWait, Snapshot
from ..persistence.external_task_tables import ExternalTask
from ..persistence.tables import Instance
from ..persistence.unit_of_work import UnitOfWork
from ..rules import EXTERNAL_TASK_RULES, advance

OPEN_STATES = (ExternalTaskState.AVAILABLE.value, ExternalTaskState.LOCKED.value, ExternalTaskState.FAILED.value)


def sync_external_tasks(uow: UnitOfWork, instance: Instance, snapshot: Snapshot, actor: str, cause: str) -> None:
    if not snapshot.has_external_tasks:
        return
    session = uow.session
    session.flush()  # a worker's change to its row earlier in this transaction decides what is still open
    rows = {row.id: row for row in session.scalars(select(ExternalTask).where(
        ExternalTask.instance_id == instance.id, ExternalTask.state.in_(OPEN_STATES)))}
    waiting = {wait.task_id: wait for wait in snapshot.external_tasks}
    incident_task = snapshot.incident.task_id if snapshot.incident else None
    for task_id, row in rows.items():
        if task_id in waiting:
            if row.state == ExternalTaskState.FAILED:
                advance(row, EXTERNAL_TASK_RULES, "engine_retry", f"external task {task_id}")
                row.worker_id, row.lock_expires_at, row.retries = None, None, None
                _wake_deliverer(uow, row.topic)
        elif not (row.state == ExternalTaskState.FAILED and task_id == incident_task):
            _cancel(uow, instance, row, actor, cause)
    for task_id, wait in waiting.items():
        if task_id not in rows and session.get(ExternalTask, task_id) is None:
            _create(uow, instance, wait, actor)


def _cancel(uow: UnitOfWork, instance: Instance, row: ExternalTask, actor: str, cause: str) -> None:
    old = row.state
    rule = advance(row, EXTERNAL_TASK_RULES, "engine_cancel", f"external task {row.id}")
    row.worker_id, row.lock_expires_at = None, None
    uow.record(rule.event or rule.action, actor, instance_id=instance.id, task_id=row.id,
               pathway_version_id=instance.pathway_version_id,
               data={"element_id": row.element_id, "topic": row.topic, "field": "state", "old": old,
                     "new": row.state, "reason": cause})


def _create(uow: UnitOfWork, instance: Instance, wait: ExternalWait, actor: str) -> None:
    rule = EXTERNAL_TASK_RULES["create"]
    uow.session.add(ExternalTask(
        id=wait.task_id, instance_id=instance.id, element_id=wait.element_id, name=wait.name, topic=wait.topic,
        state=rule.to[0].value, variables=_stored_variables(wait),
        business_key=instance.business_key, pathway_key=instance.pathway_key, priority=wait.priority,
        created_at=uow.app.now()))
    uow.record(rule.event or rule.action, actor, instance_id=instance.id, task_id=wait.task_id,
               pathway_version_id=instance.pathway_version_id,
               data={"element_id": wait.element_id, "name": wait.name, "topic": wait.topic})
    _wake_deliverer(uow, wait.topic)


def _wake_deliverer(uow: UnitOfWork, topic: str) -> None:
    """A connector call made available (created, or retried after an incident) wakes the scheduler's
    deliverer once committed, rather than waiting for its next sweep."""
    if topic.startswith(CONNECTOR_TOPIC_PREFIX):
        now = uow.app.now()
        uow.after_commit(lambda: uow.app.timers_scheduled([now]))


def _stored_variables(wait: ExternalWait) -> Any:
    """The `variables` column: the names the task hands (None: all), or, when the task has input parameters
    (camunda:inputOutput: its local variables, not in the episode's data), both: {"declared", "inputs"}."""
    declared = list(wait.variables) if wait.variables is not None else None
    return {"declared": declared, "inputs": wait.inputs} if wait.inputs else declared
