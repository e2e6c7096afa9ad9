"""states are strings the database checks

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 18:00:00

tasks.state, instances.status, timers.state, messages.state and notifications.state get a CHECK
constraint naming the values CarePath uses (the enums of engine/model.py at this revision, written out
here; every value the code has ever written is among them). A later state is added by a migration that
replaces the constraint.

On SQLite a CHECK can only be added by rebuilding the table (batch_alter_table copies it): the copy
keeps the columns and the indexes, partial ones included, but loses the order of a descending index
column and the triggers 0007 put on `tasks`: both are created again here.
"""
import importlib.util
from pathlib import Path

from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

CHECKED = {
    "tasks": ("state", ("ready", "in-progress", "on-hold", "completed", "cancelled")),
    "instances": ("status", ("running", "completed", "cancelled", "incident")),
    "timers": ("state", ("pending", "fired", "cancelled", "failed")),
    "messages": ("state", ("buffered", "delivered", "started", "expired")),
    "notifications": ("state", ("pending", "delivered", "failed")),
}
PRIORITY_INDEX = "ix_tasks_state_priority_created_at"  # (state, priority DESC, created_at, id), from 0005


def _condition(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _task_count_triggers() -> list[str]:
    """The SQLite triggers of migration 0007, as it created them."""
    path = Path(__file__).with_name("0007_task_count_deltas.py")
    spec = importlib.util.spec_from_file_location("carepath_migration_0007", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return list(module.SQLITE_TRIGGERS)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, (column, values) in CHECKED.items():
            op.create_check_constraint(op.f(f"ck_{table}_{column}"), table, _condition(column, values))
        return
    for table, (column, values) in CHECKED.items():
        with op.batch_alter_table(table, recreate="always") as batch:
            batch.create_check_constraint(op.f(f"ck_{table}_{column}"), _condition(column, values))
    _restore_sqlite_extras()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, (column, _) in CHECKED.items():
            op.drop_constraint(op.f(f"ck_{table}_{column}"), table, type_="check")
        return
    for table, (column, _) in CHECKED.items():
        with op.batch_alter_table(table, recreate="always") as batch:
            batch.drop_constraint(op.f(f"ck_{table}_{column}"), type_="check")
    _restore_sqlite_extras()


def _restore_sqlite_extras() -> None:
    op.execute(f"DROP INDEX IF EXISTS {PRIORITY_INDEX}")
    op.create_index(PRIORITY_INDEX, "tasks", ["state", sa.text("priority DESC"), "created_at", "id"])
    for name in ("tasks_count_insert", "tasks_count_delete", "tasks_count_update"):
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    for statement in _task_count_triggers():
        op.execute(statement)
