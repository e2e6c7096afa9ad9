"""hash chain over the history (events.chain, seq, prev_hash, hash) and signed checkpoints

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24 23:10:00

Existing rows are chained in id order, per instance ("system" for rows with no instance), with the
format of `carepath.engine.persistence.chain` (v1), so that `carepath audit verify` passes on an
upgraded database. `tasks` is not touched (its triggers from 0007 would be lost on SQLite).
"""
from alembic import op
import sqlalchemy as sa

from carepath.engine.persistence.chain import GENESIS, SYSTEM_CHAIN, as_stored, event_hash
from carepath.engine.persistence.tables import UTCDateTime


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

BATCH = 1000


def upgrade() -> None:
    for name, length in (('chain', 36), ('prev_hash', 64), ('hash', 64)):
        op.add_column('events', sa.Column(name, sa.String(length), nullable=True))
    op.add_column('events', sa.Column('seq', sa.Integer(), nullable=True))
    _backfill()
    with op.batch_alter_table('events', schema=None) as batch_op:  # events has no triggers
        for name, type_ in (('chain', sa.String(36)), ('seq', sa.Integer()), ('prev_hash', sa.String(64)),
                            ('hash', sa.String(64))):
            batch_op.alter_column(name, existing_type=type_, nullable=False)
    op.create_index('uq_events_chain_seq', 'events', ['chain', 'seq'], unique=True)
    op.create_table(
        'audit_checkpoints',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('at', UTCDateTime(), nullable=False),
        sa.Column('last_event_id', sa.BigInteger(), nullable=False),
        sa.Column('heads', sa.JSON(), nullable=False),
        sa.Column('mac', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_checkpoints')),
        sa.UniqueConstraint('seq', name=op.f('uq_audit_checkpoints_seq')),
    )


def _backfill() -> None:
    events = sa.table('events', sa.column('id', sa.BigInteger()), sa.column('instance_id', sa.String()),
                      sa.column('task_id', sa.String()), sa.column('pathway_version_id', sa.Integer()),
                      sa.column('type', sa.String()), sa.column('actor', sa.String()),
                      sa.column('at', UTCDateTime()), sa.column('data', sa.JSON()),
                      sa.column('chain', sa.String()), sa.column('seq', sa.Integer()),
                      sa.column('prev_hash', sa.String()), sa.column('hash', sa.String()))
    connection = op.get_bind()
    chain_expr = sa.func.coalesce(events.c.instance_id, SYSTEM_CHAIN)
    rows = connection.execute(sa.select(events.c.id, events.c.instance_id, events.c.task_id,
                                        events.c.pathway_version_id, events.c.type, events.c.actor, events.c.at,
                                        events.c.data).order_by(chain_expr, events.c.id)).fetchall()
    update = (events.update().where(events.c.id == sa.bindparam('row_id'))
              .values(chain=sa.bindparam('c'), seq=sa.bindparam('s'), prev_hash=sa.bindparam('p'),
                      hash=sa.bindparam('h')))
    pending: list[dict] = []
    chain, seq, prev = None, 0, GENESIS
    for row in rows:
        row_chain = row.instance_id or SYSTEM_CHAIN
        if row_chain != chain:
            chain, seq, prev = row_chain, 0, GENESIS
        seq += 1
        digest = event_hash(chain=row_chain, seq=seq, prev_hash=prev, instance_id=row.instance_id,
                            task_id=row.task_id, pathway_version_id=row.pathway_version_id, type=row.type,
                            actor=row.actor, at=row.at, data=as_stored(row.data or {}))
        pending.append({'row_id': row.id, 'c': row_chain, 's': seq, 'p': prev, 'h': digest})
        prev = digest
        if len(pending) >= BATCH:
            connection.execute(update, pending)
            pending = []
    if pending:
        connection.execute(update, pending)


def downgrade() -> None:
    op.drop_table('audit_checkpoints')
    op.drop_index('uq_events_chain_seq', table_name='events')
    with op.batch_alter_table('events', schema=None) as batch_op:
        for name in ('hash', 'prev_hash', 'seq', 'chain'):
            batch_op.drop_column(name)
