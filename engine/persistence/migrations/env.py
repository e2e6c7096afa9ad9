"""Alembic environment: run with the connection CarePath hands in (see migrate.py)."""

from __future__ import annotations

from alembic import context

from carepath.engine.persistence.tables import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through 'carepath db upgrade'")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
