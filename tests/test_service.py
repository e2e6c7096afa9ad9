"""Health checks, metrics, OpenAPI, and the schema matching its migrations."""

from __future__ import annotations

import re
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

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


def test_models_and_migrations_agree(api: ApiClient) -> None:
    with api.engine.db.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []


def test_upgrading_to_the_audience_column_folds_in_existing_candidates(tmp_path) -> None:
    """Revision 0005 backfills tasks.audience from task_candidates for tasks created before it."""
    import sqlite3

    from sqlalchemy import select

    from carepath.engine.persistence import migrate
    from carepath.engine.persistence.database import Database
    from carepath.engine.persistence.tables import Task, TaskCandidate

    path = tmp_path / "old.db"
    db = Database(f"sqlite:///{path}")
    try:
        migrate.upgrade(db.engine, "0004")
        with sqlite3.connect(path) as raw:
            _insert_filled(raw, "deployment_files", id=1)
            _insert_filled(raw, "pathway_versions", id=1, source_file_id=1)
            _insert_filled(raw, "instances", id="i1", pathway_version_id=1)
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
    finally:
        db.dispose()


def _insert_filled(raw: Any, table: str, **values: Any) -> None:
    """A row with the given values and a placeholder in every other NOT NULL column."""
    for _, name, kind, notnull, default, _pk in raw.execute(f"PRAGMA table_info({table})").fetchall():
        if notnull and default is None and name not in values:
            values[name] = 0 if kind.upper() in ("INTEGER", "BOOLEAN", "BIGINT") else "{}" if kind == "JSON" else "x"
    raw.execute(f"INSERT INTO {table} ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
                list(values.values()))
