"""CAREPATH_READ_DATABASE_URL: reports, audit searches and exports read from a replica, falling back to
the primary when it cannot be reached; what such a read records is written to the primary.

The "replica" here is a second, empty database: whatever a read finds (or does not find) tells which
database answered."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from carepath.api.app import create_app
from carepath.api.settings import Settings
from carepath.bench.pathway import BPMN, KEY
from carepath.engine.application import CarePath, EngineConfig
from carepath.engine.clock import ManualClock
from carepath.engine.persistence import migrate
from carepath.engine.persistence.database import Database
from carepath.engine.persistence.tables import Event
from tests.support.api import ApiClient


def _api(database_url: str, replica_url: str | None, clock: ManualClock) -> Iterator[ApiClient]:
    db = Database(database_url, replica_url=replica_url)
    engine = CarePath(db, clock, EngineConfig(script_timeout_s=2.0))
    settings = Settings(database_url=database_url, read_database_url=replica_url, deploy_shipped_pathways=False,
                        scheduler_enabled=False)
    with TestClient(create_app(settings, engine), raise_server_exceptions=False) as client:
        yield ApiClient(client, engine)
    db.dispose()


@pytest.fixture
def empty_replica(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'replica.db'}"
    db = Database(url)
    migrate.upgrade(db.engine)
    db.dispose()
    return url


def _with_history(api: ApiClient) -> str:
    lead = api.user("clinical_lead")
    assert api.deploy(lead, ("bench.bpmn", BPMN)).status_code == 201
    return api.user("auditor")


def _audit_uses(database_url: str) -> int:
    db = Database(database_url)
    try:
        with db.read() as session:
            return session.scalar(select(func.count()).select_from(Event).where(Event.type == "audit_log_used")) or 0
    finally:
        db.dispose()


def test_audit_search_reads_the_replica_and_records_on_the_primary(
        engine: CarePath, database_url: str, empty_replica: str, clock: ManualClock) -> None:
    for api in _api(database_url, empty_replica, clock):
        auditor = _with_history(api)
        on_primary = api.engine.db.read()
        with on_primary:
            assert on_primary.scalar(select(func.count()).select_from(Event)) > 0
        answer = api.get("/api/audit/events", auditor)
        assert answer.status_code == 200, answer.text
        assert answer.json()["items"] == []  # the replica has no history yet
        export = api.get("/api/audit/export?format=jsonl", auditor)
        assert export.status_code == 200 and export.text == ""
        report = api.get(f"/api/reports/compliance?pathway={KEY}", auditor)
        assert report.status_code == 404 and "not deployed" in report.text  # not on the replica yet
    assert _audit_uses(database_url) == 2  # the search and the export, recorded where writes go
    assert _audit_uses(empty_replica) == 0


def test_an_unreachable_replica_leaves_reports_to_the_primary(
        engine: CarePath, database_url: str, tmp_path: Path, clock: ManualClock,
        caplog: pytest.LogCaptureFixture) -> None:
    unreachable = f"sqlite:///{tmp_path / 'no-such-folder' / 'replica.db'}"
    for api in _api(database_url, unreachable, clock):
        auditor = _with_history(api)
        with caplog.at_level(logging.WARNING, logger="carepath"):
            answer = api.get("/api/audit/events", auditor)
        assert answer.status_code == 200, answer.text
        assert any(item["type"] == "pathway_deployed" for item in answer.json()["items"])
        assert "read replica cannot be reached" in caplog.text


def test_without_a_replica_reports_read_the_primary(api: ApiClient) -> None:
    auditor = _with_history(api)
    assert api.engine.db.replica is None
    items = api.get("/api/audit/events", auditor).json()["items"]
    assert any(item["type"] == "pathway_deployed" for item in items)
