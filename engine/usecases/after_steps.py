"""What follows engine steps in every transition: save, then hand over buffered messages.

Every use case that runs engine steps (start, task completion, timer firing, retry, cancel, message
delivery) ends with `after_engine_steps`: it saves the workflow, and when the instance now waits for
a message that arrived earlier and was buffered, it delivers that message and saves again, up to
`MAX_MESSAGE_CHAIN` times. Saving itself (`store.save_workflow`) only saves.
"""

from __future__ import annotations

from sqlalchemy import select

from ..bounds import check_json
from ..errors import ValidationFailed
from ..model import MessageState
from ..persistence.tables import BufferedMessage, Instance, MessageSubscription
from ..persistence.unit_of_work import UnitOfWork
from ..queries import instance_is_visible
from ..rules import MESSAGE_RULES, advance
from ..runtime.workflow import RunningWorkflow
from .referral_steps import referral_step_completed
from .store import save_workflow

MAX_MESSAGE_CHAIN = 20  # buffered messages handed to one instance in one transaction
CANDIDATES = 20  # buffered messages looked at per delivery: those the sender may not reach are skipped


def after_engine_steps(uow: UnitOfWork, instance: Instance, workflow: RunningWorkflow, actor: str,
                       *, completed_task_id: str | None = None) -> None:
    """Save the instance after engine steps; then deliver each live buffered message it now waits for."""
    snapshot = save_workflow(uow, instance, workflow, actor, completed_task_id=completed_task_id)
    if completed_task_id is not None:  # a referral step sends or updates its referral (sidecar referral_steps)
        referral_step_completed(uow, instance, workflow, completed_task_id, actor)
    for _ in range(MAX_MESSAGE_CHAIN):
        if not snapshot.messages or not deliver_buffered(uow, instance, workflow):
            break
        snapshot = save_workflow(uow, instance, workflow, actor)
    uow.snapshots[instance.id] = snapshot


def deliver_buffered(uow: UnitOfWork, instance: Instance, workflow: RunningWorkflow) -> bool:
    """Give the instance the oldest live buffered message one of its catches waits for and its sender may
    reach; the row is marked delivered before the save that follows, which must not find it again."""
    now = uow.app.now()
    query = (select(BufferedMessage, MessageSubscription.task_id).join(MessageSubscription, (
        MessageSubscription.message_name == BufferedMessage.name)
        & (MessageSubscription.correlation_key == BufferedMessage.correlation_key))
        .where(MessageSubscription.instance_id == instance.id, BufferedMessage.state == MessageState.BUFFERED,
               BufferedMessage.expires_at > now)
        .order_by(BufferedMessage.id).limit(CANDIDATES))
    if uow.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(of=BufferedMessage, skip_locked=True)
    uow.session.flush()
    for message, task_id in uow.session.execute(query).all():
        if not sender_reaches(uow, message, instance.id):
            continue
        if not within_bounds(uow, message, instance):
            continue
        if not hand_over(uow, "system", instance, workflow, message, task_id):
            return False
        advance(message, MESSAGE_RULES, "deliver", f"message {message.message_id or message.id}")
        message.delivered_at, message.instance_id = now, instance.id
        return True
    return False


def within_bounds(uow: UnitOfWork, message: BufferedMessage, instance: Instance) -> bool:
    """A message buffered before the JSON bounds existed (one nested 900 levels deep was once accepted)
    would fail every change that delivers it: it is refused instead (expired, recorded with the reason)."""
    try:
        check_json(uow.app, message.data, "data")
    except ValidationFailed as exc:
        rule = advance(message, MESSAGE_RULES, "refuse", f"message {message.message_id or message.id}")
        uow.record(rule.event or rule.action, "system", instance_id=instance.id,
                   pathway_version_id=instance.pathway_version_id,
                   data={"name": message.name, "correlation_key": message.correlation_key,
                         "message_id": message.message_id, "field": "state", "old": MessageState.BUFFERED.value,
                         "new": message.state, "reason": exc.message})
        return False
    return True


def sender_reaches(uow: UnitOfWork, message: BufferedMessage, instance_id: str) -> bool:
    """A message reaches only instances its sender could read when sending (`identity.instance_scope`,
    kept on the row); no scope reaches every instance."""
    scope = message.sender_scope
    if scope is None:
        return True
    return instance_is_visible(uow.session, instance_id, (scope["user"], frozenset(scope["groups"])))


def hand_over(uow: UnitOfWork, actor: str, instance: Instance, workflow: RunningWorkflow,
              message: BufferedMessage, task_id: str) -> bool:
    """The message into the catch the database matched it to, recorded as received; False when no task waits."""
    uow.record("message_received", actor, instance_id=instance.id, pathway_version_id=instance.pathway_version_id,
               task_id=task_id, data={"name": message.name, "correlation_key": message.correlation_key,
                                      "message_id": message.message_id, "data": message.data,
                                      "sender": message.sender})
    uow.delivered_catches.add(task_id)  # its wait ends received, not cancelled
    return workflow.deliver_message(message.name, message.data, uow.app.clock, message.correlation_key, task_id)
