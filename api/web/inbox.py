"""The notifications inbox (`/app/notifications`): the reminders and escalations the user may read
(identity.notification_scope, as GET /api/notifications), newest first, with what they have not read;
each alert once, though it is written once per delivery channel (notification_reads.inbox_channel).

Opening the inbox marks nothing: "Mark as read" on an item and "Mark all read" do
(usecases/notification_reads.mark_read). Each item links to its task's page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import Response

from carepath.engine.application import CarePath
from carepath.engine.errors import NotFound, PermissionDenied, ValidationFailed
from carepath.engine.identity import Principal, notification_scope
from carepath.engine.notifications import alert_subject
from carepath.engine.queries import list_notifications
from carepath.engine.team_queries import read_marks, unread_count, user_id
from carepath.engine.usecases.notification_reads import ALL, inbox_channel, mark_read
from carepath.engine.usecases.notifications import ALERT_KINDS
from carepath.engine.views import NotificationView

from .cookies import engine_of
from .flash import redirect_saying
from .pages import page, posted_form, require_user, safe_next, text_fields

router = APIRouter(include_in_schema=False)

INBOX = "/app/notifications"
PAGE_ITEMS = 50
MAX_ID = 2**63 - 1
Show = Literal["unread", "all"]


@dataclass(frozen=True)
class InboxItem:
    notification: NotificationView
    read: bool
    title: str  # a deadline alert's title made again in the care setting's zone; another's as stored
    created: str  # in the care setting's zone
    due: str | None  # the task's due date when the notification was made, in the care setting's zone


def unread_of(engine: CarePath, user: Principal) -> int | None:
    """How many notifications the user has not read; None for a user who reads none (no query is made)."""
    try:
        scope = notification_scope(user)
    except PermissionDenied:
        return None
    with engine.db.read() as session:
        reader = user_id(session, user.name)
        return unread_count(session, reader, scope, inbox_channel(engine)) if reader is not None else None


@router.get(INBOX)
def inbox(request: Request, show: Show = "unread",
          offset: Annotated[int, Query(ge=0, le=100_000)] = 0) -> Response:
    user = require_user(request)
    engine = engine_of(request)
    scope = notification_scope(user.principal)
    zone = engine.time_context().tz
    channel = inbox_channel(engine)
    with engine.db.read() as session:
        reader = user_id(session, user.principal.name)
        if reader is None:
            raise NotFound(f"user '{user.principal.name}' does not exist")
        found = list_notifications(session, visible_to=scope, unread_by=reader if show == "unread" else None,
                                   channel=channel, limit=PAGE_ITEMS, offset=offset)
        read = read_marks(session, reader, (n.id for n in found.items))
        unread = unread_count(session, reader, scope, channel)
    items = [InboxItem(n, n.id in read, _title(n, zone), _shown(n.created_at, zone),
                       _due(n.payload.get("due_date"), zone)) for n in found.items]
    query: dict[str, str] = {"show": show} if show != "unread" else {}
    query |= {"offset": str(offset)} if offset else {}
    here = f"{INBOX}?{urlencode(query)}" if query else INBOX
    newest = max((n.id for n in found.items), default=None) if offset == 0 else None
    return page(request, "inbox.html", user=user, items=items, show=show, unread=unread, total=found.total,
                exact=found.total_exact, offset=offset, limit=PAGE_ITEMS, here=here, newest=newest, zone=zone.key)


@router.post(INBOX + "/{notification_id}/read")
async def mark_one_read(request: Request,
                        notification_id: Annotated[int, PathParam(ge=1, le=MAX_ID)]) -> Response:
    user = require_user(request)
    form = text_fields(await posted_form(request, user))
    mark_read(engine_of(request), user.principal, notification_id)
    return redirect_saying(request, _back(form), "Marked as read.")


@router.post(INBOX + "/read")
async def mark_all_read(request: Request) -> Response:
    user = require_user(request)
    form = text_fields(await posted_form(request, user))
    up_to = form.get("up_to", "")
    if re.fullmatch(r"[0-9]{1,19}", up_to) is None or not 1 <= int(up_to) <= MAX_ID:
        raise ValidationFailed("up_to: the newest notification shown, a whole number, is required")
    mark_read(engine_of(request), user.principal, ALL, up_to=int(up_to))
    return redirect_saying(request, _back(form), "Every notification shown is marked as read.")


def _shown(at: datetime, zone: ZoneInfo) -> str:
    return at.astimezone(zone).strftime("%a %d %b %Y %H:%M")


def _due_at(value: object) -> datetime | None:
    """The payload's due date (ISO, as the alert wrote it); None when absent or unreadable."""
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _due(value: object, zone: ZoneInfo) -> str | None:
    due = _due_at(value)
    return _shown(due, zone) if due else None


def _title(notification: NotificationView, zone: ZoneInfo) -> str:
    payload = notification.payload
    if notification.kind not in ALERT_KINDS or not isinstance(payload.get("task_name"), str):
        return notification.subject
    assignee = payload.get("assignee")
    return alert_subject(notification.kind, payload["task_name"], _due_at(payload.get("due_date")),
                         assignee if isinstance(assignee, str) else None, zone)


def _back(form: dict[str, str]) -> str:
    back = form.get("back", "")
    return back if back.startswith(INBOX) and safe_next(back) == back else INBOX
