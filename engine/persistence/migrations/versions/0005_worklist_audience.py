"""worklist audience column and indexes

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 20:00:00

Folds each task's candidates into tasks.audience (a GIN-indexed text array on PostgreSQL, a JSON
array on SQLite), adds indexes for the worklist sorts (priority, due date), for an instance's
pending timers and for the instance list, and, on PostgreSQL 14+, statistics on lower(name) so the
planner estimates free-text filters.

No table is rebuilt on SQLite on the way up (the column is added in place with a default); migrate.py
runs migrations with SQLite's foreign keys off in any case, so a table copy cannot cascade.
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    pg = bind.dialect.name == "postgresql"
    if pg:
        op.add_column('tasks', sa.Column('audience', postgresql.ARRAY(sa.Text()), server_default='{}', nullable=False))
        op.execute("UPDATE tasks SET audience = COALESCE((SELECT array_agg(c.kind || ':' || c.value "
                   "ORDER BY c.kind, c.value) FROM task_candidates c WHERE c.task_id = tasks.id), '{}')")
        op.alter_column('tasks', 'audience', server_default=None)
    else:
        op.add_column('tasks', sa.Column('audience', sa.JSON(), server_default='[]', nullable=False))
        op.execute("UPDATE tasks SET audience = COALESCE((SELECT json_group_array(k) FROM (SELECT c.kind || ':' "
                   "|| c.value AS k FROM task_candidates c WHERE c.task_id = tasks.id ORDER BY c.kind, c.value)), "
                   "'[]')")
    op.create_index('ix_tasks_audience', 'tasks', ['audience'], unique=False, postgresql_using='gin')
    op.create_index('ix_tasks_state_due_date_created_at', 'tasks', ['state', 'due_date', 'created_at', 'id'],
                    unique=False)
    op.create_index('ix_tasks_state_priority_created_at', 'tasks',
                    ['state', sa.text('priority DESC'), 'created_at', 'id'], unique=False)
    op.create_index('ix_timers_instance_id_state_due_at', 'timers', ['instance_id', 'state', 'due_at'], unique=False)
    op.create_index('ix_instances_created_at_id', 'instances', ['created_at', 'id'], unique=False)
    if pg and (bind.dialect.server_version_info or (0,)) >= (14,):
        op.execute("CREATE STATISTICS IF NOT EXISTS st_tasks_lower_name ON (lower(name)) FROM tasks")


def downgrade() -> None:
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    if not sqlite:
        op.execute("DROP STATISTICS IF EXISTS st_tasks_lower_name")
    op.drop_index('ix_instances_created_at_id', table_name='instances')
    op.drop_index('ix_timers_instance_id_state_due_at', table_name='timers')
    op.drop_index('ix_tasks_state_priority_created_at', table_name='tasks')
    op.drop_index('ix_tasks_state_due_date_created_at', table_name='tasks')
    op.drop_index('ix_tasks_audience', table_name='tasks')
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_column('audience')

