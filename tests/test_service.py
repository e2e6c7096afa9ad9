"""Health checks, metrics, OpenAPI, and the schema matching its migrations."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from carepath.engine.persistence import migrate
from carepath.engine.persistence.database import Database
from carepath.engine.persistence.tables import Base
from tests.support import diagrams as d
from tests.support.api import ApiClient


def test_health_and_readiness_need_no_token(api: ApiClient) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    ready = api.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["migrations"] == "current"


def test_openapi_docs_are_served(api: ApiClient) -> None:
    assert api.client.get("/docs").status_code == 200
    spec = api.client.get("/openapi.json").json()
    assert "/api/pathways/{key}/instances" in spec["paths"] and "/api/messages" in spec["paths"]
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"  # /docs can authorize
    start = spec["paths"]["/api/pathways/{key}/instances"]["post"]["responses"]
    assert {"401", "403", "404", "409", "422"} <= set(start)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_api_docs_load_nothing_from_outside_the_server(api: ApiClient, page: str) -> None:
    """On a hospital network without internet: every script, style, font and icon the page names is served
    by CarePath itself (the references in the HTML and in its inline script)."""
    response = api.client.get(page)
    html = response.text
    # the browser may not fetch from elsewhere either (Redoc's sidebar shows a logo from cdn.redoc.ly)
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert "img-src 'self' data:;" in response.headers["content-security-policy"]
    urls = set(re.findall(r"""(?:src|href|spec-url)=["']([^"']+)["']|url:\s*['"]([^'"]+)['"]""", html))
    found = {u for pair in urls for u in pair if u}
    assert any(u.endswith(".js") for u in found) and "/openapi.json" in found, found
    assert not re.search(r"https?://|//[a-z]", html.replace("http://www.w3.org", "")), html
    for url in found:
        assert url.startswith("/"), url
        assert api.client.get(url).status_code == 200, url


def test_metrics_count_instances_and_open_tasks(api: ApiClient) -> None:
    lead = api.user("clinical_lead")
    api.deploy(lead, ("fu.bpmn", d.linear_user_tasks("fu", "Call patient")))
    api.start(lead, "fu")
    api.start(lead, "fu")
    text = api.client.get("/metrics").text
    assert 'carepath_instances{status="running"} 2.0' in text
    assert "carepath_open_tasks 2.0" in text
    assert "carepath_http_requests_total" in text


def test_metrics_count_requests_by_route_and_status(api: ApiClient) -> None:
    lead = api.user("clinical_lead")
    api.deploy(lead, ("fu.bpmn", d.linear_user_tasks("fu", "Call patient")))
    api.start(lead, "fu")
    assert api.get("/api/instances/no-such-episode", lead).status_code == 404
    text = api.client.get("/metrics").text
    assert ('carepath_http_requests_total{method="POST",route="/api/pathways/{key}/instances",status="201"} 1.0'
            in text)
    assert 'carepath_http_requests_total{method="GET",route="/api/instances/{instance_id}",status="404"} 1.0' in text
    assert 'carepath_http_request_seconds_count{method="POST",route="/api/pathways/{key}/instances"} 1.0' in text


def test_models_and_migrations_agree(api: ApiClient) -> None:
    with api.engine.db.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []


def test_upgrading_to_the_audience_column_folds_in_existing_candidates(tmp_path) -> None:
    """Revision 0005 backfills tasks.audience from task_candidates for tasks created before it."""
    from sqlalchemy import select

    from carepath.engine.persistence.tables import Task, TaskCandidate

    with _old_database(tmp_path, "0004") as (db, path):
        with sqlite3.connect(path) as raw:
            _insert_filled(raw, "instances", id="i1", pathway_version_id=1, status="running")
            for task_id, candidates in {"t1": [("user", "sam"), ("group", "pharmacy")], "t2": []}.items():
                raw.execute("INSERT INTO tasks (id, instance_id, pathway_key, element_id, name, kind, state, "
                            "priority, created_at) VALUES (?, 'i1', 'p', 'e', 'n', 'user', 'ready', 50, "
                            "'2026-01-01 00:00:00')", (task_id,))
                raw.executemany("INSERT INTO task_candidates (task_id, kind, value) VALUES (?, ?, ?)",
                                [(task_id, kind, value) for kind, value in candidates])
        migrate.upgrade(db.engine)
        with db.engine.connect() as connection:
            audience = dict(connection.execute(select(Task.id, Task.audience)).all())
            candidates = connection.execute(select(TaskCandidate.task_id, TaskCandidate.kind)).all()
        assert audience == {"t1": ["group:pharmacy", "user:sam"], "t2": []}
        assert sorted(candidates) == [("t1", "group"), ("t1", "user")]  # no table copy cascaded into them
        migrate.downgrade(db.engine, "0004")  # and back: the tables are copied; the candidates stay
        with sqlite3.connect(path) as raw:
            assert raw.execute("SELECT count(*) FROM task_candidates").fetchone() == (2,)
            assert raw.execute("SELECT count(*) FROM tasks").fetchone() == (2,)
        migrate.upgrade(db.engine)


@contextmanager
def _old_database(tmp_path: Path, revision: str) -> Iterator[tuple[Database, Path]]:
    """A SQLite database file migrated to `revision`, holding one pathway version (id 1)."""
    path = tmp_path / "old.db"
    db = Database(f"sqlite:///{path}")
    try:
        migrate.upgrade(db.engine, revision)
        with sqlite3.connect(path) as raw:
            _insert_filled(raw, "deployment_files", id=1)
            _insert_filled(raw, "pathway_versions", id=1, source_file_id=1)
        yield db, path
    finally:
        db.dispose()


def _insert_filled(raw: Any, table: str, **values: Any) -> None:
    """A row with the given values and a placeholder in every other NOT NULL column."""
    for _, name, kind, notnull, default, _pk in raw.execute(f"PRAGMA table_info({table})").fetchall():
        if notnull and default is None and name not in values:
            values[name] = 0 if kind.upper() in ("INTEGER", "BOOLEAN", "BIGINT") else "{}" if kind == "JSON" else "x"
    raw.execute(f"INSERT INTO {table} ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
                list(values.values()))


def test_states_are_checked_by_the_database_from_revision_0012(tmp_path) -> None:
    """Every state value CarePath has written passes the new CHECK constraints; the table copies SQLite
    needs keep their rows, and the open-task counting triggers of 0007 still count."""
    import pytest
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError
    from sqlalchemy.orm import Session

    from carepath.engine.model import InstanceStatus, MessageState, NotificationState, TaskState, TimerState
    from carepath.engine.queries import task_counts

    with _old_database(tmp_path, "0011") as (db, path):
        with sqlite3.connect(path) as raw:
            for n, status in enumerate(InstanceStatus):
                _insert_filled(raw, "instances", id=f"i{n}", pathway_version_id=1, status=status.value,
                               business_key=f"b{n}")
            for n, state in enumerate(TaskState):
                _insert_filled(raw, "tasks", id=f"t{n}", instance_id="i0", state=state.value,
                               audience='["group:pharmacy"]', priority=50)
            for n, state in enumerate(TimerState):
                _insert_filled(raw, "timers", id=n + 1, instance_id="i0", task_id=f"t{n}", state=state.value,
                               attempts=0)
            for n, state in enumerate(MessageState):
                _insert_filled(raw, "messages", id=n + 1, message_id=f"m{n}", state=state.value)
            for n, state in enumerate(NotificationState):
                _insert_filled(raw, "notifications", id=n + 1, state=state.value, attempts=0)
        migrate.upgrade(db.engine)
        with db.engine.begin() as connection:
            counted = {(table, n) for table in ("instances", "tasks", "timers", "messages", "notifications")
                       for n in connection.execute(text(f"SELECT count(*) FROM {table}")).scalars()}
            assert counted == {("instances", 4), ("tasks", 5), ("timers", 4), ("messages", 4), ("notifications", 3)}
            connection.execute(text("UPDATE tasks SET state = 'on-hold' WHERE id = 't0'"))
            with pytest.raises(IntegrityError, match="ck_tasks_state"), connection.begin_nested():
                connection.execute(text("UPDATE tasks SET state = 'paused' WHERE id = 't1'"))
            with pytest.raises(IntegrityError, match="ck_timers_state"), connection.begin_nested():
                connection.execute(text("UPDATE timers SET state = 'waiting'"))
        with db.engine.connect() as connection, connection.begin():
            counts = task_counts(Session(bind=connection))
        # 0007's triggers counted the three open tasks as they were inserted, and the move of one after 0012.
        assert {(c["group"], c["state"], c["count"]) for c in counts} == {
            ("pharmacy", "in-progress", 1), ("pharmacy", "on-hold", 2)}
