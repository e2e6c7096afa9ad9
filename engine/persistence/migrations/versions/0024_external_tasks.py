"""external tasks: service tasks waiting for external workers

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-06 03:30:00

- `external_tasks`: one row per service task waiting for (or done by) an external worker
  (persistence/external_task_tables.py): its topic, state (available, locked, completed, failed, cancelled),
  the worker holding it and until when, retries and the last error, the variables it hands its worker, the
  episode's business key and the pathway, priority, and an optimistic lock version.
"""
from alembic import op
import sqlalchemy as sa

from carepath.engine.persistence.tables import UTCDateTime


revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None

STATES = ("available", "locked", "completed", "failed", "cancelled")


def upgrade() -> None:
    op.create_table('external_tasks',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('instance_id', sa.String(length=36), nullable=False),
    sa.Column('element_id', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=500), nullable=True),
    sa.Column('topic', sa.String(length=255), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('worker_id', sa.String(length=255), nullable=True),
    sa.Column('lock_expires_at', UTCDateTime(), nullable=True),
    sa.Column('retries', sa.Integer(), nullable=True),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('error_details', sa.Text(), nullable=True),
    sa.Column('variables', sa.JSON(), nullable=True),
    sa.Column('business_key', sa.String(length=255), nullable=False),
    sa.Column('pathway_key', sa.String(length=255), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('lock_version', sa.Integer(), nullable=False),
    sa.CheckConstraint(f"state IN ({', '.join(repr(s) for s in STATES)})", name=op.f('ck_external_tasks_state')),
    sa.ForeignKeyConstraint(['instance_id'], ['instances.id'], name=op.f('fk_external_tasks_instance_id_instances'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_external_tasks'))
    )
    with op.batch_alter_table('external_tasks', schema=None) as batch_op:
        batch_op.create_index('ix_external_tasks_topic_state_lock_expires_at', ['topic', 'state', 'lock_expires_at'],
                              unique=False)
        batch_op.create_index('ix_external_tasks_instance_id_state', ['instance_id', 'state'], unique=False)


def downgrade() -> None:
    op.drop_table('external_tasks')
