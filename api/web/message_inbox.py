"""The message inbox for admins (`/app/inbox`): messages received (MLLP, FHIR) by state (the failed ones
first: the dead-letter list), each with its outcome and a Reprocess button; one message's page shows its
raw payload (PHI) while it is kept.

The same engine functions as GET /api/inbox and POST /api/inbox/{id}/reprocess (engine/inbox_queries.py,
engine/usecases/inbox.py): admins only, by the engine's rule; anyone else gets the 403 page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import Response

from carepath.engine.errors import Conflict
from carepath.engine.inbox_queries import get_inbox_message, inbox_state, list_inbox
from carepath.engine.model import InboxState
from carepath.engine.usecases.inbox import reprocess

from .cookies import engine_of
from .pages import page, posted_form, redirect, require_user

router = APIRouter(include_in_schema=False)
INBOX = "/app/inbox"
PAGE_SIZE = 50
MessageId = Annotated[int, PathParam(ge=1, le=2**62)]
STATE_LABELS = {InboxState.FAILED: "Failed", InboxState.RECEIVED: "Waiting", InboxState.STARTED: "Started",
                InboxState.DELIVERED: "Delivered", InboxState.NOTHING_TO_DO: "Nothing to do"}


@dataclass(frozen=True)
class Paging:
    previous: str | None
    next: str | None


def _zone_time(request: Request, at: datetime | None) -> str:
    if at is None:
        return "—"
    return at.astimezone(engine_of(request).time_context().tz).strftime("%a %d %b %Y %H:%M:%S")


@router.get(INBOX)
def inbox_page(request: Request, state: Annotated[str, Query(max_length=20)] = InboxState.FAILED.value,
               offset: Annotated[int, Query(ge=0, le=10**9)] = 0) -> Response:
    user = require_user(request)
    shown = inbox_state(state) or InboxState.FAILED
    listed = list_inbox(engine_of(request), user.principal, state=shown, offset=offset, limit=PAGE_SIZE)
    def at(start: int) -> str:
        return f"{INBOX}?{urlencode({'state': shown.value, 'offset': start})}"

    paging = Paging(previous=at(max(offset - PAGE_SIZE, 0)) if offset else None,
                    next=at(offset + PAGE_SIZE) if offset + PAGE_SIZE < listed.total else None)
    return page(request, "message_inbox.html", user=user, listed=listed, shown=shown, labels=STATE_LABELS,
                paging=paging, paging_label="Pages of messages", when=lambda at: _zone_time(request, at),
                zone=engine_of(request).time_context().tz.key)


@router.get(INBOX + "/{message_id}")
def message_page(request: Request, message_id: MessageId) -> Response:
    user = require_user(request)
    message = get_inbox_message(engine_of(request), user.principal, message_id)
    return page(request, "message_inbox_item.html", user=user, message=message, labels=STATE_LABELS,
                when=lambda at: _zone_time(request, at), state=InboxState(message.state))


@router.post(INBOX + "/{message_id}/reprocess")
async def reprocess_submit(request: Request, message_id: MessageId) -> Response:
    user = require_user(request)
    await posted_form(request, user)
    try:
        reprocess(engine_of(request), user.principal, message_id)
    except Conflict as refused:
        message = get_inbox_message(engine_of(request), user.principal, message_id)
        return page(request, "message_inbox_item.html", 409, user=user, message=message, labels=STATE_LABELS,
                    when=lambda at: _zone_time(request, at), state=InboxState(message.state), refused=refused.message)
    return redirect(f"{INBOX}/{message_id}?reprocessed=1")
