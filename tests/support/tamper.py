"""Writing to the history as someone with the database's owner rights would: the append-only triggers
(migration 0011) refuse UPDATE and DELETE to everyone else, so tests of tamper evidence turn them off
for one transaction first."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from carepath.engine.application import CarePath
from carepath.engine.persistence.tables import Event

EVENTS = Event.__table__


@contextmanager
def as_owner(app: CarePath) -> Iterator[Connection]:
    """A transaction in which the history's append-only triggers do not fire."""
    with app.db.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(sa.text("SET LOCAL session_replication_role = replica"))  # superuser: no triggers
            yield connection
            return
        triggers = connection.execute(sa.text(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name LIKE '%append_only%'")).all()
        for name, _ in triggers:
            connection.execute(sa.text(f"DROP TRIGGER {name}"))
        yield connection
        for _, sql in triggers:
            connection.execute(sa.text(sql))


def update_event(app: CarePath, event_id: int, **values: Any) -> None:
    with as_owner(app) as connection:
        connection.execute(sa.update(EVENTS).where(EVENTS.c.id == event_id).values(**values))
