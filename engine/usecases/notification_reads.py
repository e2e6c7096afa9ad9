"""Marking notifications read: the inbox's "unread" is per user (table notification_reads).

A read mark is the reader's own bookmark: the notification itself (its delivery state) does not change,
and nothing about a patient does, so it is not in the history. Only a notification the user may see can
be marked (identity.notification_scope, the list's rule): another one is not found.
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy import Insert, Integer, insert, literal, select
from sqlalchemy.dialects import postgresql, sqlite

from ..application import CarePath
from ..errors import NotFound
from ..identity import Principal, notification_scope
from ..persistence.tables import NotificationRead, NotificationRecord, UTCDateTime
from ..persistence.unit_of_work import UnitOfWork
from ..queries import not_read_by, notifications_visible_to
from ..team_queries import user_id

ALL = "all"


def inbox_channel(app: CarePath) -> str | None:
    """An alert is written once per configured channel (usecases/notifications.notify); a reader's inbox
    shows it once: the row of the first channel (the outbox, by default). None: no channel, no rows."""
    return app.channels[0].name if app.channels else None


def mark_read(app: CarePath, principal: Principal, which: int | Literal["all"], *, up_to: int | None = None) -> int:
    """Mark one notification (by id) or all the user may see (up to id `up_to`, the newest their page
    showed, so one that arrived meanwhile stays unread) as read by them, in one transaction. Marking
    again changes nothing. Returns how many became read."""
    scope = notification_scope(principal)
    with UnitOfWork(app) as uow:
        session = uow.session
        reader = user_id(session, principal.name)
        if reader is None:
            raise NotFound(f"user '{principal.name}' does not exist")
        query = select(literal(reader, Integer()), NotificationRecord.id, literal(app.now(), UTCDateTime())).where(
            notifications_visible_to(session, scope), not_read_by(reader))
        if which == ALL:
            if up_to is not None:
                query = query.where(NotificationRecord.id <= up_to)
        else:
            exists = select(NotificationRecord.id).where(NotificationRecord.id == which,
                                                         notifications_visible_to(session, scope))
            if session.scalar(exists) is None:
                raise NotFound(f"notification {which} does not exist")
            query = query.where(NotificationRecord.id == which)
        marked = session.scalars(_insert_new(session.get_bind().dialect.name).from_select(
            ["user_id", "notification_id", "read_at"], query).returning(NotificationRead.notification_id)).all()
        uow.commit()
    return len(marked)


def _insert_new(dialect: str) -> Insert:
    """INSERT that skips a mark written meanwhile by the same user in another tab (a double click)."""
    if dialect == "postgresql":
        return postgresql.insert(NotificationRead).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite.insert(NotificationRead).on_conflict_do_nothing()
    return insert(NotificationRead)
