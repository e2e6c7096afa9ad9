"""Every JSON value that enters is bounded (depth, size, NUL) with a 422 naming the limit, and values stored
before the bound existed never make a read fail."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update

from carepath.engine.bounds import NOT_SHOWN, SHOWN_DEPTH, check_json, shown
from carepath.engine.errors import ValidationFailed
from carepath.engine.persistence.tables import Event, Instance
from tests.support import diagrams as d
from tests.support.api import ApiClient
from tests.support.tamper import as_owner
from tests.test_task_assignment import camunda_task


def nested(levels: int) -> dict[str, Any]:
    """A JSON object `levels` deep: {"a": {"a": ... {}}}."""
    value: dict[str, Any] = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


class _Config:
    max_json_depth = 32
    max_json_bytes = 1024


class _App:
    config = _Config()


def test_depth_size_and_nul_are_refused_naming_the_limit() -> None:
    check_json(_App(), nested(32), "data")
    for value, message in ((nested(33), "data is nested deeper than 32 levels"),
                           ({"note": "x" * 2000}, "data is larger than 1 KiB"),
                           ({"a": [1, "x\x00"]}, "data.a.1 contains a NUL character")):
        with pytest.raises(ValidationFailed) as raised:
            check_json(_App(), value, "data")
        assert raised.value.message.startswith(message), raised.value.message


def test_a_value_deeper_than_any_encoder_can_write_is_shown_cut() -> None:
    assert shown(nested(SHOWN_DEPTH)) == nested(SHOWN_DEPTH)
    cut = shown({"keep": 1, "deep": nested(5000)})
    assert list(cut) == ["keep", "deep"]
    level = cut["deep"]
    for _ in range(SHOWN_DEPTH - 2):
        level = level["a"]
    assert level == {"a": NOT_SHOWN}


def _setup(api: ApiClient) -> str:
    api.user("admin", name="admin")
    api.user("clinical_lead", "pharmacy", name="lead")
    assert api.deploy("admin", ("a.bpmn", camunda_task("alpha", candidateGroups="pharmacy"))).status_code == 201
    return "lead"


def _refused(response: Any, field: str) -> None:
    assert response.status_code == 422, (response.status_code, response.text)
    body = response.json()
    assert "nested deeper than 32 levels" in body["message"] and body["errors"][0]["field"] == field, body


def test_every_entry_refuses_deep_data_and_stores_nothing(api: ApiClient) -> None:
    lead = _setup(api)
    _refused(api.start(lead, "alpha", data={"x": nested(280)}), "data")
    assert api.get("/api/instances", "admin").json()["items"] == []
    started = api.start(lead, "alpha").json()
    task = started["open_tasks"][0]["id"]
    deep = {"x": nested(40)}
    _refused(api.client.put(f"/api/tasks/{task}/draft", headers=api.headers(lead), json={"data": deep}), "data")
    _refused(api.post(f"/api/tasks/{task}/complete", lead, {"data": deep}), "data")
    _refused(api.post("/api/messages", lead, {"name": "m", "correlation_key": "k", "data": deep}), "data")
    assert api.get(f"/api/instances/{started['id']}", lead).json()["status"] == "running"


def test_a_message_nested_900_deep_is_refused_so_it_never_blocks_a_pathway(api: ApiClient) -> None:
    lead = api.user("clinical_lead")
    api.deploy(lead, ("ref.bpmn", d.task_then_message("ref", "report_received")))
    sent = api.post("/api/messages", lead, {"name": "report_received", "correlation_key": "referral-7",
                                            "data": {"x": nested(900)}})
    _refused(sent, "data")
    started = api.start(lead, "ref", business_key="referral-7").json()
    done = api.post(f"/api/tasks/{started['open_tasks'][0]['id']}/complete", lead, {"data": {}})
    assert done.status_code == 200, done.text


def test_rows_stored_before_the_bound_still_read(api: ApiClient) -> None:
    lead = _setup(api)
    started = api.start(lead, "alpha", patient_id="pat-1").json()
    deep = {"x": nested(400)}
    with as_owner(api.engine) as connection:  # as an older version stored them
        connection.execute(update(Instance).where(Instance.id == started["id"]).values(data=deep))
        connection.execute(update(Event).where(Event.instance_id == started["id"]).values(data=deep))
    iid = started["id"]
    for path in (f"/api/instances/{iid}", f"/api/instances/{iid}/history", f"/api/instances/{iid}/report.html",
                 "/api/audit/events", f"/api/tasks/{started['open_tasks'][0]['id']}/form"):
        response = api.get(path, "admin")
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
        if path.endswith(iid):
            assert NOT_SHOWN in response.text
    for fmt in ("csv", "jsonl", "fhir"):
        exported = api.get("/api/audit/export", "admin", params={"format": fmt})
        assert exported.status_code == 200 and NOT_SHOWN.replace('"', "") in exported.text.replace('""', '"'), fmt


def test_the_bounds_are_configured_from_the_environment() -> None:
    from carepath.api.settings import Settings

    config = Settings(max_json_depth=8, max_json_bytes=4096).engine_config()
    assert (config.max_json_depth, config.max_json_bytes) == (8, 4096)
    with pytest.raises(ValueError):
        Settings(max_json_depth=SHOWN_DEPTH + 1)  # deeper than reads could show
