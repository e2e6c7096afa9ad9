"""worklist audience column and indexes

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 20:00:00

Folds each task's candidates into tasks.audience (a GIN-indexed text array on PostgreSQL, a JSON
array on SQLite), adds indexes for the worklist sorts (priority, due date), for an instance's
pending timers and for the instance list, and, on PostgreSQL 14+, statistics on lower(name) so the
planner estimates free-text filters.
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
    column_type = postgresql.ARRAY(sa.Text()) if pg else sa.JSON()
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('audience', column_type, nullable=True))
    if pg:
        op.execute("UPDATE tasks SET audience = COALESCE((SELECT array_agg(c.kind || ':' || c.value "
                   "ORDER BY c.kind, c.value) FROM task_candidates c WHERE c.task_id = tasks.id), '{}')")
    else:
        op.execute("UPDATE tasks SET audience = COALESCE((SELECT json_group_array(k) FROM (SELECT c.kind || ':' "
                   "|| c.value AS k FROM task_candidates c WHERE c.task_id = tasks.id ORDER BY c.kind, c.value)), "
                   "'[]')")
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.alter_column('audience', existing_type=column_type, nullable=False)
        batch_op.create_index('ix_tasks_audience', ['audience'], unique=False, postgresql_using='gin')
        batch_op.create_index('ix_tasks_state_due_date_created_at', ['state', 'due_date', 'created_at', 'id'],
                              unique=False)
    # Outside batch mode: SQLite's table copy cannot carry a DESC index column.
    op.create_index('ix_tasks_state_priority_created_at', 'tasks',
                    ['state', sa.text('priority DESC'), 'created_at', 'id'], unique=False)
    with op.batch_alter_table('timers', schema=None) as batch_op:
        batch_op.create_index('ix_timers_instance_id_state_due_at', ['instance_id', 'state', 'due_at'],
                              unique=False)
    with op.batch_alter_table('instances', schema=None) as batch_op:
        batch_op.create_index('ix_instances_created_at_id', ['created_at', 'id'], unique=False)
    if pg and (bind.dialect.server_version_info or (0,)) >= (14,):
        op.execute("CREATE STATISTICS IF NOT EXISTS st_tasks_lower_name ON (lower(name)) FROM tasks")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("DROP STATISTICS IF EXISTS st_tasks_lower_name")
    with op.batch_alter_table('instances', schema=None) as batch_op:
        batch_op.drop_index('ix_instances_created_at_id')
    with op.batch_alter_table('timers', schema=None) as batch_op:
        batch_op.drop_index('ix_timers_instance_id_state_due_at')
    op.drop_index('ix_tasks_state_priority_created_at', table_name='tasks')
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_tasks_state_due_date_created_at')
        batch_op.drop_index('ix_tasks_audience', postgresql_using='gin')
        batch_op.drop_column('audience')
