"""worklist settings: each user's last worklist choice, kept on the server

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 21:00:00

- `worklist_settings`: one row per user (quick view, sort, patient or episode searched), written when
  they change it on the worklist page and read when they open it again, from any browser.
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa

from carepath.engine.persistence.tables import UTCDateTime


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


OPEN = sa.text("state IN ('ready', 'in-progress', 'on-hold')")
INDEXES: dict[str, list[str | sa.TextClause]] = {
    'ix_tasks_open_due_date': ['due_date', 'created_at', 'id'],
    'ix_tasks_open_priority_due_date': [sa.text('priority DESC'), 'due_date', 'created_at', 'id'],
    'ix_tasks_open_created_at': ['created_at', 'id'],
}


def upgrade() -> None:
    op.create_table('worklist_settings',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('view', sa.String(length=20), nullable=False),
    sa.Column('sort', sa.String(length=20), nullable=False),
    sa.Column('search', sa.String(length=255), nullable=True),
    sa.Column('updated_at', UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_worklist_settings_user_id_users'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_worklist_settings'))
    )
    for name, columns in INDEXES.items():
        op.create_index(name, 'tasks', columns, postgresql_where=OPEN, sqlite_where=OPEN)


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, table_name='tasks')
    op.drop_table('worklist_settings')
