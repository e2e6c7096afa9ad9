"""the history is append-only in the database too; checkpoints name the key that signed them

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-25 01:00:00

- Triggers refuse UPDATE and DELETE on `events` and `audit_checkpoints`, whoever issues them: nothing
  in CarePath ever changes or removes a history row, so a statement that tries is a bug or tampering.
  They do not stop the tables' owner (who can drop or disable a trigger), which is what the hash
  chains and signed checkpoints are for. TRUNCATE is not a row change and is not refused.
- `audit_checkpoints` gains `key_id` (which key of the ring signed it; rows written before are signed
  with the key now called "default"), `full` (it signs the head of every chain, not only of those that
  changed: the first checkpoint, and the first one after a key rotation) and `format` (1: the MAC
  covers seq, at, last_event_id, heads, prev_mac; 2: also format, key_id and full).

On SQLite a later migration that rebuilds `events` or `audit_checkpoints` (batch_alter_table copies
the table) drops these triggers with the old copy and must create them again.
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

TABLES = ("events", "audit_checkpoints")

PG_FUNCTION = """
CREATE FUNCTION carepath_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'carepath: % is append-only; % refused', TG_TABLE_NAME, TG_OP
    USING ERRCODE = 'insufficient_privilege';
END
$$
"""


def upgrade() -> None:
    op.add_column('audit_checkpoints', sa.Column('key_id', sa.String(64), nullable=False, server_default='default'))
    op.add_column('audit_checkpoints', sa.Column('full', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column('audit_checkpoints', sa.Column('format', sa.Integer(), nullable=False, server_default='1'))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FUNCTION)
        for table in TABLES:
            op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                       "FOR EACH ROW EXECUTE FUNCTION carepath_append_only()")
    else:
        for table in TABLES:
            for operation in ("UPDATE", "DELETE"):
                op.execute(f"CREATE TRIGGER {table}_append_only_{operation.lower()} BEFORE {operation} ON {table} "
                           f"BEGIN SELECT RAISE(ABORT, 'carepath: {table} is append-only; {operation} refused'); END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
        op.execute("DROP FUNCTION carepath_append_only()")
    else:
        for table in TABLES:
            for operation in ("update", "delete"):
                op.execute(f"DROP TRIGGER {table}_append_only_{operation}")
    with op.batch_alter_table('audit_checkpoints') as batch:
        batch.drop_column('format')
        batch.drop_column('full')
        batch.drop_column('key_id')
