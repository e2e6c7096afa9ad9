"""/api/messages: events from outside (a report arrived, the patient was admitted)."""

from __future__ import annotations

from fastapi import APIRouter

from carepath.engine.usecases.messages import correlate_message

from ..deps import EngineDep, SendingUser
from ..schemas import BODY_ERRORS, ERROR_RESPONSES, MessageIn, MessageOut, errors

router = APIRouter(prefix="/api/messages", tags=["messages"], responses=ERROR_RESPONSES)


@router.post("", response_model=MessageOut, responses=errors(409, *BODY_ERRORS))
def send(body: MessageIn, engine: EngineDep, user: SendingUser) -> MessageOut:
    result = correlate_message(engine, user, body.name, body.correlation_key, body.data, body.message_id)
    return MessageOut.model_validate(result)
