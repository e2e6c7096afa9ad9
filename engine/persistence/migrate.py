"""Schema migrations: `carepath db upgrade` and every CLI command bring the schema to head."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, Engine, text

from .chain import lock_key

log = logging.getLogger("carepath")

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def upgrade(engine: Engine, revision: str = "head", *, patient_id_system: str | None = None) -> None:
    """`patient_id_system`: the identifier system existing free-text patient ids are migrated into (0019).

    A database a newer release has already migrated (its revision is not among this release's) is left
    as it is, with a warning: during a rolling upgrade the old release's nodes keep starting and serving
    (docs/deployment.md, Upgrades)."""
    _migrate(engine, command.upgrade, revision, patient_id_system=patient_id_system)


def downgrade(engine: Engine, revision: str) -> None:
    _migrate(engine, command.downgrade, revision)


def _migrate(engine: Engine, step: Any, revision: str, *, patient_id_system: str | None = None) -> None:
    """Run migrations in one transaction. On SQLite, foreign keys are off meanwhile: Alembic changes a
    table there by copying it, and dropping the old copy would otherwise cascade into its children
    (deleting every task_candidates row when `tasks` is rebuilt)."""
    config = alembic_config()
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:  # outside any transaction, or SQLite ignores it
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
        try:
            with connection.begin():
                _one_migrator_at_a_time(connection)
                if step is command.upgrade and is_ahead(connection):
                    log.warning("the database is at revision %s, which this release does not know (its newest "
                                "is %s): a newer release migrated it; leaving the schema as it is",
                                _revision(connection), head_revision())
                    return
                config.attributes["connection"] = connection
                config.attributes["patient_id_system"] = patient_id_system
                step(config, revision)
        finally:
            if sqlite:
                connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")  # type: ignore[union-attr]


def _one_migrator_at_a_time(connection: Connection) -> None:
    """Several nodes starting together all migrate at start-up: on PostgreSQL the first holds a lock for
    its transaction and the others, once it commits, find the schema current."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key("schema-migrations")})


def _revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def is_ahead(connection: Connection) -> bool:
    """The database carries a revision this release's migrations do not contain."""
    current = _revision(connection)
    if current is None:
        return False
    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(current) is None
    except CommandError:
        return True


def schema_state(engine: Engine) -> str:
    """'current', 'behind' (this release has migrations the database lacks) or 'ahead'."""
    with engine.connect() as connection:
        if is_ahead(connection):
            return "ahead"
        return "current" if _revision(connection) == head_revision() else "behind"


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def is_current(engine: Engine) -> bool:
    return current_revision(engine) == head_revision()
