"""sign-in throttle shared by every process; the history checks that found it intact

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06 00:10:00

- `sign_in_attempts`: per key (`user:<name>`, `host:<address>`) the failures in the current window, when the
  window started and until when the key is locked. Rows whose window and lockout ended are deleted.
- `audit_verifications`: each check of the history that found it intact, up to which checkpoint, so that
  the verify page checks again from there.
"""
from alembic import op
import sqlalchemy as sa

from carepath.engine.persistence.tables import UTCDateTime


revision = '0020'
down_revision = '0019'
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
    op.create_table('audit_verifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', UTCDateTime(), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('full', sa.Boolean(), nullable=False),
    sa.Column('from_checkpoint', sa.Integer(), nullable=False),
    sa.Column('to_checkpoint', sa.Integer(), nullable=False),
    sa.Column('events', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_verifications'))
    )
    with op.batch_alter_table('audit_verifications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_verifications_to_checkpoint'), ['to_checkpoint'], unique=False)


def downgrade() -> None:
    op.drop_table('audit_verifications')
    with op.batch_alter_table('sign_in_attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sign_in_attempts_window_start'))
    op.drop_table('sign_in_attempts')
