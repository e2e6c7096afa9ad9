"""partner organizations (admin-managed registry) and the outbound delivery outbox

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06 03:30:00

- `partner_organizations`: a slug id, name, webhook endpoint, the integration account acting for it (unique),
  active, and what derives its signing secret (a random salt; the key is the server's, never stored) with the
  secret's fingerprint and when it was last replaced.
- `partner_directory_organizations`: the resource-directory organizations (HSDS ids) that are this partner.
- `outbound_deliveries`: one row per delivery, unique by idempotency key; pending, failed (retried at
  next_attempt_at), delivered or dead; claimed by (state, next_attempt_at).
"""
from alembic import op
import sqlalchemy as sa

from carepath.engine.persistence.tables import UTCDateTime


revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None

STATES = ("pending", "failed", "delivered", "dead")


def upgrade() -> None:
    op.create_table('partner_organizations',
    sa.Column('id', sa.String(length=60), nullable=False),
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('endpoint_url', sa.String(length=1000), nullable=True),
    sa.Column('account', sa.String(length=200), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('secret_salt', sa.String(length=64), nullable=False),
    sa.Column('secret_fingerprint', sa.String(length=16), nullable=False),
    sa.Column('secret_rotated_at', UTCDateTime(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('updated_at', UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account'], ['users.name'], name=op.f('fk_partner_organizations_account_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_partner_organizations')),
    sa.UniqueConstraint('account', name=op.f('uq_partner_organizations_account'))
    )
    op.create_table('partner_directory_organizations',
    sa.Column('organization_id', sa.String(length=100), nullable=False),
    sa.Column('partner_id', sa.String(length=60), nullable=False),
    sa.ForeignKeyConstraint(['partner_id'], ['partner_organizations.id'],
                            name=op.f('fk_partner_directory_organizations_partner_id_partner_organizations'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('organization_id', name=op.f('pk_partner_directory_organizations'))
    )
    op.create_index(op.f('ix_partner_directory_organizations_partner_id'), 'partner_directory_organizations',
                    ['partner_id'], unique=False)
    op.create_table('outbound_deliveries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('partner_id', sa.String(length=60), nullable=False),
    sa.Column('kind', sa.String(length=60), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=200), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', UTCDateTime(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('last_status_code', sa.Integer(), nullable=True),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('updated_at', UTCDateTime(), nullable=False),
    sa.Column('delivered_at', UTCDateTime(), nullable=True),
    sa.CheckConstraint(f"state IN ({', '.join(repr(s) for s in STATES)})", name=op.f('ck_outbound_deliveries_state')),
    sa.ForeignKeyConstraint(['partner_id'], ['partner_organizations.id'],
                            name=op.f('fk_outbound_deliveries_partner_id_partner_organizations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbound_deliveries')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_outbound_deliveries_idempotency_key'))
    )
    op.create_index(op.f('ix_outbound_deliveries_partner_id'), 'outbound_deliveries', ['partner_id'], unique=False)
    op.create_index('ix_outbound_deliveries_state_next_attempt_at', 'outbound_deliveries',
                    ['state', 'next_attempt_at'], unique=False)


def downgrade() -> None:
    op.drop_table('outbound_deliveries')
    op.drop_table('partner_directory_organizations')
    op.drop_table('partner_organizations')
