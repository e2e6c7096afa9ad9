"""Messages from outside: correlated in the database by name and key, never broadcast.

A message goes to the waiting catch whose (name, correlation key) matches, at most one instance
per pathway; failing that it starts the pathways whose message start event has that name; failing
that it is buffered until its time-to-live ends and delivered when a matching catch is reached.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from ..application import CarePath
from ..errors import Conflict, ValidationFailed
from ..identity import Principal, Role, require_role
from ..model import MessageState
from ..persistence.tables import (
    BufferedMessage,
    Instance,
    MessageStartEvent,
    MessageSubscription,
    PathwayVersion,
)
from ..persistence.unit_of_work import UnitOfWork
from ..runtime.workflow import RunningWorkflow
from ..views import MessageResult
from .instances import _check_key, begin_instance
from .store import load_workflow, lock_instance, save_workflow, with_conflict_retries


def correlate_message(app: CarePath, principal: Principal, name: str, correlation_key: str,
                      data: dict[str, Any] | None = None, message_id: str | None = None) -> MessageResult:
    require_role(principal, Role.COORDINATOR, Role.CLINICAL_LEAD, Role.SUPERVISOR, action="Sending a message")
    _check_key("name", name)
    _check_key("correlation_key", correlation_key)
    if message_id is not None:
        _check_key("message_id", message_id)
    if data is not None and not isinstance(data, dict):
        raise ValidationFailed("message data must be a JSON object")

    def attempt() -> MessageResult:
        with UnitOfWork(app) as uow:
            previous = _previous(uow, message_id, name, correlation_key, data or {})
            if previous is not None:
                return previous
            result = _route(uow, principal.name, name, correlation_key, data or {}, message_id)
            uow.commit()
            return result

    try:
        return with_conflict_retries(app, attempt)
    except IntegrityError:
        with UnitOfWork(app) as uow:  # the same message_id arrived concurrently: the other one won
            previous = _previous(uow, message_id, name, correlation_key, data or {})
        if previous is None:
            raise
        return previous


def _previous(uow: UnitOfWork, message_id: str | None, name: str, key: str,
              data: dict[str, Any]) -> MessageResult | None:
    """The earlier delivery of the same message_id; a different message under that id is a conflict."""
    if message_id is None:
        return None
    row = uow.session.scalars(select(BufferedMessage).where(BufferedMessage.message_id == message_id)).first()
    if row is None:
        return None
    if (row.name, row.correlation_key, row.data) != (name, key, data):
        raise Conflict(f"message_id '{message_id}' was already used for a different message "
                       f"('{row.name}' for '{row.correlation_key}'); message ids must be unique per message")
    return MessageResult("duplicate", [row.instance_id] if row.instance_id else [], message_id)


def _route(uow: UnitOfWork, actor: str, name: str, key: str, data: dict[str, Any],
           message_id: str | None) -> MessageResult:
    now = uow.app.now()
    row = BufferedMessage(message_id=message_id, name=name, correlation_key=key, data=data,
                          state=MessageState.BUFFERED.value, received_at=now,
                          expires_at=now + uow.app.config.message_ttl, sender=actor)
    uow.session.add(row)
    uow.session.flush()
    delivered = _deliver_to_subscribers(uow, actor, row)
    if delivered:
        return _mark(row, MessageState.DELIVERED.value, delivered, now)
    started = _start_by_message(uow, actor, row)
    if started:
        return _mark(row, MessageState.STARTED.value, started, now)
    uow.record("message_buffered", actor, data={"name": name, "correlation_key": key, "message_id": message_id,
                                                 "expires_at": row.expires_at.isoformat()})
    return MessageResult(MessageState.BUFFERED.value, [], message_id, row.expires_at)


def _mark(row: BufferedMessage, outcome: str, instance_ids: list[str], now: Any) -> MessageResult:
    row.state, row.delivered_at, row.instance_id = outcome, now, instance_ids[0]
    return MessageResult(outcome, instance_ids, row.message_id)


def _deliver_to_subscribers(uow: UnitOfWork, actor: str, message: BufferedMessage) -> list[str]:
    subs = uow.session.scalars(select(MessageSubscription).where(
        MessageSubscription.message_name == message.name,
        MessageSubscription.correlation_key == message.correlation_key).order_by(MessageSubscription.id)).all()
    chosen: dict[str, tuple[str, str]] = {}
    for sub in subs:
        chosen.setdefault(sub.pathway_key, (sub.instance_id, sub.task_id))
    delivered = []
    for instance_id, task_id in chosen.values():
        instance = lock_instance(uow, instance_id)
        workflow = load_workflow(uow, instance)
        if _hand_over(uow, actor, instance, workflow, message, task_id):
            save_workflow(uow, instance, workflow, actor)
            delivered.append(instance_id)
    return delivered


def _hand_over(uow: UnitOfWork, actor: str, instance: Instance, workflow: RunningWorkflow,
               message: BufferedMessage, task_id: str) -> bool:
    uow.record("message_received", actor, instance_id=instance.id, pathway_version_id=instance.pathway_version_id,
               task_id=task_id, data={"name": message.name, "correlation_key": message.correlation_key,
                                      "message_id": message.message_id, "data": message.data})
    uow.delivered_catches.add(task_id)  # its wait ends received, not cancelled
    return workflow.deliver_message(message.name, message.data, uow.app.clock, message.correlation_key, task_id)


def _start_by_message(uow: UnitOfWork, actor: str, message: BufferedMessage) -> list[str]:
    versions = uow.session.scalars(
        select(PathwayVersion).join(MessageStartEvent, MessageStartEvent.pathway_version_id == PathwayVersion.id)
        .where(MessageStartEvent.message_name == message.name, PathwayVersion.retired.is_(False))
        .order_by(PathwayVersion.key, PathwayVersion.version.desc())).all()
    latest: dict[str, PathwayVersion] = {}
    for version in versions:
        latest.setdefault(version.key, version)
    started = []
    for version in latest.values():
        patient = message.data.get("patient_id")
        try:
            instance = begin_instance(uow, version, message.correlation_key,
                                      str(patient) if patient is not None else None, message.data, actor,
                                      message=(message.name, message.data))
        except Conflict as exc:
            raise Conflict(f"message '{message.name}' would start pathway '{version.key}' for business key "
                           f"'{message.correlation_key}', which already has an active instance") from exc
        started.append(instance.id)
    return started


def deliver_buffered(uow: UnitOfWork, instance: Instance, workflow: RunningWorkflow) -> bool:
    """Give the instance the oldest live buffered message one of its catches waits for."""
    now = uow.app.now()
    query = (select(BufferedMessage, MessageSubscription.task_id).join(MessageSubscription, (
        MessageSubscription.message_name == BufferedMessage.name)
        & (MessageSubscription.correlation_key == BufferedMessage.correlation_key))
        .where(MessageSubscription.instance_id == instance.id, BufferedMessage.state == MessageState.BUFFERED,
               BufferedMessage.expires_at > now)
        .order_by(BufferedMessage.id).limit(1))
    if uow.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(of=BufferedMessage, skip_locked=True)
    uow.session.flush()
    found = uow.session.execute(query).first()
    if found is None:
        return False
    message, task_id = found
    if not _hand_over(uow, "system", instance, workflow, message, task_id):
        return False
    message.state, message.delivered_at, message.instance_id = MessageState.DELIVERED.value, now, instance.id
    return True


def expire_messages(app: CarePath) -> int:
    with UnitOfWork(app) as uow:
        result = uow.session.execute(update(BufferedMessage).where(
            BufferedMessage.state == MessageState.BUFFERED, BufferedMessage.expires_at <= app.now())
            .values(state=MessageState.EXPIRED.value))
        uow.commit()
        return int(getattr(result, "rowcount", 0) or 0)
