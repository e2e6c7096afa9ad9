"""/api/notifications: the outbox of reminders and escalations, and what became of each delivery."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from carepath.engine.identity import notification_scope
from carepath.engine.queries import list_notifications
from carepath.engine.usecases.notification_reads import ALL, mark_read

from ..deps import CurrentUser, EngineDep
from ..params import OffsetParam
from ..schemas import BODY_ERRORS, ERROR_RESPONSES, NotificationPage, errors

router = APIRouter(prefix="/api/notifications", tags=["notifications"], responses=ERROR_RESPONSES)


@router.get("", response_model=NotificationPage, responses=errors(422))
def list_(engine: EngineDep, user: CurrentUser,
          state: Literal["pending", "delivered", "failed"] | None = None,
          kind: Literal["reminder", "overdue"] | None = None, task_id: str | None = None,
          instance_id: str | None = None, limit: Annotated[int, Query(ge=1, le=500)] = 50,
          offset: OffsetParam = 0) -> NotificationPage:
    """Newest first. Auditors and admins read the whole outbox; supervisors the notifications about
    tasks they can see (their groups')."""
    visible_to = notification_scope(user)
    with engine.db.read() as session:
        page = list_notifications(session, state=state, kind=kind, task_id=task_id, instance_id=instance_id,
                                  limit=limit, offset=offset, visible_to=visible_to)
    return NotificationPage.model_validate(page)


MAX_ID = 2**63 - 1


class MarkAllIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    up_to: int | None = Field(None, ge=1, le=MAX_ID, description="mark only notifications up to this id (the "
                              "newest one the reader was shown); absent: all")


class MarkedOut(BaseModel):
    marked: int = Field(description="how many notifications became read (0: they were already)")


@router.post("/read", response_model=MarkedOut, responses=errors(*BODY_ERRORS))
def read_all(body: MarkAllIn, engine: EngineDep, user: CurrentUser) -> MarkedOut:
    """Mark every notification the caller may read as read by them (the web app's inbox counts the rest
    as unread); read marks are per user."""
    return MarkedOut(marked=mark_read(engine, user, ALL, up_to=body.up_to))


@router.post("/{notification_id}/read", response_model=MarkedOut, responses=errors(404, 422))
def read_one(notification_id: Annotated[int, Path(ge=1, le=MAX_ID)], engine: EngineDep,
             user: CurrentUser) -> MarkedOut:
    """Mark one notification as read by the caller: not found unless they may read it."""
    return MarkedOut(marked=mark_read(engine, user, notification_id))
