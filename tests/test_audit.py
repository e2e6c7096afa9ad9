"""The audit trail over HTTP: who changed or read a patient's record, filtered, for auditors and admins."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlalchemy import event

from carepath.engine.clock import ManualClock
from carepath.engine.persistence.unit_of_work import UnitOfWork
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


def _two_versions(api: ApiClient) -> tuple[dict[str, Any], dict[str, Any]]:
    """alpha v1 and v2 (v2 offers the task to a second group too), an instance of each for pat-1."""
    _setup(api)
    assert api.deploy("admin", ("a.bpmn", camunda_task("alpha", candidateGroups="pharmacy,nursing"))).status_code == 201
    first = api.start("coord", "alpha", patient_id="pat-1", version=1).json()
    second = api.start("coord", "alpha", patient_id="pat-1").json()
    assert (first["version"], second["version"]) == (1, 2)
    return first, second


def test_history_and_audit_items_show_the_pathway_version(api: ApiClient) -> None:
    first, second = _two_versions(api)
    for instance, version in ((first, 1), (second, 2)):
        history = api.get(f"/api/instances/{instance['id']}/history", "coord").json()["items"]
        assert history and {e["pathway_version"] for e in history} == {version}
        audited = _events(api, instance_id=instance["id"])["items"]
        assert {(e["pathway"], e["pathway_version"]) for e in audited} == {("alpha", version)}
    deploys = _events(api, pathway="alpha", type="pathway_deployed", order="oldest")["items"]
    assert [(e["pathway"], e["pathway_version"]) for e in deploys] == [("alpha", 1), ("alpha", 2)]
    assert {e["pathway_version"] for e in _events(api, type="user_added")["items"]} == {None}


def test_version_numbers_are_read_once_per_page(api: ApiClient) -> None:
    _two_versions(api)
    for n in range(6):
        api.start("coord", "alpha", patient_id=f"pat-{n}", version=n % 2 + 1)
    statements: list[str] = []
    event.listen(api.engine.db.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))

    def selects(**params: Any) -> int:
        """The page's reads; not the caller's authentication, which a per-process cache may serve."""
        statements.clear()
        _events(api, **params)
        return len([s for s in statements if s.lstrip().upper().startswith("SELECT")
                    and "FROM users" not in s and "FROM user_groups" not in s])

    assert selects(limit=2) == selects(limit=200)


def test_audit_log_used_records_the_client(api: ApiClient) -> None:
    _setup(api)
    headers = {**api.headers("auditor"), "User-Agent": "audit-desk/1.0"}
    assert api.client.get("/api/audit/events", headers=headers).status_code == 200
    assert api.client.get("/api/audit/export", headers=headers, params={"format": "csv"}).status_code == 200
    used = _events(api, type="audit_log_used", order="oldest")["items"]
    assert [e["data"]["client"] for e in used[:2]] == [{"host": "testclient", "user_agent": "audit-desk/1.0"}] * 2


def test_a_refused_role_is_named_once(api: ApiClient) -> None:
    _setup(api)
    api.user("clinical_lead", name="lead")
    for path in ("/api/reports/compliance", "/api/audit/events", "/api/users"):
        message = api.get(path, "coord").json()["message"]
        assert message.count("admin") == 1, message
    assert "auditor, admin;" in api.get("/api/audit/events", "lead").json()["message"]


def test_history_and_audit_times_are_written_as_in_the_exports(api: ApiClient, clock: ManualClock) -> None:
    _setup(api)
    started = api.start("coord", "alpha", patient_id="pat-1").json()
    api.post(f"/api/tasks/{started['open_tasks'][0]['id']}/claim", "coord")
    history = api.get(f"/api/instances/{started['id']}/history", "coord").json()
    audited = _events(api, instance_id=started["id"], order="oldest")["items"]
    exported = [json.loads(line) for line in api.get("/api/audit/export", "auditor", params={
        "format": "jsonl", "instance_id": started["id"]}).text.splitlines()]
    at = "2026-01-05T09:00:00.000000Z"
    assert history["items"][0]["at"] == audited[0]["at"] == exported[0]["at"] == at
    assert history["tasks"][0]["created_at"] == history["tasks"][0]["claimed_at"] == at
    assert history["tasks"][0]["completed_at"] is None


def test_every_event_type_the_code_records_is_known() -> None:
    """The registry the `type` filter checks against, kept whole: every type a use case records."""
    import re
    from pathlib import Path

    import carepath.engine
    from carepath.engine.audit_fhir import MAPPING
    from carepath.engine.model import EVENT_TYPES
    from carepath.engine.rules import TABLES
    from carepath.engine.usecases.notifications import ALERT_KINDS

    source = "\n".join(p.read_text() for p in Path(carepath.engine.__file__).parent.rglob("*.py"))
    recorded = set(re.findall(r'record\(\s*"([a-z_]+)"', source))
    recorded |= {rule.event for table in TABLES.values() for rule in table.values() if rule.event}
    recorded |= {f"task_{kind}_alert" for kind in ALERT_KINDS}
    assert len(recorded) > 40  # the scan found the calls
    assert recorded - EVENT_TYPES == set()
    assert set(MAPPING) - EVENT_TYPES == set()


def test_an_unknown_event_type_is_refused_by_name(api: ApiClient) -> None:
    auditor = api.user("auditor")
    for path in ("/api/audit/events", "/api/audit/export"):
        response = api.get(path, auditor, params={"type": ["task_completed", "task_complted"]})
        assert response.status_code == 422, (path, response.text)
        assert "type 'task_complted' is not an event type" in response.json()["message"]
    assert api.get("/api/audit/events", auditor, params={"type": "task_completed"}).status_code == 200
    with UnitOfWork(api.engine) as uow:  # a type an older version recorded is still a type
        uow.record("legacy_thing", "system", data={})
        uow.commit()
    older = api.get("/api/audit/events", auditor, params={"type": "legacy_thing"})
    assert older.status_code == 200 and [e["type"] for e in older.json()["items"]] == ["legacy_thing"]
