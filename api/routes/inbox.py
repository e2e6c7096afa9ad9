"""/api/inbox: the messages received from outside (HL7 v2 ADT over MLLP, FHIR encounter notifications) and
their outcome, for admins; reprocessing a failed one. The raw payload (PHI) is answered for one message at a
time, while it is kept.

The rules are the engine's: engine/usecases/inbox.py (INBOX_RULES in engine/rules.py).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi import Path as PathParam

from carepath.engine.inbox_queries import MAX_PAGE, get_inbox_message, inbox_state, list_inbox
from carepath.engine.usecases.inbox import reprocess

from ..deps import CurrentUser, EngineDep
from ..schemas import ERROR_RESPONSES, Out, UtcInstant, errors

router = APIRouter(tags=["inbox"], responses=ERROR_RESPONSES)
MessageId = Annotated[int, PathParam(ge=1, le=2**62, description="the inbox message's number")]


class InboxMessageOut(Out):
    id: int
    sender: str  # MSH-3^MSH-4; FHIR: "FHIR <integration account>"
    control_id: str  # MSH-10; FHIR: the Bundle id, or the Encounter's key
    account: str
    peer: str
    received_at: UtcInstant
    message_type: str
    event: str
    version: str
    patient_key: str | None
    state: str
    outcome: str | None
    attempts: int
    processed_at: UtcInstant | None
    purged_at: UtcInstant | None


class InboxMessageDetailOut(InboxMessageOut):
    raw: str | None  # null once dropped after the retention period


class InboxPageOut(Out):
    items: list[InboxMessageOut]
    total: int
    offset: int
    limit: int


@router.get("/api/inbox", response_model=InboxPageOut, responses=errors(422))
def inbox(engine: EngineDep, user: CurrentUser,
          state: Annotated[str | None, Query(max_length=20, description="received, started, delivered, "
                                             "nothing_to_do or failed")] = None,
          offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
          limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50) -> InboxPageOut:
    """Inbox messages, newest first (admins), optionally in one state: `failed` is the dead-letter list."""
    page = list_inbox(engine, user, state=inbox_state(state), offset=offset, limit=limit)
    return InboxPageOut.model_validate(page)


@router.get("/api/inbox/{message_id}", response_model=InboxMessageDetailOut, responses=errors(404, 422))
def inbox_message(message_id: MessageId, engine: EngineDep, user: CurrentUser) -> InboxMessageDetailOut:
    """One inbox message with its raw payload while it is kept (admins)."""
    return InboxMessageDetailOut.model_validate(get_inbox_message(engine, user, message_id))


@router.post("/api/inbox/{message_id}/reprocess", response_model=InboxMessageDetailOut,
             responses=errors(404, 409, 422))
def reprocess_message(message_id: MessageId, engine: EngineDep, user: CurrentUser) -> InboxMessageDetailOut:
    """Process a failed message again, after fixing its cause (admins). It is processed at once unless an
    earlier message of the same patient waits (then it is `received` and processed after that one)."""
    reprocess(engine, user, message_id)
    return InboxMessageDetailOut.model_validate(get_inbox_message(engine, user, message_id))
