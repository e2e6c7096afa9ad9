"""task follow-up dates, pathway time settings, deadline alerts and notifications

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 20:15:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('follow_up_date', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('pathway_versions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('time_settings', sa.JSON(), server_default='{}', nullable=False))
    with op.batch_alter_table('timers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=20), server_default='bpmn', nullable=False))
        batch_op.drop_index('uq_timers_pending_task')
        batch_op.create_index('uq_timers_pending_task_kind', ['task_id', 'kind'], unique=True,
                              sqlite_where=sa.text("state = 'pending'"), postgresql_where=sa.text("state = 'pending'"))
    op.create_table(
        'notifications',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('channel', sa.String(length=40), nullable=False),
        sa.Column('instance_id', sa.String(length=36), nullable=True),
        sa.Column('task_id', sa.String(length=36), nullable=True),
        sa.Column('subject', sa.String(length=500), nullable=False),
        sa.Column('recipients', sa.JSON(), nullable=False),
        sa.Column('payload', sa.JSON(), nullable=False),
        sa.Column('state', sa.String(length=20), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications')),
    )
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.create_index('ix_notifications_instance_id', ['instance_id'], unique=False)
        batch_op.create_index('ix_notifications_state_next_attempt_at', ['state', 'next_attempt_at'], unique=False)


def downgrade() -> None:
    op.drop_table('notifications')
    op.execute("DELETE FROM timers WHERE kind <> 'bpmn'")  # deadline alerts did not exist before
    with op.batch_alter_table('timers', schema=None) as batch_op:
        batch_op.drop_index('uq_timers_pending_task_kind')
        batch_op.create_index('uq_timers_pending_task', ['task_id'], unique=True,
                              sqlite_where=sa.text("state = 'pending'"), postgresql_where=sa.text("state = 'pending'"))
        batch_op.drop_column('kind')
    with op.batch_alter_table('pathway_versions', schema=None) as batch_op:
        batch_op.drop_column('time_settings')
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_column('follow_up_date')

