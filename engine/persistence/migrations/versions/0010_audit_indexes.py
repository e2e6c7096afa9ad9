"""indexes for the audit trail's filters (user, event type, time range, pathway)

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24 23:30:00
"""
from alembic import op


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_events_actor_id', 'events', ['actor', 'id'])
    op.create_index('ix_events_type_id', 'events', ['type', 'id'])
    op.create_index('ix_events_at_id', 'events', ['at', 'id'])
    op.create_index('ix_instances_pathway_key_created_at', 'instances', ['pathway_key', 'created_at'])


def downgrade() -> None:
    op.drop_index('ix_instances_pathway_key_created_at', table_name='instances')
    op.drop_index('ix_events_at_id', table_name='events')
    op.drop_index('ix_events_type_id', table_name='events')
    op.drop_index('ix_events_actor_id', table_name='events')
