"""pathway measures and example data (from the pathway's sidecar file)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 22:10:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # add_column outside batch mode: SQLite adds a column in place, so the tasks triggers (0007) and
    # every other table are left alone.
    op.add_column('pathway_versions', sa.Column('measures', sa.JSON(), server_default='[]', nullable=False))
    op.add_column('pathway_versions', sa.Column('example_data', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('pathway_versions', schema=None) as batch_op:
        batch_op.drop_column('example_data')
        batch_op.drop_column('measures')
