"""consent_withdrawals: a patient's withdrawn consent to share information with a community organization

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-06 04:40:00

One row per patient and organization (engine/usecases/consent.py): open referrals to it are cancelled and
nothing later is sent to it for that patient. Only adds a table.
"""
from alembic import op
import sqlalchemy as sa

from carepath.engine.persistence.tables import UTCDateTime


revision = '0028'
down_revision = '0027'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('consent_withdrawals',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('patient_key', sa.String(length=300), nullable=False),
    sa.Column('organization_key', sa.String(length=300), nullable=False),
    sa.Column('organization_name', sa.String(length=500), nullable=True),
    sa.Column('referral_id', sa.String(length=36), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('withdrawn_by', sa.String(length=255), nullable=False),
    sa.Column('withdrawn_at', UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consent_withdrawals')),
    sa.UniqueConstraint('patient_key', 'organization_key', name='uq_consent_withdrawals_patient_organization')
    )


def downgrade() -> None:
    op.drop_table('consent_withdrawals')
