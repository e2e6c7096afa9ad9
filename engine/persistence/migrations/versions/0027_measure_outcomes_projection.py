"""measure_outcomes: the compliance report's projection of recorded measure outcomes, backfilled

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-06 04:10:00

- `measure_outcomes`: one row per (instance, measure) of each episode's last recorded `measure_outcomes`
  history event; `final` when the episode had ended then and every declared measure's outcome is final.
- Backfilled from the history: each instance's last `measure_outcomes` event, a batch of instances at a
  time (the same rows engine/usecases/outcome_projection.py writes when outcomes are recorded).
Only adds a table and an index: a node of the previous release keeps working beside it.
"""
from typing import Any

from alembic import op
import sqlalchemy as sa

from carepath.engine.persistence.tables import UTCDateTime
from carepath.engine.usecases.outcome_projection import outcome_rows


revision = '0027'
down_revision = '0026'
branch_labels = None
depends_on = None

BATCH = 1000


def upgrade() -> None:
    op.create_table('measure_outcomes',
    sa.Column('instance_id', sa.String(length=36), nullable=False),
    sa.Column('measure_id', sa.String(length=200), nullable=False),
    sa.Column('pathway_version_id', sa.Integer(), nullable=False),
    sa.Column('pathway_key', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('clock_started', UTCDateTime(), nullable=True),
    sa.Column('met_at', UTCDateTime(), nullable=True),
    sa.Column('deadline', UTCDateTime(), nullable=True),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('days_to_meet', sa.Float(), nullable=True),
    sa.Column('final', sa.Boolean(), nullable=False),
    sa.Column('recorded_at', UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('instance_id', 'measure_id', name=op.f('pk_measure_outcomes'))
    )
    op.create_index('ix_measure_outcomes_version_final_clock', 'measure_outcomes',
                    ['pathway_version_id', 'final', 'clock_started'], unique=False)
    _backfill(op.get_bind())


_versions = sa.table('pathway_versions', sa.column('id', sa.Integer), sa.column('measures', sa.JSON))
_instances = sa.table('instances', sa.column('id', sa.String), sa.column('pathway_version_id', sa.Integer),
                      sa.column('pathway_key', sa.String), sa.column('status', sa.String),
                      sa.column('ended_at', UTCDateTime()))
_events = sa.table('events', sa.column('id', sa.BigInteger), sa.column('instance_id', sa.String),
                   sa.column('type', sa.String), sa.column('at', UTCDateTime()), sa.column('data', sa.JSON))
_TYPES = {'instance_id': sa.String(), 'measure_id': sa.String(), 'pathway_version_id': sa.Integer(),
          'pathway_key': sa.String(), 'status': sa.String(), 'clock_started': UTCDateTime(), 'met_at': UTCDateTime(),
          'deadline': UTCDateTime(), 'detail': sa.Text(), 'days_to_meet': sa.Float(), 'final': sa.Boolean(),
          'recorded_at': UTCDateTime()}
_outcomes = sa.table('measure_outcomes', *(sa.column(name, type_) for name, type_ in _TYPES.items()))


def _backfill(connection: Any) -> None:
    """Each instance's last recorded outcomes into the projection, BATCH instances at a time (keyset on
    the instance id), so that memory does not grow with the history."""
    declared = {vid: [m["id"] for m in (measures or [])] for vid, measures in connection.execute(
        sa.select(_versions.c.id, _versions.c.measures))}
    after = ""
    while True:
        batch = connection.execute(
            sa.select(_events.c.instance_id, sa.func.max(_events.c.id))
            .where(_events.c.type == 'measure_outcomes', _events.c.instance_id > after)
            .group_by(_events.c.instance_id).order_by(_events.c.instance_id).limit(BATCH)).all()
        if not batch:
            return
        page = connection.execute(
            sa.select(_events.c.instance_id, _events.c.at, _events.c.data, _instances.c.pathway_version_id,
                      _instances.c.pathway_key, _instances.c.status, _instances.c.ended_at)
            .join(_instances, _instances.c.id == _events.c.instance_id)
            .where(_events.c.id.in_([last for _, last in batch]))).all()
        rows = [row for event in page for row in outcome_rows(
            event.instance_id, event.pathway_version_id, event.pathway_key,
            declared.get(event.pathway_version_id, []), instance_status=event.status, ended_at=event.ended_at,
            recorded_at=event.at, data=event.data)]
        if rows:
            connection.execute(sa.insert(_outcomes), rows)
        after = batch[-1][0]


def downgrade() -> None:
    op.drop_index('ix_measure_outcomes_version_final_clock', table_name='measure_outcomes')
    op.drop_table('measure_outcomes')
