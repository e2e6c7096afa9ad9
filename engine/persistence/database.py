"""Database engines and sessions for SQLite (embedded default) and PostgreSQL.

SQLite: WAL, a busy timeout, foreign keys, and writes that begin IMMEDIATE so that two writers
queue for the lock instead of failing with "database is locked" halfway through a transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

WRITE_OPTION = "carepath_write"


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def make_engine(url: str, *, echo: bool = False, pool_size: int = 10) -> Engine:
    # hide_parameters: a database error's message (logged with its traceback) must not carry the statement's
    # values, which are patient ids, form data and names.
    if is_sqlite(url):
        engine = create_engine(url, echo=echo, hide_parameters=True,
                               connect_args={"timeout": 30, "check_same_thread": False})
        _configure_sqlite(engine)
        return engine
    return create_engine(url, echo=echo, hide_parameters=True, pool_size=pool_size, max_overflow=pool_size,
                         pool_pre_ping=True)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let us issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Database:
    """One engine, a session factory for writes and one for reads."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.engine = make_engine(url, echo=echo)
        write_engine = self.engine.execution_options(**{WRITE_OPTION: True})
        self.write_sessions = sessionmaker(write_engine, expire_on_commit=False)
        self.read_sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._statements: Engine | None = None

    @contextmanager
    def single_statement(self) -> Iterator[Connection]:
        """A connection for a change that is ONE statement, hence its own transaction, made in one round trip
        (the MLLP listener's store, which every acknowledgement waits for). On PostgreSQL: autocommit, from a
        small pool of its own without the checkout ping (a dropped connection raises, the caller may try
        again once); on SQLite: an ordinary write transaction."""
        if self.dialect != "postgresql":
            with self.engine.execution_options(**{WRITE_OPTION: True}).begin() as connection:
                yield connection
            return
        if self._statements is None:
            self._statements = create_engine(self.url, hide_parameters=True, pool_size=5, max_overflow=5,
                                             isolation_level="AUTOCOMMIT")
        with self._statements.connect() as connection:
            yield connection

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def read(self) -> Session:
        return self.read_sessions()

    def dispose(self) -> None:
        self.engine.dispose()
        if self._statements is not None:
            self._statements.dispose()
