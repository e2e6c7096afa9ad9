"""patients: identities with identifiers, demographics and merge links; episodes belong to a patient

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 00:10:00

- `patients` (name, birth date, phone, address; `merged_into` the survivor of a merge; the names folded for
  searches, `family_key` and `given_key`) and
  `patient_identifiers` (system + value, unique across patients): engine/patients.py.
- `instances.patient_ref`: the episode's patient (indexed foreign key). `instances.patient_id` stays.
- Backfill, in five set-based statements (no row-by-row Python: 100,000 episodes of 27,000 patients took
  2 s on SQLite and 10 s on PostgreSQL on the 2-core development machine, most of it the UPDATE of
  `instances` and its indexes; the foreign key and index on `patient_ref` come after it): one
  patient per distinct `instances.patient_id`, which becomes its identifier in the default system
  (`CAREPATH_PATIENT_ID_SYSTEM`, handed in by migrate.upgrade; default `urn:carepath:patient-id`), and every
  episode linked to its patient. The patient's id is a random UUID made by the database; a staging table
  maps each patient id to it. Created and updated times: the patient's first episode's start.
"""
from alembic import context, op
import sqlalchemy as sa

from carepath.engine.persistence.tables import UTCDateTime


revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

DEFAULT_SYSTEM = "urn:carepath:patient-id"

# A version-4 UUID, as text, made by the database for each row.
UUID_SQL = {
    "postgresql": "gen_random_uuid()::text",
    "sqlite": ("lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2) "
               "|| '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(hex(randomblob(2)), 2) || '-' "
               "|| hex(randomblob(6)))"),
}

LINK_EPISODES = {
    "postgresql": ("UPDATE instances SET patient_ref = b.id FROM patient_backfill b "
                   "WHERE b.value = instances.patient_id"),
    "sqlite": ("UPDATE instances SET patient_ref = (SELECT b.id FROM patient_backfill b "
               "WHERE b.value = instances.patient_id) WHERE patient_id IS NOT NULL"),
}


def upgrade() -> None:
    bind = op.get_bind()
    dialect = bind.dialect.name
    op.create_table('patients',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('family', sa.String(length=200), nullable=True),
    sa.Column('given', sa.String(length=200), nullable=True),
    sa.Column('family_key', sa.String(length=200), nullable=True),
    sa.Column('given_key', sa.String(length=200), nullable=True),
    sa.Column('birth_date', sa.Date(), nullable=True),
    sa.Column('phone', sa.String(length=40), nullable=True),
    sa.Column('address', sa.String(length=500), nullable=True),
    sa.Column('merged_into', sa.String(length=36), nullable=True),
    sa.Column('lock_version', sa.Integer(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('updated_at', UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['merged_into'], ['patients.id'], name=op.f('fk_patients_merged_into_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_patients'))
    )
    op.create_index('ix_patients_family_key', 'patients', ['family_key'], unique=False)
    op.create_index('ix_patients_given_key', 'patients', ['given_key'], unique=False)
    op.create_index(op.f('ix_patients_merged_into'), 'patients', ['merged_into'], unique=False)
    op.create_table('patient_identifiers',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('patient_ref', sa.String(length=36), nullable=False),
    sa.Column('system', sa.String(length=255), nullable=False),
    sa.Column('value', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['patient_ref'], ['patients.id'],
                            name=op.f('fk_patient_identifiers_patient_ref_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_patient_identifiers')),
    sa.UniqueConstraint('system', 'value', name=op.f('uq_patient_identifiers_system_value'))
    )
    op.create_index(op.f('ix_patient_identifiers_patient_ref'), 'patient_identifiers', ['patient_ref'],
                    unique=False)
    # In place (no batch rebuild of instances): SQLite adds a column with a reference to a new table directly.
    if dialect == "sqlite":
        op.execute("ALTER TABLE instances ADD COLUMN patient_ref VARCHAR(36) "
                   "CONSTRAINT fk_instances_patient_ref_patients REFERENCES patients (id)")
    else:
        op.add_column('instances', sa.Column('patient_ref', sa.String(length=36), nullable=True))
    _backfill(bind, dialect)
    if dialect != "sqlite":  # after the backfill, so that it is checked once
        op.create_foreign_key(op.f('fk_instances_patient_ref_patients'), 'instances', 'patients',
                              ['patient_ref'], ['id'])
    op.create_index(op.f('ix_instances_patient_ref'), 'instances', ['patient_ref'], unique=False)


def _backfill(bind: sa.Connection, dialect: str) -> None:
    system = context.config.attributes.get("patient_id_system") or DEFAULT_SYSTEM
    bind.execute(sa.text(f"CREATE TEMPORARY TABLE patient_backfill AS SELECT {UUID_SQL[dialect]} AS id, "
                         "patient_id AS value, min(created_at) AS first_seen FROM instances "
                         "WHERE patient_id IS NOT NULL GROUP BY patient_id"))
    bind.execute(sa.text("CREATE UNIQUE INDEX ix_patient_backfill_value ON patient_backfill (value)"))
    bind.execute(sa.text("INSERT INTO patients (id, lock_version, created_at, updated_at) "
                         "SELECT id, 1, first_seen, first_seen FROM patient_backfill"))
    bind.execute(sa.text("INSERT INTO patient_identifiers (patient_ref, system, value) "
                         "SELECT id, :system, value FROM patient_backfill"), {"system": system})
    bind.execute(sa.text(LINK_EPISODES[dialect]))
    bind.execute(sa.text("DROP TABLE patient_backfill"))


def downgrade() -> None:
    op.drop_index(op.f('ix_instances_patient_ref'), table_name='instances')
    with op.batch_alter_table('instances', schema=None) as batch_op:
        if op.get_bind().dialect.name != "sqlite":
            batch_op.drop_constraint(op.f('fk_instances_patient_ref_patients'), type_='foreignkey')
        batch_op.drop_column('patient_ref')
    op.drop_table('patient_identifiers')
    op.drop_table('patients')
