"""Extreme inputs on every paged list, version number and time parameter answer 422 naming the parameter,
never 500 (and an export never a 200 with an empty body)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.api import ApiClient
from tests.test_task_assignment import camunda_task

HUGE = "99999999999999999999"
# Year 1 at +14:00 is still year 0 in UTC, and year 9999 at -14:00 is year 10000: neither exists.
BEFORE_TIME = "0001-01-01T00:00:00+14:00"
AFTER_TIME = "9999-12-31T23:00:00-14:00"


def _setup(api: ApiClient) -> str:
    api.user("admin", name="admin")
    assert api.deploy("admin", ("a.bpmn", camunda_task("alpha", candidateGroups="pharmacy"))).status_code == 201
    started = api.start("admin", "alpha", patient_id="pat-1").json()
    return str(started["id"])


def _names(response: Any, parameter: str) -> None:
    assert response.status_code == 422, (response.status_code, response.text)
    body = response.json()
    assert body["error"] == "ValidationFailed"
    assert any(e.get("field") == parameter for e in body["errors"]), body
    assert parameter in body["errors"][0]["message"], body


@pytest.mark.parametrize("path", ["/api/audit/events", "/api/instances", "/api/instances/{id}/history",
                                  "/api/tasks", "/api/notifications"])
def test_offsets_beyond_any_row_number_are_422(api: ApiClient, path: str) -> None:
    instance_id = _setup(api)
    url = path.format(id=instance_id)
    _names(api.get(url, "admin", params={"offset": HUGE}), "offset")
    _names(api.get(url, "admin", params={"offset": str(2**62 + 1)}), "offset")
    assert api.get(url, "admin", params={"offset": str(2**62)}).status_code == 200


@pytest.mark.parametrize("suffix", ["bpmn", "diagram.svg"])
def test_version_numbers_beyond_any_version_are_422(api: ApiClient, suffix: str) -> None:
    _setup(api)
    _names(api.get(f"/api/pathways/alpha/versions/{HUGE}/{suffix}", "admin"), "version")
    _names(api.get(f"/api/pathways/alpha/versions/{2**31}/{suffix}", "admin"), "version")
    assert api.get(f"/api/pathways/alpha/versions/{2**31 - 1}/{suffix}", "admin").status_code == 404
    existing = api.get(f"/api/pathways/alpha/versions/1/{suffix}", "admin")  # the test pathway has no layout
    assert existing.status_code == 200 or "version" not in {e.get("field") for e in existing.json().get("errors") or []}


def test_other_integer_ids_beyond_the_column_are_422(api: ApiClient) -> None:
    _setup(api)
    _names(api.post(f"/api/pathways/alpha/versions/{HUGE}/retire", "admin"), "version")
    _names(api.client.delete(f"/api/users/admin/tokens/{HUGE}", headers=api.headers("admin")), "token_id")
    started = api.start("admin", "alpha", version=2**31)
    assert started.status_code == 422 and started.json()["errors"][0]["location"] == ["body", "version"]


@pytest.mark.parametrize("path,parameter", [("/api/audit/events", "from"), ("/api/audit/events", "to"),
                                            ("/api/audit/export", "from"), ("/api/audit/export", "to"),
                                            ("/api/tasks", "due_before"), ("/api/reports/compliance", "from"),
                                            ("/api/reports/compliance", "to")])
@pytest.mark.parametrize("value", [BEFORE_TIME, AFTER_TIME])
def test_times_outside_the_calendar_in_utc_are_422(api: ApiClient, path: str, parameter: str, value: str) -> None:
    _setup(api)
    _names(api.get(path, "admin", params={parameter: value}), parameter)


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "fhir"])
def test_an_export_with_a_bad_window_answers_422_json_not_an_empty_file(api: ApiClient, fmt: str) -> None:
    _setup(api)
    for params in ({"from": BEFORE_TIME}, {"to": AFTER_TIME}, {"from": "2026-11-30T17:00:00"},
                   {"from": "2026-12-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"}):
        response = api.get("/api/audit/export", "admin", params={"format": fmt, **params})
        assert response.status_code == 422, (params, response.status_code, response.text)
        assert response.headers["content-type"].startswith("application/json")
        assert response.json()["error"] == "ValidationFailed"


def test_the_extremes_that_exist_are_accepted(api: ApiClient) -> None:
    _setup(api)
    for parameter in ("from", "to"):
        for value in ("0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z", "0001-01-01T00:00:00-14:00"):
            assert api.get("/api/audit/events", "admin", params={parameter: value}).status_code == 200, value
    exported = api.get("/api/audit/export", "admin", params={"format": "jsonl", "from": "0001-01-01T00:00:00Z"})
    assert exported.status_code == 200 and exported.text
    assert api.get("/api/tasks", "admin", params={"due_before": "9999-12-31T23:59:59Z"}).status_code == 200
    report = api.get("/api/reports/compliance", "admin", params={"from": "0001-01-01T00:00:00Z",
                                                                "to": "9999-12-31T23:59:59.999999Z"})
    assert report.status_code == 200, report.text


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "fhir"])
def test_an_export_whose_query_fails_answers_an_error_not_an_empty_file(api: ApiClient, fmt: str,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    _setup(api)

    def failing_query(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the database refused the filter")
        yield

    monkeypatch.setattr("carepath.engine.usecases.audit.stream_audit_records", failing_query)
    response = api.get("/api/audit/export", "admin", params={"format": fmt})
    assert response.status_code == 500 and response.json()["error"] == "InternalError", response.text
