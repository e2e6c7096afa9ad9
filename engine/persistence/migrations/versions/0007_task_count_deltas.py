"""open-task counts per group and state, kept by triggers on tasks

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 22:00:00

The supervisors' dashboard (GET /api/tasks/counts) aggregated every open task on each call. Database
triggers on `tasks` now append a +1/-1 row to `task_count_deltas` whenever a task opens, changes
state, changes audience or is deleted, whichever code path does it; the dashboard sums the deltas and
the scheduler's sweep folds them. Insert-only, so concurrent writers never wait on a counter row.

The open states are written out here ('ready', 'in-progress', 'on-hold': model.OPEN_TASK_STATES at
this revision). On SQLite a later migration that rebuilds `tasks` (batch_alter_table copies the
table) drops these triggers with the old copy and must create them again.
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

OPEN = "('ready', 'in-progress', 'on-hold')"

PG_GROUPS = """
CREATE FUNCTION carepath_task_groups(audience text[]) RETURNS SETOF text LANGUAGE sql IMMUTABLE AS $$
  SELECT substr(k, 7) FROM unnest(audience) AS k WHERE left(k, 6) = 'group:'
  UNION ALL
  SELECT '' WHERE NOT EXISTS (SELECT 1 FROM unnest(audience) AS k WHERE left(k, 6) = 'group:')
$$
"""
PG_FUNCTION = f"""
CREATE FUNCTION carepath_count_task() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP <> 'INSERT' AND OLD.state IN {OPEN} THEN
    INSERT INTO task_count_deltas (group_name, state, delta)
    SELECT g, OLD.state, -1 FROM carepath_task_groups(OLD.audience) AS g;
  END IF;
  IF TG_OP <> 'DELETE' AND NEW.state IN {OPEN} THEN
    INSERT INTO task_count_deltas (group_name, state, delta)
    SELECT g, NEW.state, 1 FROM carepath_task_groups(NEW.audience) AS g;
  END IF;
  RETURN NULL;
END
$$
"""
PG_TRIGGERS = [
    "CREATE TRIGGER tasks_count_insert_delete AFTER INSERT OR DELETE ON tasks "
    "FOR EACH ROW EXECUTE FUNCTION carepath_count_task()",
    "CREATE TRIGGER tasks_count_update AFTER UPDATE OF state, audience ON tasks FOR EACH ROW "
    "WHEN (OLD.state IS DISTINCT FROM NEW.state OR OLD.audience IS DISTINCT FROM NEW.audience) "
    "EXECUTE FUNCTION carepath_count_task()",
]
PG_BACKFILL = (f"INSERT INTO task_count_deltas (group_name, state, delta) SELECT g, t.state, count(*) "
               f"FROM tasks AS t, carepath_task_groups(t.audience) AS g WHERE t.state IN {OPEN} GROUP BY g, t.state")


def _sqlite_rows(row: str, sign: str, condition: str = "1") -> str:
    """INSERT of one delta row per candidate group of the task `row` (OLD or NEW), or one '' row."""
    is_group = "substr(value, 1, 6) = 'group:'"
    return (f"INSERT INTO task_count_deltas (group_name, state, delta) "
            f"SELECT substr(value, 7), {row}.state, {sign}1 FROM json_each({row}.audience) WHERE {is_group} AND {condition} "
            f"UNION ALL SELECT '', {row}.state, {sign}1 WHERE {condition} AND NOT EXISTS "
            f"(SELECT 1 FROM json_each({row}.audience) WHERE {is_group});")


SQLITE_TRIGGERS = [
    f"CREATE TRIGGER tasks_count_insert AFTER INSERT ON tasks WHEN NEW.state IN {OPEN} "
    f"BEGIN {_sqlite_rows('NEW', '+')} END",
    f"CREATE TRIGGER tasks_count_delete AFTER DELETE ON tasks WHEN OLD.state IN {OPEN} "
    f"BEGIN {_sqlite_rows('OLD', '-')} END",
    f"CREATE TRIGGER tasks_count_update AFTER UPDATE OF state, audience ON tasks "
    f"WHEN OLD.state IS NOT NEW.state OR OLD.audience IS NOT NEW.audience "
    f"BEGIN {_sqlite_rows('OLD', '-', f'OLD.state IN {OPEN}')} {_sqlite_rows('NEW', '+', f'NEW.state IN {OPEN}')} END",
]
SQLITE_BACKFILL = [
    f"INSERT INTO task_count_deltas (group_name, state, delta) SELECT substr(j.value, 7), t.state, count(*) "
    f"FROM tasks AS t, json_each(t.audience) AS j WHERE t.state IN {OPEN} AND substr(j.value, 1, 6) = 'group:' "
    f"GROUP BY 1, 2",
    f"INSERT INTO task_count_deltas (group_name, state, delta) SELECT '', t.state, count(*) FROM tasks AS t "
    f"WHERE t.state IN {OPEN} AND NOT EXISTS (SELECT 1 FROM json_each(t.audience) AS j "
    f"WHERE substr(j.value, 1, 6) = 'group:') GROUP BY t.state",
]


def upgrade() -> None:
    op.create_table(
        'task_count_deltas',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('group_name', sa.String(length=255), nullable=False),
        sa.Column('state', sa.String(length=20), nullable=False),
        sa.Column('delta', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_task_count_deltas')),
    )
    if op.get_bind().dialect.name == "postgresql":
        for statement in (PG_GROUPS, PG_FUNCTION, *PG_TRIGGERS, PG_BACKFILL):
            op.execute(statement)
    else:
        for statement in (*SQLITE_TRIGGERS, *SQLITE_BACKFILL):
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER tasks_count_update ON tasks")
        op.execute("DROP TRIGGER tasks_count_insert_delete ON tasks")
        op.execute("DROP FUNCTION carepath_count_task()")
        op.execute("DROP FUNCTION carepath_task_groups(text[])")
    else:
        for name in ("tasks_count_insert", "tasks_count_delete", "tasks_count_update"):
            op.execute(f"DROP TRIGGER {name}")
    op.drop_table('task_count_deltas')
