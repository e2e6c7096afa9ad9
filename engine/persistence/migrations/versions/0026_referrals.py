"""referrals: closed-loop referrals to community organizations (Gravity referral Task statuses)

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-06 03:30:00

One row per referral a social-needs pathway sends (engine/usecases/referrals.py): the episode, the patient,
the SDOH domain, the directory service and its organization, the status with its reason, the outcome,
the consent, the change history, and `lock_version` for optimistic concurrency.
"""
from alembic import op
import sqlalchemy as sa

from carepath.engine.persistence.tables import UTCDateTime


revision = '0026'
down_revision = '0025'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('referrals',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('instance_id', sa.String(length=36), nullable=False),
    sa.Column('case_id', sa.String(length=255), nullable=False),
    sa.Column('patient_id', sa.String(length=255), nullable=True),
    sa.Column('domain', sa.String(length=40), nullable=False),
    sa.Column('service_id', sa.String(length=100), nullable=False),
    sa.Column('service_name', sa.String(length=500), nullable=False),
    sa.Column('organization_id', sa.String(length=100), nullable=True),
    sa.Column('organization_name', sa.String(length=500), nullable=True),
    sa.Column('partner_account', sa.String(length=255), nullable=True),
    sa.Column('status', sa.String(length=40), nullable=False),
    sa.Column('status_reason', sa.Text(), nullable=True),
    sa.Column('outcome', sa.String(length=40), nullable=True),
    sa.Column('consent', sa.Boolean(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('history', sa.JSON(), nullable=False),
    sa.Column('created_by', sa.String(length=255), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('updated_at', UTCDateTime(), nullable=False),
    sa.Column('closed_at', UTCDateTime(), nullable=True),
    sa.Column('lock_version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['instance_id'], ['instances.id'], name=op.f('fk_referrals_instance_id_instances')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_referrals'))
    )
    op.create_index('ix_referrals_patient_created', 'referrals', ['patient_id', 'created_at'], unique=False)
    op.create_index('ix_referrals_status_created', 'referrals', ['status', 'created_at'], unique=False)
    op.create_index('ix_referrals_instance_domain', 'referrals', ['instance_id', 'domain'], unique=False)
    op.create_index(op.f('ix_referrals_organization_id'), 'referrals', ['organization_id'], unique=False)
    op.create_index(op.f('ix_referrals_partner_account'), 'referrals', ['partner_account'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_referrals_partner_account'), table_name='referrals')
    op.drop_index(op.f('ix_referrals_organization_id'), table_name='referrals')
    op.drop_index('ix_referrals_instance_domain', table_name='referrals')
    op.drop_index('ix_referrals_status_created', table_name='referrals')
    op.drop_index('ix_referrals_patient_created', table_name='referrals')
    op.drop_table('referrals')
