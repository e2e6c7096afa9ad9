"""Shared fixtures. The database comes from CAREPATH_TEST_DATABASE_URL (default: a SQLite file per test).

On PostgreSQL the schema is migrated once per session and every table is truncated before each
test, so a second run starts as clean as the first.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.dependencies import models as fastapi_models
from fastapi.testclient import TestClient
from sqlalchemy import text

from carepath.api.app import create_app
from carepath.api.settings import Settings
from carepath.engine.application import CarePath, EngineConfig
from carepath.engine.caches import LRUCache
from carepath.engine.clock import ManualClock
from carepath.engine.persistence import migrate
from carepath.engine.persistence.database import Database, behind_pgbouncer, is_sqlite
from carepath.engine.persistence.tables import Base

from .support import quick_check
from .support.api import ApiClient

PG_URL = os.environ.get("CAREPATH_TEST_DATABASE_URL", "")


def pytest_report_header(config: pytest.Config) -> str:
    return f"carepath test database: {PG_URL or 'sqlite (a file per test)'}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skips = {}
    if not PG_URL or is_sqlite(PG_URL):
        skips["postgres_only"] = ("needs PostgreSQL (row locks across connections or processes): "
                                  "set CAREPATH_TEST_DATABASE_URL")
    if not behind_pgbouncer(PG_URL or "sqlite://"):
        skips["pgbouncer"] = ("needs PostgreSQL through PgBouncer in transaction pooling mode: set "
                              "CAREPATH_TEST_DATABASE_URL to its address with ?pgbouncer=true (.ci/pgbouncer start)")
    if not os.environ.get("CAREPATH_CORPUS_DIR"):
        skips["corpus"] = "CAREPATH_CORPUS_DIR is not set; point it at a BPMN corpus folder"
    for item in items:
        for marker, reason in skips.items():
            if marker in item.keywords:
                item.add_marker(pytest.mark.skip(reason=reason))


# FastAPI classifies every endpoint and dependency callable once, in lru_caches of 4096 entries
# (fastapi.dependencies.models); the /docs and /redoc endpoints fastapi-offline adds are closures over their
# app, so each app a test made (routes, schemas, engine, pools) stayed alive until the process ended, and the
# interpreter spent minutes at exit collecting them. Emptying the caches after a test lets its app go.
_FASTAPI_CALL_CACHES = [getattr(fastapi_models, name) for name in (
    "_is_gen_callable_cached", "_is_async_gen_callable_cached", "_is_coroutine_callable_cached")
    if hasattr(getattr(fastapi_models, name, None), "cache_clear")]


@pytest.fixture(scope="session", autouse=True)
def _quick_workflow_checked() -> Iterator[None]:
    """The engine's quick ready-task search is compared with SpiffWorkflow's walk on every diagram the engine runs."""
    quick_check.install()
    yield
    quick_check.uninstall()
    assert not quick_check.mismatches, "\n".join(quick_check.mismatches[:20])


@pytest.fixture(autouse=True)
def _release_apps() -> Iterator[None]:
    yield
    for cache in _FASTAPI_CALL_CACHES:
        cache.cache_clear()


@pytest.fixture(scope="session")
def _pg_migrated() -> Iterator[str | None]:
    if not PG_URL or is_sqlite(PG_URL):
        yield None
        return
    db = Database(PG_URL)
    with db.engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    migrate.upgrade(db.engine)
    db.dispose()
    yield PG_URL


@pytest.fixture
def database_url(tmp_path: Path, _pg_migrated: str | None) -> Iterator[str]:
    if _pg_migrated is None:
        yield PG_URL if PG_URL else f"sqlite:///{tmp_path / 'carepath-test.db'}"
        return
    db = Database(_pg_migrated)
    names = ", ".join(t.name for t in reversed(Base.metadata.sorted_tables))
    with db.engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    db.dispose()
    yield _pg_migrated


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def engine(database_url: str, clock: ManualClock) -> Iterator[CarePath]:
    db = Database(database_url)
    migrate.upgrade(db.engine)
    app = CarePath(db, clock, EngineConfig(script_timeout_s=2.0))
    yield app
    db.dispose()


@pytest.fixture
def api(engine: CarePath, database_url: str) -> Iterator[ApiClient]:
    settings = Settings(database_url=database_url, deploy_shipped_pathways=False, scheduler_enabled=False)
    app = create_app(settings, engine)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield ApiClient(client, engine)


@pytest.fixture
def shipped(engine: CarePath, database_url: str) -> Iterator[ApiClient]:
    """The service as `carepath serve` starts it: shipped pathways deployed at start-up. No workflow is
    kept in memory between requests, so every step of a story goes through a save/restore round trip."""
    engine.workflows = LRUCache(0)
    settings = Settings(database_url=database_url, deploy_shipped_pathways=True, scheduler_enabled=False)
    with TestClient(create_app(settings, engine), raise_server_exceptions=False) as client:
        yield ApiClient(client, engine)
