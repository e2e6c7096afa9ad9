"""break-glass access: emergency grants to read one patient's record for a limited time

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05 21:00:00

- `break_glass_grants`: who (user name), which patient, why, when granted, until when (`expires_at`),
  and when ended early (`ended_at`, null: ran to its end). Rows are never deleted: auditors review them.
"""
from alembic import op
import sqlalchemy as sa

from carepath.engine.persistence.tables import UTCDateTime


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('break_glass_grants',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_name', sa.String(length=200), nullable=False),
    sa.Column('patient_id', sa.String(length=255), nullable=False),
    sa.Column('reason', sa.String(length=1000), nullable=False),
    sa.Column('granted_at', UTCDateTime(), nullable=False),
    sa.Column('expires_at', UTCDateTime(), nullable=False),
    sa.Column('ended_at', UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_break_glass_grants'))
    )
    with op.batch_alter_table('break_glass_grants', schema=None) as batch_op:
        batch_op.create_index('ix_break_glass_grants_user_name_expires_at', ['user_name', 'expires_at'], unique=False)
        batch_op.create_index('ix_break_glass_grants_granted_at', ['granted_at'], unique=False)


def downgrade() -> None:
    op.drop_table('break_glass_grants')
