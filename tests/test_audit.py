"""The audit trail over HTTP: who changed or read a patient's record, filtered, for auditors and admins."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from carepath.engine.clock import ManualClock
from tests.support.api import ApiClient
from tests.test_task_assignment import camunda_task


def _setup(api: ApiClient) -> tuple[str, str, str]:
    api.user("admin", name="admin")
    api.user("auditor", name="auditor")
    api.user("coordinator", "pharmacy", name="coord")
    assert api.deploy("admin", ("a.bpmn", camunda_task("alpha", candidateGroups="pharmacy"))).status_code == 201
    assert api.deploy("admin", ("b.bpmn", camunda_task("beta", candidateGroups="pharmacy"))).status_code == 201
    return "admin", "auditor", "coord"


def _events(api: ApiClient, as_user: str = "auditor", **params: Any) -> dict[str, Any]:
    response = api.get("/api/audit/events", as_user, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_who_viewed_a_patients_record(api: ApiClient) -> None:
    _setup(api)
    mine = api.start("coord", "alpha", patient_id="pat-1").json()
    other = api.start("coord", "alpha", patient_id="pat-2").json()
    task_id = mine["open_tasks"][0]["id"]
    headers = {**api.headers("coord"), "User-Agent": "ward-tablet/2.1"}
    for path in ("", "/history", "/measures"):
        assert api.client.get(f"/api/instances/{mine['id']}{path}", headers=headers).status_code == 200
    for path in ("", "/form", "/comments"):
        assert api.client.get(f"/api/tasks/{task_id}{path}", headers=headers).status_code == 200
    api.get(f"/api/instances/{other['id']}", "admin")

    viewed = _events(api, patient_id="pat-1", type="record_viewed", order="oldest")
    assert [(e["actor"], e["data"]["what"], e["task_id"]) for e in viewed["items"]] == [
        ("coord", "instance", None), ("coord", "history", None), ("coord", "measures", None),
        ("coord", "task", task_id), ("coord", "form", task_id), ("coord", "comments", task_id)]
    first = viewed["items"][0]
    assert first["patient_id"] == "pat-1" and first["pathway"] == "alpha" and first["instance_id"] == mine["id"]
    assert first["data"]["client"] == {"host": "testclient", "user_agent": "ward-tablet/2.1"}
    assert {e["actor"] for e in _events(api, patient_id="pat-2", type="record_viewed")["items"]} == {"admin"}


def test_lists_and_refused_reads_record_no_view(api: ApiClient) -> None:
    _setup(api)
    api.user("coordinator", "social-work", name="outsider")
    started = api.start("coord", "alpha", patient_id="pat-1").json()
    assert api.get("/api/tasks", "coord").status_code == 200
    assert api.get("/api/instances", "coord", params={"patient_id": "pat-1"}).status_code == 200
    assert api.get(f"/api/instances/{started['id']}", "outsider").status_code == 404
    assert _events(api, type="record_viewed")["items"] == []


def test_views_stay_out_of_the_instance_history(api: ApiClient) -> None:
    _setup(api)
    started = api.start("coord", "alpha", patient_id="pat-1").json()
    api.get(f"/api/instances/{started['id']}", "coord")
    history = api.get(f"/api/instances/{started['id']}/history", "coord").json()
    assert "record_viewed" not in {e["type"] for e in history["items"]}
    assert history["total"] == len(history["items"])


def test_filters_combine(api: ApiClient, clock: ManualClock) -> None:
    _setup(api)
    early = api.start("coord", "alpha", patient_id="pat-1").json()
    clock.advance(timedelta(hours=2))
    middle = clock()
    late = api.start("admin", "beta", patient_id="pat-1").json()
    api.post(f"/api/tasks/{late['open_tasks'][0]['id']}/claim", "coord")

    # the pathway's own events (its deploy) and its instances' events
    assert {e["instance_id"] for e in _events(api, pathway="alpha")["items"]} == {None, early["id"]}
    assert {e["type"] for e in _events(api, pathway="alpha")["items"]} >= {"instance_started", "task_ready"}
    deployed = _events(api, pathway="beta", type="pathway_deployed")["items"]
    assert [(e["pathway"], e["instance_id"]) for e in deployed] == [("beta", None)]
    by_admin = _events(api, user="admin", type=["instance_started", "task_claimed"])["items"]
    assert [e["instance_id"] for e in by_admin] == [late["id"]]
    claimed = _events(api, user="coord", type="task_claimed", instance_id=late["id"])["items"]
    assert len(claimed) == 1 and claimed[0]["patient_id"] == "pat-1"
    since = _events(api, patient_id="pat-1", **{"from": middle.isoformat()})["items"]
    assert {e["instance_id"] for e in since} == {late["id"]}
    until = _events(api, patient_id="pat-1", to=middle.isoformat())["items"]
    assert {e["instance_id"] for e in until} == {early["id"]}


def test_order_and_paging(api: ApiClient) -> None:
    _setup(api)
    for n in range(4):
        api.start("coord", "alpha", patient_id=f"pat-{n}")
    newest = _events(api, limit=3)
    ids = [e["id"] for e in newest["items"]]
    assert ids == sorted(ids, reverse=True) and len(ids) == 3
    oldest = _events(api, order="oldest", limit=3, offset=1)
    assert [e["id"] for e in oldest["items"]] == sorted(e["id"] for e in oldest["items"])
    everything = _events(api, exact_total=True, limit=1)
    assert everything["total_exact"] is True
    # Each read of the audit trail is itself recorded ("Audit Log Used"): the second read sees the first.
    assert everything["total"] + 1 == len(_events(api, limit=1000)["items"])


def test_reading_and_exporting_the_audit_trail_is_recorded(api: ApiClient) -> None:
    _setup(api)
    asked = api.get("/api/audit/events", "auditor", params={"user": "coord", "type": "task_completed"})
    assert asked.status_code == 200
    assert api.get("/api/audit/export", "auditor", params={"format": "csv",
                                                          "from": "2026-01-01T00:00:00Z"}).status_code == 200
    used = _events(api, type="audit_log_used", order="oldest")["items"]
    assert [(e["actor"], e["data"]["what"]) for e in used[:2]] == [("auditor", "events"), ("auditor", "export")]
    assert used[0]["data"]["filters"] == {"actor": "coord", "types": ["task_completed"]}
    assert used[1]["data"]["format"] == "csv" and used[1]["data"]["filters"]["since"].startswith("2026-01-01")
    assert api.get("/api/audit/events", "coord").status_code == 403  # refused: not a use of the log
    assert len(_events(api, type="audit_log_used")["items"]) == 4  # the two above and the two reads of it


def test_time_window_needs_an_offset_and_names_the_parameter(api: ApiClient) -> None:
    _setup(api)
    naive = api.get("/api/audit/events", "auditor", params={"from": "2026-11-30T17:00:00"})
    assert naive.status_code == 422 and "from" in naive.json()["message"]
    assert naive.json()["errors"][0]["field"] == "from"
    garbage = api.get("/api/audit/events", "auditor", params={"to": "next tuesday"})
    assert garbage.status_code == 422 and garbage.json()["errors"][0]["location"] == ["query", "to"]
    export = api.get("/api/audit/export", "auditor", params={"from": "2026-11-30T17:00:00"})
    assert export.status_code == 422 and export.json()["errors"][0]["field"] == "from"
    unknown = api.get("/api/audit/export", "auditor", params={"format": "xml"})
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["location"] == ["query", "format"]


def test_only_auditors_and_admins_read_the_trail(api: ApiClient) -> None:
    _setup(api)
    api.user("clinical_lead", name="lead")
    api.user("supervisor", "pharmacy", name="boss")
    for user, status in (("auditor", 200), ("admin", 200), ("coord", 403), ("lead", 403), ("boss", 403)):
        assert api.get("/api/audit/events", user).status_code == status, user
        assert api.get("/api/audit/export", user).status_code == status, user
