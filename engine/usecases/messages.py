"""Messages from outside: correlated in the database by name and key, never broadcast.

A message goes to the waiting catch whose (name, correlation key) matches, at most one instance
per pathway and only an instance its sender may reach (`identity.message_scope`: what a task worker
may read; integration accounts, clinical leads and admins reach every instance); failing that it
starts the pathways whose message start event has that name; failing that it is buffered until its
time-to-live ends and delivered when a matching catch its sender may reach is reached. A name no
deployed pathway catches or starts with is refused (a typo would otherwise sit buffered for days).
The row is marked with its outcome before the save that follows a delivery, so the catch a delivery
re-arms never receives the same message again.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists, select, union, update
from sqlalchemy.exc import IntegrityError

from ..application import CarePath
from ..bounds import check_json
from ..errors import Conflict, Problem, ValidationFailed
from ..identity import Principal, Role, message_scope
from ..model import InstanceStatus, MessageState
from ..persistence.tables import (
    BufferedMessage,
    Instance,
    MessageCatchEvent,
    MessageStartEvent,
    MessageSubscription,
    PathwayVersion,
)
from ..persistence.unit_of_work import UnitOfWork
from ..queries import instance_is_visible, instances_visible_to
from ..rules import MESSAGE_RULES, advance, check_role
from ..views import MessageResult
from .after_steps import after_engine_steps, hand_over
from .instances import _check_key, begin_instance
from .store import load_workflow, lock_instance, with_conflict_retries

ACTIVE_STATES = (InstanceStatus.RUNNING.value, InstanceStatus.INCIDENT.value)
SEES_MESSAGE_NAMES = (Role.CLINICAL_LEAD,)  # and admins: they deploy, so the names are theirs to know


def correlate_message(app: CarePath, principal: Principal, name: str, correlation_key: str,
                      data: dict[str, Any] | None = None, message_id: str | None = None) -> MessageResult:
    check_role(MESSAGE_RULES["send"], principal)
    check_json(app, data, "data")
    _check_key("name", name)
    _check_key("correlation_key", correlation_key)
    if message_id is not None:
        _check_key("message_id", message_id)
    if data is not None and not isinstance(data, dict):
        raise ValidationFailed("message data must be a JSON object")

    def attempt() -> MessageResult:
        with UnitOfWork(app) as uow:
            previous = _previous(uow, principal, message_id, name, correlation_key, data or {})
            if previous is not None:
                return previous
            _check_name_in_use(uow, principal, name)
            result = _route(uow, principal, name, correlation_key, data or {}, message_id)
            uow.commit()
            return result

    try:
        return with_conflict_retries(app, attempt)
    except IntegrityError:
        with UnitOfWork(app) as uow:  # the same message_id arrived concurrently: the other one won
            previous = _previous(uow, principal, message_id, name, correlation_key, data or {})
        if previous is None:
            raise
        return previous


def deliver_in(uow: UnitOfWork, principal: Principal, name: str, correlation_key: str,
               data: dict[str, Any]) -> MessageResult:
    """A message routed inside the caller's transaction (an ADT event's trigger), as `correlate_message`
    routes it: to the waiting catch, else buffered until its time-to-live ends."""
    check_role(MESSAGE_RULES["send"], principal)
    _check_name_in_use(uow, principal, name)
    return _route(uow, principal, name, correlation_key, data, None)


def _previous(uow: UnitOfWork, principal: Principal, message_id: str | None, name: str, key: str,
              data: dict[str, Any]) -> MessageResult | None:
    """The earlier delivery of the same message_id; a different message under that id is a conflict. The
    instance it reached is named only to a sender who may reach it."""
    if message_id is None:
        return None
    row = uow.session.scalars(select(BufferedMessage).where(BufferedMessage.message_id == message_id)).first()
    if row is None:
        return None
    scope = message_scope(principal)
    reached = row.instance_id is not None and (
        scope is None or instance_is_visible(uow.session, row.instance_id, scope))
    if (row.name, row.correlation_key, row.data) != (name, key, data):
        # What the earlier message was is told only to its sender or to one who may read where it went.
        told = row.sender == principal.name or reached or scope is None
        earlier = f" ('{row.name}' for '{row.correlation_key}')" if told else ""
        raise Conflict(f"message_id '{message_id}' was already used for a different message{earlier}; "
                       "message ids must be unique per message")
    return MessageResult("duplicate", [row.instance_id] if reached and row.instance_id else [], message_id)


def _check_name_in_use(uow: UnitOfWork, principal: Principal, name: str) -> None:
    """Refuse a name that no version still in use (deployed and not retired, or with an episode still
    running) catches or starts with; only those who deploy are told the names in use."""
    session = uow.session
    in_use = _names_in_use().subquery()
    if session.scalar(select(exists().where(in_use.c.message_name == name))):
        return
    refusal = f"no deployed pathway catches or starts with a message named '{name}'; check the name"
    if principal.is_admin or principal.role in SEES_MESSAGE_NAMES:
        names = sorted(session.scalars(select(in_use.c.message_name)).all())
        refusal += f" (names in use: {', '.join(names) if names else 'none'})"
    raise ValidationFailed(refusal, [Problem(refusal, field="name")])


def _names_in_use() -> Any:
    running = select(Instance.id).where(Instance.pathway_version_id == PathwayVersion.id,
                                        Instance.status.in_(ACTIVE_STATES))
    in_use = PathwayVersion.retired.is_(False) | exists(running)
    return union(
        select(MessageCatchEvent.message_name).join(
            PathwayVersion, PathwayVersion.id == MessageCatchEvent.pathway_version_id).where(in_use),
        select(MessageSubscription.message_name))  # a called pathway's catch, bound to a version since retired


def _route(uow: UnitOfWork, principal: Principal, name: str, key: str, data: dict[str, Any],
           message_id: str | None) -> MessageResult:
    now = uow.app.now()
    scope = message_scope(principal)
    row = BufferedMessage(message_id=message_id, name=name, correlation_key=key, data=data,
                          state=MessageState.BUFFERED.value,
                          received_at=now, expires_at=now + uow.app.config.message_ttl, sender=principal.name,
                          sender_scope=None if scope is None else {"user": scope[0], "groups": sorted(scope[1])})
    uow.session.add(row)
    uow.session.flush()
    delivered = _deliver_to_subscribers(uow, principal.name, row, scope)
    if delivered:
        return MessageResult(MessageState.DELIVERED.value, delivered, message_id)
    started = _start_by_message(uow, principal.name, row)
    if started:
        return MessageResult(MessageState.STARTED.value, started, message_id)
    uow.record("message_buffered", principal.name, data={
        "name": name, "correlation_key": key, "message_id": message_id, "expires_at": row.expires_at.isoformat()})
    return MessageResult(MessageState.BUFFERED.value, [], message_id, row.expires_at)


def _settle(row: BufferedMessage, action: str, now: Any) -> None:
    """Mark the row with its outcome (`deliver`, `start`) before the save that may look for buffered
    messages; a message reaching a second pathway's instance is already settled."""
    if row.state == MessageState.BUFFERED:
        advance(row, MESSAGE_RULES, action, f"message {row.message_id or row.id}")
        row.delivered_at = now


def _deliver_to_subscribers(uow: UnitOfWork, actor: str, message: BufferedMessage,
                            scope: tuple[str, frozenset[str]] | None) -> list[str]:
    query = select(MessageSubscription).where(
        MessageSubscription.message_name == message.name,
        MessageSubscription.correlation_key == message.correlation_key).order_by(MessageSubscription.id)
    if scope is not None:  # an instance the sender may not read is not there for them
        query = query.where(MessageSubscription.instance_id.in_(
            select(Instance.id).where(instances_visible_to(uow.session, *scope))))
    chosen: dict[str, tuple[str, str]] = {}
    for sub in uow.session.scalars(query).all():
        chosen.setdefault(sub.pathway_key, (sub.instance_id, sub.task_id))
    delivered = []
    for instance_id, task_id in chosen.values():
        instance = lock_instance(uow, instance_id)
        workflow = load_workflow(uow, instance)
        if hand_over(uow, actor, instance, workflow, message, task_id):
            _settle(message, "deliver", uow.app.now())
            message.instance_id = message.instance_id or instance_id
            after_engine_steps(uow, instance, workflow, actor)
            delivered.append(instance_id)
    return delivered


def _start_by_message(uow: UnitOfWork, actor: str, message: BufferedMessage) -> list[str]:
    versions = uow.session.scalars(
        select(PathwayVersion).join(MessageStartEvent, MessageStartEvent.pathway_version_id == PathwayVersion.id)
        .where(MessageStartEvent.message_name == message.name, PathwayVersion.retired.is_(False))
        .order_by(PathwayVersion.key, PathwayVersion.version.desc())).all()
    latest: dict[str, PathwayVersion] = {}
    for version in versions:
        latest.setdefault(version.key, version)
    if latest:
        _settle(message, "start", uow.app.now())
    started = []
    for version in latest.values():
        patient = message.data.get("patient_id")
        if patient is not None:
            _check_key("data.patient_id", str(patient))
        try:
            instance = begin_instance(uow, version, message.correlation_key,
                                      str(patient) if patient is not None else None, message.data, actor,
                                      message=(message.name, message.data))
        except Conflict as exc:
            raise Conflict(f"message '{message.name}' would start pathway '{version.key}' for business key "
                           f"'{message.correlation_key}', which already has an active instance") from exc
        started.append(instance.id)
        message.instance_id = message.instance_id or instance.id
    return started


def expire_messages(app: CarePath) -> int:
    with UnitOfWork(app) as uow:
        result = uow.session.execute(update(BufferedMessage).where(
            BufferedMessage.state == MessageState.BUFFERED, BufferedMessage.expires_at <= app.now())
            .values(state=MessageState.EXPIRED.value))
        uow.commit()
        return int(getattr(result, "rowcount", 0) or 0)
