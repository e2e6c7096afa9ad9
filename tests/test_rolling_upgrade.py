"""Several nodes and rolling upgrades (docs/deployment.md): nodes that start together migrate one at a
time; a node of the previous release keeps starting and serving once a newer one has migrated the
database; and migrations from here on only add, so the previous release still works on the new schema."""

from __future__ import annotations

import ast
import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from carepath.engine.persistence import migrate
from carepath.engine.persistence.database import Database
from tests.support.api import ApiClient

from .conftest import PG_URL

VERSIONS = Path(migrate.MIGRATIONS_DIR) / "versions"
LAST_BEFORE_THE_RULE = 22  # 0001-0022 predate rolling upgrades; see docs/deployment.md
REMOVING = {"drop_column", "drop_table", "drop_index", "drop_constraint", "alter_column", "rename_table",
            "execute"}


def _stamp(database_url: str, revision: str) -> None:
    db = Database(database_url)
    with db.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    db.dispose()


def test_a_database_a_newer_release_migrated_is_left_alone_and_still_ready(api: ApiClient,
                                                                            database_url: str) -> None:
    head = migrate.head_revision()
    assert head is not None
    _stamp(database_url, "9999_from_a_newer_release")
    try:
        db = Database(database_url)
        migrate.upgrade(db.engine)  # a node of the older release restarting: no "Can't locate revision"
        assert migrate.schema_state(db.engine) == "ahead"
        db.dispose()
        ready = api.client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["migrations"] == "ahead"
    finally:
        _stamp(database_url, head)


def test_a_database_behind_is_not_ready(api: ApiClient, database_url: str) -> None:
    head = migrate.head_revision()
    assert head is not None
    _stamp(database_url, "0021")
    try:
        ready = api.client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["migrations"] == "behind"
    finally:
        _stamp(database_url, head)


def _removals(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    [upgrade] = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "upgrade"]
    return [f"op.{node.func.attr}" for node in ast.walk(upgrade)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in REMOVING
            and isinstance(node.func.value, ast.Name) and node.func.value.id == "op"]


def test_migrations_after_the_rule_only_add() -> None:
    """A migration that removes or changes what the previous release reads breaks its nodes mid-upgrade.
    Such a change waits for a later release and says so in a module-level CONTRACTS string."""
    offenders = {}
    for path in sorted(VERSIONS.glob("[0-9][0-9][0-9][0-9]_*.py")):
        if int(path.name[:4]) <= LAST_BEFORE_THE_RULE or "\nCONTRACTS = " in path.read_text():
            continue
        if found := _removals(path):
            offenders[path.name] = found
    assert offenders == {}, f"migrations that remove or change existing schema in upgrade(): {offenders}"


def test_the_rule_checker_sees_a_removal(tmp_path: Path) -> None:
    migration = tmp_path / "0099_example.py"
    migration.write_text("def upgrade():\n    op.drop_column('tasks', 'x')\n    op.add_column('t', c)\n")
    assert _removals(migration) == ["op.drop_column"]


@pytest.mark.postgres_only
def test_nodes_starting_together_migrate_one_at_a_time() -> None:
    """Four nodes start at once on an empty schema: one migrates, the others find it current."""
    db = Database(PG_URL)
    with db.engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS rolling CASCADE"))
        connection.execute(text("CREATE SCHEMA rolling"))
    db.dispose()
    url = PG_URL + ("&" if "?" in PG_URL else "?") + "options=-csearch_path%3Drolling"
    errors: list[str] = []

    def start_node() -> None:
        node = Database(url)
        try:
            migrate.upgrade(node.engine)
        except Exception as exc:
            errors.append(str(exc).splitlines()[0])
        finally:
            node.dispose()

    try:
        threads = [threading.Thread(target=start_node) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        node = Database(url)
        assert migrate.schema_state(node.engine) == "current"
        node.dispose()
    finally:
        db = Database(PG_URL)
        with db.engine.begin() as connection:
            connection.execute(text("DROP SCHEMA IF EXISTS rolling CASCADE"))
        db.dispose()
