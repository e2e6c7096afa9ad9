"""Failed sign-ins slowed per account and per address, counted in the database, before anything is written.

After `max_failures` failures of one key (an account name, a client address) within `window`, that key
is refused for `window` whatever the password: the caller answers with the same generic message as a
wrong password, so a locked account does not say it exists. The counts are rows of `sign_in_attempts`,
shared by every process and machine on the database: one atomic INSERT ... ON CONFLICT DO UPDATE ...
RETURNING per key, so failures at the same moment in several processes are each counted and exactly one
of them starts the lockout. The window is fixed: it starts at the first failure and the count restarts
after it. Rows whose window and lockout have ended are pruned at each failure, so the table holds at
most the keys that failed within one window. Only the start of a lockout is written to the history (by
the caller, in the same transaction), so a flood of bad attempts adds one entry per key and window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, delete, literal, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import ReturningInsert

from .persistence.tables import SignInAttempt, UTCDateTime

MAX_KEY = 300  # the column's length; names are at most 200 characters, addresses short


@dataclass(frozen=True)
class Lockout:
    key: str
    failures: int
    until: datetime


def _key(key: str) -> str:
    return key[:MAX_KEY]


@dataclass(frozen=True)
class SignInThrottle:
    max_failures: int = 5
    window: timedelta = timedelta(minutes=15)

    def refused(self, session: Session, keys: tuple[str, ...], now: datetime) -> bool:
        """A key is locked now (read only: nothing is written for a refused attempt)."""
        found = session.scalar(select(SignInAttempt.key).where(
            SignInAttempt.key.in_([_key(k) for k in keys]), SignInAttempt.locked_until > now).limit(1))
        return found is not None

    def failed(self, session: Session, keys: tuple[str, ...], now: datetime) -> list[Lockout]:
        """Count a failure against each key (in the caller's transaction); the lockouts this failure starts."""
        self.prune(session, now)
        started = []
        for key in keys:
            failures: int = session.execute(self._count_failure(session, _key(key), now)).scalar_one()
            if failures == self.max_failures:  # exactly one failure of a window reaches the threshold
                started.append(Lockout(_key(key), failures, now + self.window))
        return started

    def succeeded(self, session: Session, key: str, now: datetime) -> None:
        """The account signed in: its count starts again (a lockout still running stays)."""
        session.execute(delete(SignInAttempt).where(SignInAttempt.key == _key(key), or_(
            SignInAttempt.locked_until.is_(None), SignInAttempt.locked_until <= now)))

    def prune(self, session: Session, now: datetime) -> None:
        session.execute(delete(SignInAttempt).where(SignInAttempt.window_start <= now - self.window, or_(
            SignInAttempt.locked_until.is_(None), SignInAttempt.locked_until <= now)))

    def _count_failure(self, session: Session, key: str, now: datetime) -> ReturningInsert[Any]:
        dialect = session.get_bind().dialect.name
        if dialect not in ("postgresql", "sqlite"):
            raise NotImplementedError(f"the sign-in throttle needs PostgreSQL or SQLite, not {dialect}")
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        until = literal(now + self.window, UTCDateTime())
        stmt = insert(SignInAttempt).values(key=key, window_start=now, failures=1,
                                            locked_until=now + self.window if self.max_failures <= 1 else None)
        table = SignInAttempt.__table__.c
        expired = table.window_start <= now - self.window
        failures = case((expired, 1), else_=table.failures + 1)
        locks = and_(failures >= self.max_failures, or_(table.locked_until.is_(None), table.locked_until <= now))
        return stmt.on_conflict_do_update(index_elements=[table.key], set_={
            "failures": failures,
            "window_start": case((expired, literal(now, UTCDateTime())), else_=table.window_start),
            "locked_until": case((locks, until), else_=table.locked_until),
        }).returning(table.failures)
