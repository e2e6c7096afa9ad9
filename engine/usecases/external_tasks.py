"""External workers and the service tasks they do: fetch and lock, complete, fail, BPMN error, extend, unlock.

Every action is one transaction under its row of EXTERNAL_TASK_RULES (engine/rules.py), recorded in the
history. The product API (/api/external-tasks) and Camunda 7's contract (/engine-rest/external-task) call these
same functions. A worker's fetch reads and locks rows of the `external_tasks` projection only (SKIP LOCKED on
PostgreSQL; SQLite has one writer); an action that moves the pathway on (complete, a BPMN error, the last
failure) locks the episode first, then the row, as every other change of an episode does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select

from ..application import CarePath
from ..bounds import check_json
from ..definitions import CONNECTOR_TOPIC_PREFIX as TOPIC_PREFIX
from ..errors import NotFound, Problem, ValidationFailed
from ..identity import Principal
from ..model import ExternalTaskState
from ..persistence.external_task_tables import ExternalTask
from ..persistence.tables import Instance
from ..persistence.unit_of_work import UnitOfWork
from ..rules import EXTERNAL_TASK_RULES, ExternalTaskFacts, Rule, check, check_external_task_reader, check_role
from .after_steps import after_engine_steps
from .store import load_workflow, lock_instance, with_conflict_retries

MAX_TASKS = 100  # per fetch
MAX_TOPICS = 50
MAX_NAME = 255
MAX_LOCK_MS = 7 * 24 * 3600 * 1000
MAX_ERROR_TEXT = 4000


@dataclass(frozen=True)
class TopicRequest:
    """One topic a worker fetches: how long it locks the tasks, and which variables it wants (None: all)."""

    name: str
    lock_duration_ms: int
    variables: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ExternalTaskView:
    id: str
    topic: str
    state: str
    instance_id: str
    business_key: str
    pathway_key: str
    element_id: str
    name: str | None
    worker_id: str | None
    lock_expires_at: datetime | None
    retries: int | None
    error_message: str | None
    error_details: str | None
    priority: int
    created_at: datetime
    variables: dict[str, Any]


def fetch_and_lock(app: CarePath, principal: Principal, worker_id: str, topics: Sequence[TopicRequest],
                   max_tasks: int, *, use_priority: bool = True, connectors: bool = False) -> list[ExternalTaskView]:
    """Lock up to `max_tasks` fetchable tasks of the topics for the worker; each with the variables it hands.
    The built-in connectors' topics are fetched by CarePath's own deliverer only (`connectors`)."""
    rule = EXTERNAL_TASK_RULES["fetch_and_lock"]
    check_role(rule, principal)
    _check_worker(worker_id)
    _check_topics(topics, connectors)
    _check_count("max_tasks", max_tasks, 0, MAX_TASKS)
    if max_tasks == 0:
        return []
    by_name = {topic.name: topic for topic in topics}

    def attempt() -> list[ExternalTaskView]:
        with UnitOfWork(app) as uow:
            now = app.now()
            rows = uow.session.scalars(_fetchable(uow, list(by_name), now, max_tasks, use_priority)).all()
            for row in rows:
                check(rule, _facts(row, worker_id), principal)
                old = row.worker_id
                row.state, row.worker_id = rule.to[0].value, worker_id
                row.lock_expires_at = now + timedelta(milliseconds=by_name[row.topic].lock_duration_ms)
                _record(uow, rule, row, principal, {"field": "worker_id", "old": old, "new": worker_id,
                                                    "lock_expires_at": row.lock_expires_at.isoformat()})
            views = _views(uow, rows, {name: topic.variables for name, topic in by_name.items()})
            uow.commit()
            return views

    return with_conflict_retries(app, attempt)


def _fetchable(uow: UnitOfWork, topics: list[str], now: datetime, limit: int, use_priority: bool) -> Any:
    fetchable = (ExternalTaskState.AVAILABLE.value, ExternalTaskState.LOCKED.value)
    order = [ExternalTask.priority.desc()] if use_priority else []
    query = (select(ExternalTask)
             .where(ExternalTask.topic.in_(topics), ExternalTask.state.in_(fetchable),
                    or_(ExternalTask.lock_expires_at.is_(None), ExternalTask.lock_expires_at <= now))
             .order_by(*order, ExternalTask.created_at, ExternalTask.id).limit(limit))
    if uow.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)  # many workers never lock the same task
    return query


def complete_task(app: CarePath, principal: Principal, task_id: str, worker_id: str,
                  variables: dict[str, Any] | None = None, *,
                  also: Callable[[UnitOfWork, ExternalTask], None] | None = None) -> None:
    """The worker did the task: its variables into the episode's data, and the pathway goes on. `also` does the
    work itself in the same transaction, when it is only writing rows (a notification connector)."""
    variables = _checked_variables(app, variables)

    def act(uow: UnitOfWork, row: ExternalTask, instance: Instance | None, rule: Rule) -> None:
        assert instance is not None
        if also is not None:
            also(uow, row)
        workflow = load_workflow(uow, instance)
        workflow.complete_external(row.id, variables, app.clock)
        _close(uow, rule, row, principal, ExternalTaskState.COMPLETED, {"variables": variables})
        after_engine_steps(uow, instance, workflow, principal.name)

    _change(app, principal, "complete", task_id, worker_id, act, moves_pathway=True)


def report_failure(app: CarePath, principal: Principal, task_id: str, worker_id: str, error_message: str | None,
                   *, error_details: str | None = None, retries: int = 0, retry_timeout_ms: int = 0) -> None:
    """The worker could not do it: with retries left the task is fetchable again after `retry_timeout_ms`;
    with none, it fails and the episode is in incident, until someone retries it."""
    _check_count("retries", retries, 0, 1_000_000)
    _check_count("retry_timeout", retry_timeout_ms, 0, MAX_LOCK_MS)
    message = _text("error_message", error_message) or "the worker reported a failure"
    details = _text("error_details", error_details)

    def act(uow: UnitOfWork, row: ExternalTask, instance: Instance | None, rule: Rule) -> None:
        row.retries, row.error_message, row.error_details = retries, message, details
        data = {"error_message": message, "retries": retries}
        if retries > 0:
            until = app.now() + timedelta(milliseconds=retry_timeout_ms) if retry_timeout_ms else None
            _close(uow, rule, row, principal, ExternalTaskState.AVAILABLE, data)
            row.lock_expires_at = until
            return
        assert instance is not None
        workflow = load_workflow(uow, instance)
        workflow.fail_external(row.id, f"External task '{row.name or row.element_id}' (topic '{row.topic}') "
                                        f"failed: {message}", details)
        _close(uow, rule, row, principal, ExternalTaskState.FAILED, data)
        after_engine_steps(uow, instance, workflow, principal.name)

    _change(app, principal, "failure", task_id, worker_id, act, moves_pathway=retries == 0)


def report_bpmn_error(app: CarePath, principal: Principal, task_id: str, worker_id: str, error_code: str,
                      error_message: str | None = None, variables: dict[str, Any] | None = None) -> None:
    """A business error (the patient has no phone): thrown as the BPMN error `error_code` from the task; an
    error event of the diagram catches it, or the task fails and the episode is in incident."""
    code = _text("error_code", error_code, limit=MAX_NAME)
    if not code:
        raise ValidationFailed("error_code is required", [Problem("error_code is required", field="error_code")])
    message = _text("error_message", error_message)
    variables = _checked_variables(app, variables)

    def act(uow: UnitOfWork, row: ExternalTask, instance: Instance | None, rule: Rule) -> None:
        assert instance is not None
        workflow = load_workflow(uow, instance)
        caught = workflow.throw_external_error(row.id, code, message, variables, app.clock)
        if not caught:
            row.error_message = f"uncaught BPMN error '{code}'" + (f": {message}" if message else "")
        new = ExternalTaskState.COMPLETED if caught else ExternalTaskState.FAILED
        _close(uow, rule, row, principal, new, {"error_code": code, "error_message": message, "caught": caught})
        after_engine_steps(uow, instance, workflow, principal.name)

    _change(app, principal, "bpmn_error", task_id, worker_id, act, moves_pathway=True)


def extend_lock(app: CarePath, principal: Principal, task_id: str, worker_id: str, new_duration_ms: int) -> None:
    _check_count("new_duration", new_duration_ms, 1, MAX_LOCK_MS)

    def act(uow: UnitOfWork, row: ExternalTask, instance: Instance | None, rule: Rule) -> None:
        old, row.lock_expires_at = row.lock_expires_at, app.now() + timedelta(milliseconds=new_duration_ms)
        _record(uow, rule, row, principal, {"field": "lock_expires_at", "old": old.isoformat() if old else None,
                                            "new": row.lock_expires_at.isoformat()})

    _change(app, principal, "extend_lock", task_id, worker_id, act, moves_pathway=False)


def unlock(app: CarePath, principal: Principal, task_id: str) -> None:
    def act(uow: UnitOfWork, row: ExternalTask, instance: Instance | None, rule: Rule) -> None:
        _close(uow, rule, row, principal, ExternalTaskState.AVAILABLE, {"worker_id": row.worker_id})
        row.lock_expires_at = None

    _change(app, principal, "unlock", task_id, None, act, moves_pathway=False)


def _change(app: CarePath, principal: Principal, action: str, task_id: str, worker_id: str | None, act: Any,
            *, moves_pathway: bool) -> None:
    """One transaction: (the episode locked first, when the action moves it on) the row locked, the rule
    checked, `act` applied."""
    rule = EXTERNAL_TASK_RULES[action]
    check_role(rule, principal)
    if worker_id is not None:
        _check_worker(worker_id)

    def attempt() -> None:
        with UnitOfWork(app) as uow:
            row = uow.session.get(ExternalTask, task_id) if isinstance(task_id, str) else None
            if row is None:
                raise NotFound(f"external task {task_id} does not exist")
            instance = lock_instance(uow, row.instance_id) if moves_pathway else None
            row = uow.session.get(ExternalTask, task_id, with_for_update=True, populate_existing=True)
            assert row is not None
            check(rule, _facts(row, worker_id if worker_id is not None else row.worker_id), principal)
            act(uow, row, instance, rule)
            uow.commit()

    with_conflict_retries(app, attempt)


def _close(uow: UnitOfWork, rule: Rule, row: ExternalTask, principal: Principal, new: ExternalTaskState,
           data: dict[str, Any]) -> None:
    old, row.state = row.state, new.value
    if new is ExternalTaskState.AVAILABLE:
        row.worker_id = None
    _record(uow, rule, row, principal, {"field": "state", "old": old, "new": row.state, **data})


def _record(uow: UnitOfWork, rule: Rule, row: ExternalTask, principal: Principal, data: dict[str, Any]) -> None:
    uow.record(rule.event or rule.action, principal.name, instance_id=row.instance_id, task_id=row.id,
               data={"element_id": row.element_id, "topic": row.topic, **data})


def _facts(row: ExternalTask, asked_by: str | None) -> ExternalTaskFacts:
    return ExternalTaskFacts(row.id, row.topic, ExternalTaskState(row.state), row.worker_id, asked_by)


def _views(uow: UnitOfWork, rows: Sequence[ExternalTask],
           wanted: dict[str, tuple[str, ...] | None]) -> list[ExternalTaskView]:
    """The rows with the variables each hands its worker: the episode's data (its projection, no workflow
    deserialized), narrowed to what the diagram asks for and what the worker asked for."""
    ids = {row.instance_id for row in rows}
    found = uow.session.execute(select(Instance.id, Instance.data).where(Instance.id.in_(ids))).all() if ids else []
    data: dict[str, Any] = {str(row[0]): row[1] for row in found}
    return [_view(row, _handed(data.get(row.instance_id) or {}, row.variables, wanted.get(row.topic)))
            for row in rows]


def _handed(data: dict[str, Any], stored: Any, asked: tuple[str, ...] | None) -> dict[str, Any]:
    """The episode's data the task declares it hands (all: None) and its input parameters (camunda:inputOutput,
    stored with the row: external_task_projection.py), narrowed to what the worker asked for."""
    declared, inputs = stored, dict[str, Any]()
    if isinstance(stored, dict):
        declared, inputs = stored.get("declared"), stored.get("inputs") or {}
    names = set(data)
    if declared is not None:
        names &= set(declared)
    data = {**data, **inputs}
    names |= set(inputs)
    if asked is not None:
        names &= set(asked)
    return {name: data[name] for name in sorted(names)}


def _view(row: ExternalTask, variables: dict[str, Any]) -> ExternalTaskView:
    return ExternalTaskView(
        id=row.id, topic=row.topic, state=row.state, instance_id=row.instance_id, business_key=row.business_key,
        pathway_key=row.pathway_key, element_id=row.element_id, name=row.name, worker_id=row.worker_id,
        lock_expires_at=row.lock_expires_at, retries=row.retries, error_message=row.error_message,
        error_details=row.error_details, priority=row.priority, created_at=row.created_at, variables=variables)


def _check_worker(worker_id: Any) -> None:
    if not isinstance(worker_id, str) or not worker_id.strip() or len(worker_id) > MAX_NAME:
        message = f"worker_id must be a non-empty string of at most {MAX_NAME} characters"
        raise ValidationFailed(message, [Problem(message, field="worker_id")])


def _check_topics(topics: Sequence[TopicRequest], connectors: bool = False) -> None:
    if not topics or len(topics) > MAX_TOPICS:
        message = f"topics must name between 1 and {MAX_TOPICS} topics"
        raise ValidationFailed(message, [Problem(message, field="topics")])
    for topic in topics:
        if not connectors and topic.name.startswith(TOPIC_PREFIX):
            message = f"the topic '{topic.name[:80]}' is reserved for CarePath's built-in connectors"
            raise ValidationFailed(message, [Problem(message, field="topics")])
        if not topic.name or len(topic.name) > MAX_NAME:
            raise ValidationFailed("a topic's name must be 1 to 255 characters",
                                   [Problem("a topic's name must be 1 to 255 characters", field="topics")])
        _check_count("lock_duration", topic.lock_duration_ms, 1, MAX_LOCK_MS)
        if topic.variables is not None and len(topic.variables) > 1000:
            raise ValidationFailed("a topic asks for at most 1000 variables")


def _check_count(name: str, value: Any, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        message = f"{name} must be a whole number from {low} to {high}"
        raise ValidationFailed(message, [Problem(message, field=name)])


def _text(name: str, value: Any, limit: int = MAX_ERROR_TEXT) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        message = f"{name} must be a string of at most {limit} characters"
        raise ValidationFailed(message, [Problem(message, field=name)])
    return value.strip() or None


def _checked_variables(app: CarePath, variables: Any) -> dict[str, Any]:
    if variables is None:
        return {}
    if not isinstance(variables, dict):
        raise ValidationFailed("variables must be a JSON object", [Problem("variables must be a JSON object",
                                                                          field="variables")])
    check_json(app, variables, "variables")
    return variables


def any_fetchable(app: CarePath, principal: Principal, topics: Sequence[str]) -> bool:
    """Whether a fetch of these topics would find a task now: a read, for the looks of a long poll."""
    check_role(EXTERNAL_TASK_RULES["fetch_and_lock"], principal)
    fetchable = (ExternalTaskState.AVAILABLE.value, ExternalTaskState.LOCKED.value)
    now = app.now()
    with app.db.read() as session:
        found = session.scalar(select(ExternalTask.id).where(
            ExternalTask.topic.in_(list(topics)), ExternalTask.state.in_(fetchable),
            or_(ExternalTask.lock_expires_at.is_(None), ExternalTask.lock_expires_at <= now)).limit(1))
    return found is not None


def list_external_tasks(app: CarePath, principal: Principal, *, topic: str | None = None, state: str | None = None,
                        instance_id: str | None = None, limit: int = 50, offset: int = 0) -> list[ExternalTaskView]:
    """External tasks, oldest first, by topic, state and episode (one SQL query on the projection; the variables
    are not read): for workers and admins, to see what waits and what failed."""
    check_external_task_reader(principal)
    _check_count("limit", limit, 1, 200)
    _check_count("offset", offset, 0, 10_000_000)
    if state is not None and state not in {s.value for s in ExternalTaskState}:
        message = f"state must be one of {', '.join(s.value for s in ExternalTaskState)}"
        raise ValidationFailed(message, [Problem(message, field="state")])
    query = select(ExternalTask).order_by(ExternalTask.created_at, ExternalTask.id).limit(limit).offset(offset)
    for column, value in ((ExternalTask.topic, topic), (ExternalTask.state, state),
                          (ExternalTask.instance_id, instance_id)):
        if value is not None:
            query = query.where(column == value)
    with app.db.read() as session:
        return [_view(row, {}) for row in session.scalars(query)]
