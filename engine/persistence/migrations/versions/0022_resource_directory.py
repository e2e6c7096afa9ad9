"""resource directory: HSDS 3.0 services, their organizations, places, areas, languages, hours and domains

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06 00:50:00

The community resource directory (engine/directory/, docs/resources.md). `resource_services` keeps the HSDS
id as its key; every child table keys on `service_id` (ON DELETE CASCADE) and is replaced whole when a
service is imported again. `resource_zips` (postal code, service) and `resource_hours` (weekday, service)
are what the zip and open-now searches read; `resource_domains.domain` what the domain search reads.
"""
from alembic import op
import sqlalchemy as sa

from carepath.engine.persistence.tables import UTCDateTime


revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('resource_organizations',
    sa.Column('id', sa.String(length=100), nullable=False),
    sa.Column('name', sa.String(length=500), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('website', sa.String(length=1000), nullable=True),
    sa.Column('email', sa.String(length=500), nullable=True),
    sa.Column('updated_at', UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_resource_organizations'))
    )
    op.create_table('resource_services',
    sa.Column('id', sa.String(length=100), nullable=False),
    sa.Column('organization_id', sa.String(length=100), nullable=True),
    sa.Column('name', sa.String(length=500), nullable=False),
    sa.Column('alternate_name', sa.String(length=500), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('url', sa.String(length=1000), nullable=True),
    sa.Column('email', sa.String(length=500), nullable=True),
    sa.Column('phone', sa.String(length=100), nullable=True),
    sa.Column('status', sa.String(length=40), nullable=False),
    sa.Column('eligibility', sa.Text(), nullable=True),
    sa.Column('application_process', sa.Text(), nullable=True),
    sa.Column('fees', sa.Text(), nullable=True),
    sa.Column('search_text', sa.Text(), nullable=False),
    sa.Column('source', sa.String(length=500), nullable=False),
    sa.Column('updated_at', UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['resource_organizations.id'], name=op.f('fk_resource_services_organization_id_resource_organizations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_resource_services'))
    )
    op.create_index('ix_resource_services_name', 'resource_services', ['name'], unique=False)
    op.create_index(op.f('ix_resource_services_organization_id'), 'resource_services', ['organization_id'], unique=False)
    op.create_table('resource_areas',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('service_id', sa.String(length=100), nullable=False),
    sa.Column('area_id', sa.String(length=100), nullable=True),
    sa.Column('name', sa.Text(), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['service_id'], ['resource_services.id'], name=op.f('fk_resource_areas_service_id_resource_services'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_resource_areas'))
    )
    op.create_index(op.f('ix_resource_areas_service_id'), 'resource_areas', ['service_id'], unique=False)
    op.create_table('resource_domains',
    sa.Column('service_id', sa.String(length=100), nullable=False),
    sa.Column('domain', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['service_id'], ['resource_services.id'], name=op.f('fk_resource_domains_service_id_resource_services'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('service_id', 'domain', name=op.f('pk_resource_domains'))
    )
    op.create_index(op.f('ix_resource_domains_domain'), 'resource_domains', ['domain'], unique=False)
    op.create_table('resource_hours',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('service_id', sa.String(length=100), nullable=False),
    sa.Column('weekday', sa.Integer(), nullable=False),
    sa.Column('opens_min', sa.Integer(), nullable=False),
    sa.Column('closes_min', sa.Integer(), nullable=False),
    sa.Column('utc_offset_min', sa.Integer(), nullable=True),
    sa.Column('valid_from', sa.Date(), nullable=True),
    sa.Column('valid_to', sa.Date(), nullable=True),
    sa.ForeignKeyConstraint(['service_id'], ['resource_services.id'], name=op.f('fk_resource_hours_service_id_resource_services'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_resource_hours'))
    )
    op.create_index(op.f('ix_resource_hours_service_id'), 'resource_hours', ['service_id'], unique=False)
    op.create_index('ix_resource_hours_weekday_service_id', 'resource_hours', ['weekday', 'service_id'], unique=False)
    op.create_table('resource_languages',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('service_id', sa.String(length=100), nullable=False),
    sa.Column('code', sa.String(length=20), nullable=True),
    sa.Column('name', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['service_id'], ['resource_services.id'], name=op.f('fk_resource_languages_service_id_resource_services'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_resource_languages'))
    )
    op.create_index('ix_resource_languages_code_service_id', 'resource_languages', ['code', 'service_id'], unique=False)
    op.create_index(op.f('ix_resource_languages_service_id'), 'resource_languages', ['service_id'], unique=False)
    op.create_table('resource_locations',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('service_id', sa.String(length=100), nullable=False),
    sa.Column('location_id', sa.String(length=100), nullable=False),
    sa.Column('address_id', sa.String(length=100), nullable=True),
    sa.Column('name', sa.String(length=500), nullable=True),
    sa.Column('address_1', sa.String(length=500), nullable=True),
    sa.Column('address_2', sa.String(length=500), nullable=True),
    sa.Column('city', sa.String(length=200), nullable=True),
    sa.Column('state_province', sa.String(length=200), nullable=True),
    sa.Column('postal_code', sa.String(length=40), nullable=True),
    sa.Column('country', sa.String(length=10), nullable=True),
    sa.Column('latitude', sa.Float(), nullable=True),
    sa.Column('longitude', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['service_id'], ['resource_services.id'], name=op.f('fk_resource_locations_service_id_resource_services'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_resource_locations'))
    )
    op.create_index(op.f('ix_resource_locations_service_id'), 'resource_locations', ['service_id'], unique=False)
    op.create_table('resource_schedules',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('service_id', sa.String(length=100), nullable=False),
    sa.Column('schedule_id', sa.String(length=100), nullable=True),
    sa.Column('location_id', sa.String(length=100), nullable=True),
    sa.Column('freq', sa.String(length=20), nullable=True),
    sa.Column('byday', sa.String(length=100), nullable=True),
    sa.Column('opens_at', sa.String(length=20), nullable=True),
    sa.Column('closes_at', sa.String(length=20), nullable=True),
    sa.Column('valid_from', sa.Date(), nullable=True),
    sa.Column('valid_to', sa.Date(), nullable=True),
    sa.Column('timezone', sa.Float(), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['service_id'], ['resource_services.id'], name=op.f('fk_resource_schedules_service_id_resource_services'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_resource_schedules'))
    )
    op.create_index(op.f('ix_resource_schedules_service_id'), 'resource_schedules', ['service_id'], unique=False)
    op.create_table('resource_terms',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('service_id', sa.String(length=100), nullable=False),
    sa.Column('term_id', sa.String(length=100), nullable=True),
    sa.Column('code', sa.String(length=100), nullable=True),
    sa.Column('name', sa.String(length=500), nullable=True),
    sa.Column('taxonomy', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['service_id'], ['resource_services.id'], name=op.f('fk_resource_terms_service_id_resource_services'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_resource_terms'))
    )
    op.create_index(op.f('ix_resource_terms_service_id'), 'resource_terms', ['service_id'], unique=False)
    op.create_table('resource_zips',
    sa.Column('service_id', sa.String(length=100), nullable=False),
    sa.Column('postal_code', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['service_id'], ['resource_services.id'], name=op.f('fk_resource_zips_service_id_resource_services'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('service_id', 'postal_code', name=op.f('pk_resource_zips'))
    )
    op.create_index('ix_resource_zips_postal_code_service_id', 'resource_zips', ['postal_code', 'service_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_resource_zips_postal_code_service_id', table_name='resource_zips')
    op.drop_table('resource_zips')
    op.drop_index(op.f('ix_resource_terms_service_id'), table_name='resource_terms')
    op.drop_table('resource_terms')
    op.drop_index(op.f('ix_resource_schedules_service_id'), table_name='resource_schedules')
    op.drop_table('resource_schedules')
    op.drop_index(op.f('ix_resource_locations_service_id'), table_name='resource_locations')
    op.drop_table('resource_locations')
    op.drop_index(op.f('ix_resource_languages_service_id'), table_name='resource_languages')
    op.drop_index('ix_resource_languages_code_service_id', table_name='resource_languages')
    op.drop_table('resource_languages')
    op.drop_index('ix_resource_hours_weekday_service_id', table_name='resource_hours')
    op.drop_index(op.f('ix_resource_hours_service_id'), table_name='resource_hours')
    op.drop_table('resource_hours')
    op.drop_index(op.f('ix_resource_domains_domain'), table_name='resource_domains')
    op.drop_table('resource_domains')
    op.drop_index(op.f('ix_resource_areas_service_id'), table_name='resource_areas')
    op.drop_table('resource_areas')
    op.drop_index(op.f('ix_resource_services_organization_id'), table_name='resource_services')
    op.drop_index('ix_resource_services_name', table_name='resource_services')
    op.drop_table('resource_services')
    op.drop_table('resource_organizations')
