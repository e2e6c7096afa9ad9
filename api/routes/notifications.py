"""/api/notifications: the outbox of reminders and escalations, and what became of each delivery."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from carepath.engine.identity import notification_scope
from carepath.engine.queries import list_notifications

from ..deps import CurrentUser, EngineDep
from ..params import OffsetParam
from ..schemas import ERROR_RESPONSES, NotificationPage, errors

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
