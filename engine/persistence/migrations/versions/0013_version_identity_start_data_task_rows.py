"""a version's identity is what its pathway uses; start data schemas; task rows say whose task it is

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 18:00:00

- `pathway_versions.content_hash` is recomputed from what each pathway itself uses (its diagram, the DMN
  it calls, its forms, its sidecar: `definitions/_identity.py`), read from the files its deployment
  stored; before, it also covered every other .dmn and .json of the upload, so an upload of one pathway
  never matched the start-up deploy of the folder. Without this, every pathway would get a new version at
  the next start. A version whose stored files can no longer be read keeps its hash.
- `pathway_versions.sidecar_file_id`: the sidecar the version was deployed with (a deploy without one
  keeps the latest version's); `start_data`: the JSON Schema of the data a start needs.
- `tasks.pathway_name`, `patient_id`, `business_key`: copied from the instance and its version (which
  never change), so a worklist row says whose task it is without a join. Backfilled here. The 0007
  triggers fire on changes of `state` and `audience` only, so the backfill appends no count deltas.
"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

BACKFILL_TASKS = """
UPDATE tasks SET
  patient_id = (SELECT i.patient_id FROM instances i WHERE i.id = tasks.instance_id),
  business_key = (SELECT i.business_key FROM instances i WHERE i.id = tasks.instance_id),
  pathway_name = (SELECT v.name FROM instances i JOIN pathway_versions v ON v.id = i.pathway_version_id
                  WHERE i.id = tasks.instance_id)
"""


def upgrade() -> None:
    # add_column outside batch mode: SQLite adds a column in place, so the tasks triggers (0007) stay.
    op.add_column('pathway_versions', sa.Column('start_data', sa.JSON(), nullable=True))
    op.add_column('pathway_versions', sa.Column('sidecar_file_id', sa.Integer(), nullable=True))
    op.add_column('tasks', sa.Column('pathway_name', sa.String(length=500), nullable=True))
    op.add_column('tasks', sa.Column('patient_id', sa.String(length=255), nullable=True))
    op.add_column('tasks', sa.Column('business_key', sa.String(length=255), nullable=True))
    op.execute(BACKFILL_TASKS)
    _recompute_identities(op.get_bind())


def _recompute_identities(bind: sa.Connection) -> None:
    from carepath.engine.definitions import SourceFile
    from carepath.engine.definitions._identity import stored_identity

    versions = bind.execute(sa.text("SELECT v.id, v.key, v.family, v.deployment_id, f.filename FROM "
                                    "pathway_versions v JOIN deployment_files f ON f.id = v.source_file_id")).all()
    for version in versions:
        rows = bind.execute(sa.text("SELECT id, filename, content FROM deployment_files WHERE deployment_id = :d "
                                    "ORDER BY id"), {"d": version.deployment_id}).all()
        ids = {row.filename: row.id for row in rows}
        identity = stored_identity(version.key, version.family, version.filename,
                                   [SourceFile(row.filename, _bytes(row.content)) for row in rows])
        if identity is None:
            continue
        bind.execute(sa.text("UPDATE pathway_versions SET content_hash = :h, sidecar_file_id = :s WHERE id = :i"),
                     {"h": identity.content_hash, "s": ids.get(identity.sidecar_file or ""), "i": version.id})


def _bytes(content: object) -> bytes:
    return content.encode() if isinstance(content, str) else bytes(content)  # type: ignore[call-overload]


def downgrade() -> None:
    # The old hashes cannot be recomputed without the uploads they covered; an older CarePath then makes a
    # new version of each pathway at its next deploy, which is harmless.
    with op.batch_alter_table('pathway_versions') as batch:
        batch.drop_column('sidecar_file_id')
        batch.drop_column('start_data')
    op.drop_column('tasks', 'business_key')
    op.drop_column('tasks', 'patient_id')
    op.drop_column('tasks', 'pathway_name')
