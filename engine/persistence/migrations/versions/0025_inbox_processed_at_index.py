"""inbox: an index on processed_at, for the routed rate metric

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-06 03:30:00

- `ix_inbox_messages_processed_at`: /metrics counts the messages processed in the last minute by outcome
  (the routing rate beside the acknowledgement rate) without reading the whole inbox.
"""
from alembic import op


revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('inbox_messages', schema=None) as batch_op:
        batch_op.create_index('ix_inbox_messages_processed_at', ['processed_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('inbox_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_inbox_messages_processed_at')
