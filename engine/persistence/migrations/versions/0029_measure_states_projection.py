"""measure_states: where each episode stands on its declared measures, for the compliance report

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-06 07:00:00

- `measure_states`: one row per (instance, measure), written with the instance's state
  (engine/usecases/measure_states.py) and valid while the instance's `lock_version` is the one it names.
- Not backfilled here: a row is the evaluation of the episode's measures with the deployment's business
  calendars, which the migration does not have; an episode without a current row is evaluated live by
  the report, as before, until its next change writes one (`carepath db project-measures` writes them all).
Only adds a table and an index: a node of the previous release keeps working beside it.
"""

from alembic import op
import sqlalchemy as sa

from carepath.engine.persistence.tables import UTCDateTime


revision = '0029'
down_revision = '0028'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('measure_states',
    sa.Column('instance_id', sa.String(length=36), nullable=False),
    sa.Column('measure_id', sa.String(length=200), nullable=False),
    sa.Column('pathway_version_id', sa.Integer(), nullable=False),
    sa.Column('pathway_key', sa.String(length=255), nullable=False),
    sa.Column('lock_version', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('clock_started', UTCDateTime(), nullable=True),
    sa.Column('met_at', UTCDateTime(), nullable=True),
    sa.Column('deadline', UTCDateTime(), nullable=True),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('days_to_meet', sa.Float(), nullable=True),
    sa.PrimaryKeyConstraint('instance_id', 'measure_id', name=op.f('pk_measure_states'))
    )
    op.create_index('ix_measure_states_version_clock', 'measure_states', ['pathway_version_id', 'clock_started'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_measure_states_version_clock', table_name='measure_states')
    op.drop_table('measure_states')
