"""Health checks, metrics, OpenAPI, and the schema matching its migrations."""

from __future__ import annotations

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
