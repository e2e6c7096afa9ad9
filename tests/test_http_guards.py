"""What every request meets before a route: body size, empty and NUL query values, NUL in path ids and body
strings, unknown routes, and unexpected errors — all answered in the documented error shape."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from carepath.api.app import create_app
from carepath.api.settings import Settings
from carepath.engine.application import CarePath
from tests.support.api import ApiClient
from tests.support.server import running
from tests.test_task_assignment import camunda_task


def _documented(response: httpx.Response, status: int, error: str) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body: dict[str, Any] = response.json()
    assert body["error"] == error and body["message"], body
    return body


def test_unknown_routes_and_methods_answer_the_documented_shape(api: ApiClient) -> None:
    body = _documented(api.client.get("/api/nothing-here"), 404, "NotFound")
    assert "/api/nothing-here" in body["message"]
    body = _documented(api.client.delete("/api/instances"), 405, "MethodNotAllowed")
    assert "GET" in body["message"]


def _start_body(size: int) -> bytes:
    return b'{"business_key": "bk-1", "data": {"note": "' + b"x" * size + b'"}}'


def test_a_body_over_the_limit_is_413_before_it_is_parsed(api: ApiClient) -> None:
    lead = api.user("clinical_lead")
    headers = {**api.headers(lead), "content-type": "application/json"}
    too_large = _start_body(300 * 1024)
    _documented(api.client.post("/api/pathways/alpha/instances", content=too_large, headers=headers),
                413, "PayloadTooLarge")

    def chunks() -> Iterator[bytes]:  # no Content-Length: only counting the bytes as they arrive sees it
        for start in range(0, len(too_large), 8192):
            yield too_large[start:start + 8192]

    body = _documented(api.client.post("/api/pathways/alpha/instances", content=chunks(), headers=headers),
                       413, "PayloadTooLarge")
    assert "256 KiB" in body["message"]
    # under the limit the route answers (the pathway does not exist)
    _documented(api.client.post("/api/pathways/alpha/instances", content=_start_body(200 * 1024), headers=headers),
                404, "NotFound")


def test_a_deploy_keeps_its_own_upload_limit(api: ApiClient) -> None:
    lead = api.user("clinical_lead")
    bpmn = camunda_task("alpha", candidateGroups="pharmacy").replace("</bpmn:definitions>",
                                                                     f"<!-- {'x' * 400_000} --></bpmn:definitions>")
    assert api.deploy(lead, ("a.bpmn", bpmn)).status_code == 201


def test_the_body_limit_is_configured(engine: CarePath, database_url: str) -> None:
    from fastapi.testclient import TestClient

    settings = Settings(database_url=database_url, deploy_shipped_pathways=False, scheduler_enabled=False,
                        max_body_bytes=4096)
    with TestClient(create_app(settings, engine), raise_server_exceptions=False) as client:
        response = client.post("/api/messages", content=b"{" + b" " * 5000 + b"}",
                               headers={"content-type": "application/json"})
    _documented(response, 413, "PayloadTooLarge")


def test_chunked_bodies_are_bounded_on_a_real_server(engine: CarePath, database_url: str) -> None:
    settings = Settings(database_url=database_url, deploy_shipped_pathways=False, scheduler_enabled=False)
    payload = _start_body(300 * 1024)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(payload), 16384):
            yield payload[start:start + 16384]

    with running(create_app(settings, engine)) as url:
        response = httpx.post(f"{url}/api/messages", content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in response.request.headers
    _documented(response, 413, "PayloadTooLarge")


def _query_parameters(api: ApiClient) -> list[tuple[str, str]]:
    """Every (GET path, query parameter) the API declares."""
    found = []
    for path, operations in api.client.get("/openapi.json").json()["paths"].items():
        for parameter in operations.get("get", {}).get("parameters", []):
            if parameter["in"] == "query":
                found.append((path, parameter["name"]))
    return found


def _path_ids(api: ApiClient) -> list[tuple[str, str, str]]:
    """Every (method, path, string path parameter) the API declares."""
    found = []
    for path, operations in api.client.get("/openapi.json").json()["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["schema"].get("type") == "string":
                    found.append((method, path, parameter["name"]))
    return found


def test_a_nul_character_anywhere_is_422_naming_the_field(api: ApiClient) -> None:
    admin = api.user("admin")
    queries = _query_parameters(api)
    assert len(queries) > 20
    for path, name in queries:
        url = path.replace("{", "").replace("}", "")  # ids of nothing: the query is checked first
        response = api.get(url, admin, params={name: "a\x00b"})
        body = _documented(response, 422, "ValidationFailed")
        assert body["errors"][0]["field"] == name, (path, name, body)
    ids = _path_ids(api)
    assert len(ids) > 20
    for method, path, name in ids:
        url = path.replace("{" + name + "}", "a%00b")
        for other in ("key", "instance_id", "task_id", "name", "version", "token_id"):
            url = url.replace("{" + other + "}", "1")
        response = api.client.request(method, url, headers=api.headers(admin), json={})
        body = _documented(response, 422, "ValidationFailed")
        assert body["errors"][0]["field"] == name, (method, path, body)


@pytest.mark.parametrize("path,body,field", [
    ("/api/pathways/alpha/instances", {"business_key": "bk\x00"}, "business_key"),
    ("/api/pathways/alpha/instances", {"business_key": "bk", "patient_id": "p\x00"}, "patient_id"),
    ("/api/pathways/alpha/instances", {"business_key": "bk", "data": {"notes": ["ok", "a\x00"]}}, "data.notes.1"),
    ("/api/messages", {"name": "m\x00", "correlation_key": "k"}, "name"),
    ("/api/messages", {"name": "m", "correlation_key": "k", "message_id": "\x00"}, "message_id"),
    ("/api/users", {"name": "u\x00", "role": "coordinator"}, "name"),
])
def test_a_nul_character_in_a_body_string_is_422_naming_it(api: ApiClient, path: str, body: dict[str, Any],
                                                           field: str) -> None:
    admin = api.user("admin")
    assert api.deploy(admin, ("a.bpmn", camunda_task("alpha", candidateGroups="pharmacy"))).status_code == 201
    answer = _documented(api.post(path, admin, body), 422, "ValidationFailed")
    assert answer["errors"][0]["field"] == field, answer
    assert api.get("/api/instances", admin).json()["items"] == []


def test_empty_query_values_are_left_out(api: ApiClient) -> None:
    admin = api.user("admin")
    assert api.deploy(admin, ("a.bpmn", camunda_task("alpha", candidateGroups="pharmacy"))).status_code == 201
    assert api.get("/api/pathways/alpha/versions/1/diagram.svg?instance=", admin).status_code != 404
    assert api.get("/api/reports/compliance?pathway=&from=&to=", admin).status_code == 200
    listed = api.get("/api/instances?patient_id=&status=&offset=", admin)
    assert listed.status_code == 200, listed.text


def _boom() -> None:
    raise RuntimeError("a bug")


def test_an_unexpected_error_is_500_with_an_id_and_the_connection_stays_usable(
        engine: CarePath, database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(database_url=database_url, deploy_shipped_pathways=False, scheduler_enabled=False)
    app = create_app(settings, engine)
    app.add_api_route("/api/boom", _boom)
    caplog.set_level(logging.ERROR, logger="carepath.api")
    with running(app) as url, httpx.Client(base_url=url) as client:
        failed = client.get("/api/boom")
        body = _documented(failed, 500, "InternalError")
        assert body["error_id"] in body["message"]
        assert failed.headers.get("connection") != "close"
        again = client.get("/healthz")  # the same kept-alive connection
        assert again.status_code == 200
    logged = [r for r in caplog.records if r.name == "carepath.api" and body["error_id"] in r.getMessage()]
    assert logged and logged[0].exc_info is not None


def test_a_body_too_deep_to_read_is_refused_not_a_500(api: ApiClient) -> None:
    lead = api.user("clinical_lead")
    headers = {**api.headers(lead), "content-type": "application/json"}
    for body in (b'{"name": "m", "correlation_key": "\\u0000", "data": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
                 b'{"name": "m", "correlation_key": "k", "data": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"):
        response = api.client.post("/api/messages", content=body, headers=headers)
        assert response.status_code in (400, 422), (response.status_code, response.text)
        assert response.json()["error"] in ("BadRequest", "ValidationFailed")
