"""inbox for HL7 v2 messages received over MLLP

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06 00:10:00

- `inbox_messages`: one row per message (sender MSH-3^MSH-4, control id MSH-10, unique together: a resend
  is stored once), the integration account and peer address it came from, its type and event, the patient
  key it is processed in order by, the raw payload (PHI: null once purged, `purged_at`), and its processing
  state (received, started, delivered, nothing_to_do, failed) with the outcome in words and the attempts.
"""
from alembic import op
import sqlalchemy as sa

from carepath.engine.persistence.tables import UTCDateTime


revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None

STATES = ("received", "started", "delivered", "nothing_to_do", "failed")


def upgrade() -> None:
    op.create_table('inbox_messages',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('sender', sa.String(length=200), nullable=False),
    sa.Column('control_id', sa.String(length=199), nullable=False),
    sa.Column('account', sa.String(length=200), nullable=False),
    sa.Column('peer', sa.String(length=100), nullable=False),
    sa.Column('received_at', UTCDateTime(), nullable=False),
    sa.Column('message_type', sa.String(length=10), nullable=False),
    sa.Column('event', sa.String(length=10), nullable=False),
    sa.Column('version', sa.String(length=20), nullable=False),
    sa.Column('patient_key', sa.String(length=255), nullable=True),
    sa.Column('charset', sa.String(length=40), nullable=False),
    sa.Column('raw', sa.Text(), nullable=True),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('outcome', sa.Text(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('processed_at', UTCDateTime(), nullable=True),
    sa.Column('purged_at', UTCDateTime(), nullable=True),
    sa.CheckConstraint(f"state IN ({', '.join(repr(s) for s in STATES)})", name=op.f('ck_inbox_messages_state')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbox_messages')),
    sa.UniqueConstraint('sender', 'control_id', name=op.f('uq_inbox_messages_sender_control_id'))
    )
    with op.batch_alter_table('inbox_messages', schema=None) as batch_op:
        batch_op.create_index('ix_inbox_messages_state_id', ['state', 'id'], unique=False)
        batch_op.create_index('ix_inbox_messages_patient_key_state', ['patient_key', 'state'], unique=False)
        batch_op.create_index('ix_inbox_messages_received_at', ['received_at'], unique=False)


def downgrade() -> None:
    op.drop_table('inbox_messages')
