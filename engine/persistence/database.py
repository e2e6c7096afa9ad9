"""Database engines and sessions for SQLite (embedded default) and PostgreSQL.

SQLite: WAL, a busy timeout, foreign keys, and writes that begin IMMEDIATE so that two writers
queue for the lock instead of failing with "database is locked" halfway through a transaction.

PostgreSQL behind PgBouncer in transaction pooling mode: the URL says so with `?pgbouncer=true`
(read here and removed before it reaches the driver). Each transaction may then run on another
server connection, so nothing may outlive a transaction: psycopg's automatic prepared statements are
turned off (PgBouncer 1.18 cannot route them), and the code keeps no session state (advisory locks
are `pg_advisory_xact_lock`, `SET LOCAL` only, no LISTEN).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

WRITE_OPTION = "carepath_write"
PGBOUNCER_PARAMETER = "pgbouncer"
TRUE_WORDS = ("true", "1", "yes", "on")
REPLICA_RETRY_SECONDS = 30.0  # after a replica could not be reached, reports use the primary this long
REPLICA_CONNECT_TIMEOUT = 3

log = logging.getLogger("carepath")


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def behind_pgbouncer(url: str) -> bool:
    value = make_url(url).query.get(PGBOUNCER_PARAMETER)
    return isinstance(value, str) and value.lower() in TRUE_WORDS


def driver_url(url: str) -> URL:
    """The URL the driver gets: CarePath's own `pgbouncer` parameter removed."""
    return make_url(url).difference_update_query([PGBOUNCER_PARAMETER])


def _connect_args(url: str) -> dict[str, Any]:
    """psycopg's arguments: behind PgBouncer, no prepared statements (see the module's docstring)."""
    return {"prepare_threshold": None} if behind_pgbouncer(url) else {}


def make_engine(url: str, *, echo: bool = False, pool_size: int = 10) -> Engine:
    # hide_parameters: a database error's message (logged with its traceback) must not carry the statement's
    # values, which are patient ids, form data and names.
    if is_sqlite(url):
        engine = create_engine(url, echo=echo, hide_parameters=True,
                               connect_args={"timeout": 30, "check_same_thread": False})
        _configure_sqlite(engine)
        return engine
    connect_args = _connect_args(url)
    return create_engine(driver_url(url), echo=echo, hide_parameters=True, pool_size=pool_size,
                         max_overflow=pool_size, pool_pre_ping=True, connect_args=connect_args)


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
    """One engine, a session factory for writes and one for reads; optionally a read replica for the
    long reads (reports, audit searches and exports), `report_read()`."""

    def __init__(self, url: str, *, echo: bool = False, replica_url: str | None = None) -> None:
        self.url = url
        self.engine = make_engine(url, echo=echo)
        write_engine = self.engine.execution_options(**{WRITE_OPTION: True})
        self.write_sessions = sessionmaker(write_engine, expire_on_commit=False)
        self.read_sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.replica = _replica_engine(replica_url, echo) if replica_url else None
        self._replica_down_until = 0.0
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
            self._statements = create_engine(driver_url(self.url), hide_parameters=True, pool_size=5, max_overflow=5,
                                             isolation_level="AUTOCOMMIT", connect_args=_connect_args(self.url))
        with self._statements.connect() as connection:
            yield connection

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def read(self) -> Session:
        return self.read_sessions()

    @contextmanager
    def report_read(self) -> Iterator[Session]:
        """A read session on the replica when one is configured and answers, else on the primary (a
        replica that cannot be reached is left alone for REPLICA_RETRY_SECONDS, with a warning). Only
        for reads that may lag the primary by the replica's delay; what a read records is written to
        the primary by its own unit of work."""
        connection = self._replica_connection()
        if connection is None:
            with self.read() as session:
                yield session
            return
        with connection, Session(bind=connection, expire_on_commit=False) as session:
            yield session

    def _replica_connection(self) -> Any:
        if self.replica is None or time.monotonic() < self._replica_down_until:
            return None
        try:
            return self.replica.connect()
        except OperationalError as error:
            self._replica_down_until = time.monotonic() + REPLICA_RETRY_SECONDS
            log.warning("the read replica cannot be reached (%s); reports read from the primary for %d s",
                        str(error).splitlines()[0], REPLICA_RETRY_SECONDS)
            return None

    def dispose(self) -> None:
        self.engine.dispose()
        if self._statements is not None:
            self._statements.dispose()
        if self.replica is not None:
            self.replica.dispose()


def _replica_engine(url: str, echo: bool) -> Engine:
    if is_sqlite(url):
        return make_engine(url, echo=echo)
    connect_args = {**_connect_args(url), "connect_timeout": REPLICA_CONNECT_TIMEOUT}
    return create_engine(driver_url(url), echo=echo, hide_parameters=True, pool_size=5, max_overflow=5,
                         pool_pre_ping=True, connect_args=connect_args)
