"""The HTTP access log keeps paths, never query strings (they can carry a patient id)."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from carepath.api.app import create_app
from carepath.api.settings import Settings
from carepath.engine.application import CarePath
from tests.support.api import ApiClient
from tests.support.server import running


def test_uvicorns_access_log_leaves_out_the_query_string(engine: CarePath, database_url: str,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(Settings(database_url=database_url, deploy_shipped_pathways=False, scheduler_enabled=False),
                     engine)
    caplog.set_level(logging.INFO, logger="uvicorn.access")
    with running(app, access_log=True) as url:
        response = httpx.get(f"{url}/api/instances", params={"patient_id": "pat-secret-42"})
        assert response.status_code == 401
    lines = [r.getMessage() for r in caplog.records if r.name == "uvicorn.access"]
    assert any('"GET /api/instances HTTP/1.1" 401' in line for line in lines), lines
    assert "pat-secret-42" not in caplog.text and "patient_id" not in caplog.text


def test_a_database_error_is_logged_without_the_statements_values(api: ApiClient, monkeypatch: pytest.MonkeyPatch,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    """An unexpected error is logged with its traceback; a database error's message would carry the
    statement's parameters (patient ids, form data) unless the engine hides them."""
    def failing_list(session: Any, *args: Any, **kwargs: Any) -> Any:
        session.execute(sa.text("SELEC * FROM instances WHERE patient_id = :patient"),
                        {"patient": kwargs["patient_id"]})

    monkeypatch.setattr("carepath.api.routes.instances.list_instances", failing_list)
    caplog.set_level(logging.ERROR)
    response = api.get("/api/instances?patient_id=pat-secret-42", api.user("admin"))
    assert response.status_code == 500 and "pat-secret-42" not in response.text
    [record] = [r for r in caplog.records if r.name == "carepath.api"]
    logged = record.getMessage() + "\n" + logging.Formatter().formatException(record.exc_info)  # type: ignore[arg-type]
    assert "SELEC * FROM instances" in logged  # the statement is there, for whoever mends it
    assert "pat-secret-42" not in logged and "parameters hidden" in logged
