"""the messages each version catches; a message remembers which instances its sender may reach

Revision ID: 0014
Revises: 0011 (0013 once the other migrations of issue 12 are merged)
Create Date: 2026-12-05 18:00:00

- `message_catch_events`: one row per (version, message name) the version catches anywhere (start,
  catch and boundary events, receive tasks, event subprocesses, its embedded processes), so that a
  message whose name nothing catches (a typo) is refused. Filled for the versions already deployed
  from their stored specs; a spec that no longer restores keeps its message start events only.
- `messages.sender_scope`: the instances the sender may reach ({"user", "groups"}, as when sent);
  null reaches every instance, as every message stored before did.
"""
import logging

from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")


def upgrade() -> None:
    op.create_table('message_catch_events',
    sa.Column('pathway_version_id', sa.Integer(), nullable=False),
    sa.Column('message_name', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['pathway_version_id'], ['pathway_versions.id'], name=op.f('fk_message_catch_events_pathway_version_id_pathway_versions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('pathway_version_id', 'message_name', name=op.f('pk_message_catch_events'))
    )
    with op.batch_alter_table('message_catch_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_message_catch_events_message_name'), ['message_name'], unique=False)
    # add_column outside batch mode: SQLite adds a column in place, without copying the table.
    op.add_column('messages', sa.Column('sender_scope', sa.JSON(), nullable=True))
    _backfill_catches()


def _backfill_catches() -> None:
    from carepath.engine.definitions._process_info import message_catches
    from carepath.engine.runtime.serializer import serializer_for

    bind = op.get_bind()
    versions = sa.table("pathway_versions", sa.column("id"), sa.column("family"), sa.column("spec_json"))
    starts = sa.table("message_start_events", sa.column("pathway_version_id"), sa.column("message_name"))
    catches = sa.table("message_catch_events", sa.column("pathway_version_id"), sa.column("message_name"))
    for version_id, family, spec_json in bind.execute(sa.select(versions.c.id, versions.c.family,
                                                                versions.c.spec_json)).all():
        try:
            spec, subprocess_specs = serializer_for(family).spec_from_json(spec_json)
            names = set(message_catches(spec, subprocess_specs))
        except Exception as exc:  # noqa: BLE001 - an old spec this engine cannot restore: its starts only
            log.warning("pathway version %s: messages not read from its spec (%s)", version_id, exc)
            names = set()
        names |= set(bind.execute(sa.select(starts.c.message_name)
                                  .where(starts.c.pathway_version_id == version_id)).scalars())
        if names:
            bind.execute(catches.insert(), [{"pathway_version_id": version_id, "message_name": n}
                                            for n in sorted(names)])


def downgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_column('sender_scope')
    with op.batch_alter_table('message_catch_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_message_catch_events_message_name'))
    op.drop_table('message_catch_events')
