"""A fresh, dedicated database for every run, so figures never depend on what was there before.

SQLite: a new file in a temporary folder. PostgreSQL: the database named `scratch_name` (by
default `carepath_bench`) on the server the URL points at, dropped and created again; the
database named in the URL is only connected to in order to do that and is never written.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from carepath.engine.persistence import migrate
from carepath.engine.persistence.database import Database, is_sqlite

from .stats import note

DEFAULT_SCRATCH = "carepath_bench"


@dataclass
class ScratchDatabase:
    url: str  # SQLAlchemy URL the server and the loaders use
    dialect: str
    described: str  # where it lives, for the report (no password)
    _tmpdir: Path | None = None

    def drop(self) -> None:
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)


def prepare(server_url: str | None, scratch_name: str = DEFAULT_SCRATCH) -> ScratchDatabase:
    if server_url is None or is_sqlite(server_url):
        return _sqlite()
    return _postgresql(server_url, scratch_name)


def _sqlite() -> ScratchDatabase:
    folder = Path(tempfile.mkdtemp(prefix="carepath-bench-"))
    url = f"sqlite:///{folder / 'bench.db'}"
    _migrate(url)
    return ScratchDatabase(url, "sqlite", str(folder / "bench.db"), folder)


def _postgresql(server_url: str, scratch_name: str) -> ScratchDatabase:
    import psycopg
    from psycopg import sql

    url = make_url(server_url)
    if url.get_backend_name() != "postgresql":
        raise SystemExit(f"error: only SQLite and PostgreSQL are supported, not {url.get_backend_name()}")
    if not scratch_name.replace("_", "").isalnum():
        raise SystemExit("error: the scratch database name may only contain letters, digits and _")
    # Connect to the URL's own database (or `postgres` if that is the scratch one) to drop and create.
    admin_db = url.database if url.database and url.database != scratch_name else "postgres"
    conninfo = url.set(drivername="postgresql", database=admin_db).render_as_string(hide_password=False)
    note(f"PostgreSQL: recreating database {scratch_name} (the URL's database {url.database!r} is not touched)")
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(scratch_name)))
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(scratch_name)))
    scratch = url.set(database=scratch_name)
    rendered = scratch.render_as_string(hide_password=False)
    _migrate(rendered)
    return ScratchDatabase(rendered, "postgresql", scratch.render_as_string(hide_password=True))


def _migrate(url: str) -> None:
    db = Database(url)
    try:
        migrate.upgrade(db.engine)
    finally:
        db.dispose()
