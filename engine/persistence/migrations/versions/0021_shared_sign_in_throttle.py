"""sign-in throttle shared by every process: failed attempts counted in the database

Revision ID: 0021
Revises: 0018
Create Date: 2026-12-06 00:10:00

- `sign_in_attempts`: per key (`user:<name>`, `host:<address>`) the failures in the current window, when the
  window started and until when the key is locked. Rows whose window and lockout ended are deleted.
"""
from alembic import op
import sqlalchemy as sa

from carepath.engine.persistence.tables import UTCDateTime


revision = '0021'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sign_in_attempts',
    sa.Column('key', sa.String(length=300), nullable=False),
    sa.Column('window_start', UTCDateTime(), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('locked_until', UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_sign_in_attempts'))
    )
    with op.batch_alter_table('sign_in_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sign_in_attempts_window_start'), ['window_start'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('sign_in_attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sign_in_attempts_window_start'))
    op.drop_table('sign_in_attempts')
