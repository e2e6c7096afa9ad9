"""notification read marks: what each user has read of the reminders and escalations

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 21:00:00

- `notification_reads`: one row per user and notification they marked read (the web app's inbox counts
  the rest as unread). A new table only: nothing is copied, on SQLite either.
"""
from alembic import op
import sqlalchemy as sa

from carepath.engine.persistence.tables import UTCDateTime


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('notification_reads',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('notification_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('read_at', UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['notification_id'], ['notifications.id'],
                            name=op.f('fk_notification_reads_notification_id_notifications'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_notification_reads_user_id_users'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'notification_id', name=op.f('pk_notification_reads'))
    )


def downgrade() -> None:
    op.drop_table('notification_reads')
