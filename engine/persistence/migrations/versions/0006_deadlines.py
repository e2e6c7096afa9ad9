"""task follow-up dates and pathway time settings

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


def downgrade() -> None:
    with op.batch_alter_table('pathway_versions', schema=None) as batch_op:
        batch_op.drop_column('time_settings')
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_column('follow_up_date')
