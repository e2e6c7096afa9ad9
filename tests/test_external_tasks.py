"""External tasks through the product API: a service task for a topic waits for a worker, which fetches and
locks it, and completes it, fails it or reports a business error; locks expire; a worker that lost its lock is
refused. Every step goes through the stored state (the workflow cache is off), as after a restart."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from carepath.api.cli import main
from carepath.engine.application import CarePath
from carepath.engine.caches import LRUCache
from carepath.engine.clock import ManualClock
from carepath.engine.identity import Principal, Role
from carepath.engine.persistence.database import Database
from carepath.engine.persistence.external_task_tables import ExternalTask
from carepath.engine.persistence.tables import Event
from carepath.engine.usecases.external_tasks import TopicRequest, fetch_and_lock
from tests.support import diagrams as d
from tests.support.api import ApiClient

CAMUNDA = 'xmlns:camunda="http://camunda.org/schema/1.0/bpmn"'
FETCH = "/api/external-tasks/fetch-and-lock"


def sms_pathway(pid: str = "sms-reminder", *, boundary: bool = False) -> str:
    """start -> 'Send SMS' (topic send-sms, hands phone and message) -> 'Review' -> end; with `boundary`, the
    BPMN error 'no-phone' on the SMS task leads to 'Call the patient'."""
    elements = [d.node("startEvent", "start"),
                d.node("serviceTask", "send", "Send SMS", **{"camunda:type": "external", "camunda:topic": "send-sms",
                                                              "camunda:taskPriority": "5"},
                       body='<bpmn:extensionElements><camunda:properties><camunda:property '
                            'name="carepath.variables" value="phone, message"/></camunda:properties>'
                            '</bpmn:extensionElements>'),
                d.node("userTask", "review", "Review"), d.node("endEvent", "end"),
                d.flow("f1", "start", "send"), d.flow("f2", "send", "review"), d.flow("f3", "review", "end")]
    errors = ""
    if boundary:
        errors = '<bpmn:error id="Err_no_phone" name="No phone" errorCode="no-phone"/>'
        elements += [d.node("boundaryEvent", "no_phone", attachedToRef="send",
                            body='<bpmn:errorEventDefinition errorRef="Err_no_phone"/>'),
                     d.node("userTask", "call", "Call the patient"), d.node("endEvent", "end2"),
                     d.flow("f4", "no_phone", "call"), d.flow("f5", "call", "end2")]
    xml = d.definitions(d.process(pid, *elements), extra=errors)
    return xml.replace('xmlns:xsi=', f'{CAMUNDA} xmlns:xsi=', 1)


@pytest.fixture
def worker_api(api: ApiClient) -> ApiClient:
    api.engine.workflows = LRUCache(0)  # every step restores the workflow from the database
    return api


def started(api: ApiClient, *, boundary: bool = False) -> tuple[str, str]:
    """A deployed SMS pathway and a started episode: (integration account, instance id)."""
    lead = api.user("clinical_lead")
    assert api.deploy(lead, ("sms.bpmn", sms_pathway(boundary=boundary))).status_code == 201
    response = api.start(lead, "sms-reminder", "visit-1", data={"phone": "+15550100", "message": "Hi", "ssn": "x"})
    assert response.status_code == 201, response.text
    return api.user("integration", name="sms-gateway"), response.json()["id"]


def fetch(api: ApiClient, user: str, worker: str = "w1", lock: int = 60_000, **topic: Any) -> list[dict[str, Any]]:
    response = api.post(FETCH, user, {"worker_id": worker, "topics": [{"name": "send-sms", "lock_duration": lock,
                                                                      **topic}], "max_tasks": 5})
    assert response.status_code == 200, response.text
    return list(response.json())


def instance(api: ApiClient, instance_id: str) -> dict[str, Any]:
    admin = api.user("admin")
    return dict(api.get(f"/api/instances/{instance_id}", admin).json())


def test_a_worker_fetches_the_waiting_task_with_the_variables_it_asks_for_and_completes_it(
        worker_api: ApiClient) -> None:
    api = worker_api
    gateway, instance_id = started(api)
    assert instance(api, instance_id)["open_tasks"] == []  # waits for the worker, nothing for people yet
    [task] = fetch(api, gateway)
    assert (task["topic"], task["instance_id"], task["business_key"]) == ("send-sms", instance_id, "visit-1")
    assert task["variables"] == {"message": "Hi", "phone": "+15550100"}  # what the task hands, not the rest
    assert task["priority"] == 5 and task["worker_id"] == "w1"
    assert fetch(api, gateway, worker="w2") == []  # locked: nobody else gets it
    done = api.post(f"/api/external-tasks/{task['id']}/complete", gateway,
                    {"worker_id": "w1", "variables": {"sms_sent": True}})
    assert done.status_code == 204, done.text
    view = instance(api, instance_id)
    assert [t["name"] for t in view["open_tasks"]] == ["Review"] and view["data"]["sms_sent"] is True
    with api.engine.db.read() as session:
        types = list(session.scalars(select(Event.type).where(Event.instance_id == instance_id,
                                                              Event.type != "record_viewed").order_by(Event.id)))
    assert types[types.index("external_task_created"):] == [
        "external_task_created", "external_task_locked", "external_task_completed", "task_ready"]


def test_the_fetch_asks_for_fewer_variables(worker_api: ApiClient) -> None:
    gateway, _ = started(worker_api)
    [task] = fetch(worker_api, gateway, variables=["phone", "ssn"])
    assert task["variables"] == {"phone": "+15550100"}  # the diagram never hands ssn


def test_an_expired_lock_is_fetched_again_and_its_first_worker_is_refused(worker_api: ApiClient,
                                                                           clock: ManualClock) -> None:
    api = worker_api
    gateway, _ = started(api)
    [task] = fetch(api, gateway, worker="w1", lock=1000)
    clock.advance(timedelta(seconds=2))
    [again] = fetch(api, gateway, worker="w2")
    assert again["id"] == task["id"]
    late = api.post(f"/api/external-tasks/{task['id']}/complete", gateway, {"worker_id": "w1"})
    assert late.status_code == 409 and "w2" in late.json()["message"]
    assert api.post(f"/api/external-tasks/{task['id']}/complete", gateway, {"worker_id": "w2"}).status_code == 204


def test_extending_the_lock_keeps_the_task(worker_api: ApiClient, clock: ManualClock) -> None:
    api = worker_api
    gateway, _ = started(api)
    [task] = fetch(api, gateway, lock=1000)
    extend = api.post(f"/api/external-tasks/{task['id']}/extend-lock", gateway, {"worker_id": "w1",
                                                                                  "new_duration": 60_000})
    assert extend.status_code == 204
    clock.advance(timedelta(seconds=30))
    assert fetch(api, gateway, worker="w2") == []
    assert api.post(f"/api/external-tasks/{task['id']}/unlock", gateway).status_code == 204
    assert [t["id"] for t in fetch(api, gateway, worker="w2")] == [task["id"]]


def test_a_failure_with_retries_waits_the_retry_timeout_and_the_last_one_is_an_incident_that_can_be_retried(
        worker_api: ApiClient, clock: ManualClock) -> None:
    api = worker_api
    gateway, instance_id = started(api)
    [task] = fetch(api, gateway)
    failed = api.post(f"/api/external-tasks/{task['id']}/failure", gateway,
                      {"worker_id": "w1", "error_message": "gateway down", "retries": 1, "retry_timeout": 5000})
    assert failed.status_code == 204
    assert fetch(api, gateway) == []
    clock.advance(timedelta(seconds=6))
    [task] = fetch(api, gateway)
    assert task["retries"] == 1 and task["error_message"] == "gateway down"
    last = api.post(f"/api/external-tasks/{task['id']}/failure", gateway,
                    {"worker_id": "w1", "error_message": "number unknown", "retries": 0})
    assert last.status_code == 204
    [listed] = api.get("/api/external-tasks", gateway, params={"state": "failed"}).json()
    assert (listed["id"], listed["error_message"], listed["instance_id"]) == (task["id"], "number unknown", instance_id)
    view = instance(api, instance_id)
    assert view["status"] == "incident" and "number unknown" in view["incident"]["message"]
    assert view["incident"]["element_id"] == "send"
    assert fetch(api, gateway) == []
    lead = api.user("clinical_lead")
    assert api.post(f"/api/instances/{instance_id}/retry", lead, {}).status_code == 200
    [task] = fetch(api, gateway)
    assert api.post(f"/api/external-tasks/{task['id']}/complete", gateway, {"worker_id": "w1"}).status_code == 204
    assert instance(api, instance_id)["status"] == "running"


def test_a_bpmn_error_is_caught_by_the_boundary_event(worker_api: ApiClient) -> None:
    api = worker_api
    gateway, instance_id = started(api, boundary=True)
    [task] = fetch(api, gateway)
    thrown = api.post(f"/api/external-tasks/{task['id']}/bpmn-error", gateway,
                      {"worker_id": "w1", "error_code": "no-phone"})
    assert thrown.status_code == 204, thrown.text
    assert [t["name"] for t in instance(api, instance_id)["open_tasks"]] == ["Call the patient"]
    with api.engine.db.read() as session:
        assert session.get(ExternalTask, task["id"]).state == "completed"


def test_an_uncaught_bpmn_error_is_an_incident(worker_api: ApiClient) -> None:
    api = worker_api
    gateway, instance_id = started(api, boundary=True)
    [task] = fetch(api, gateway)
    api.post(f"/api/external-tasks/{task['id']}/bpmn-error", gateway, {"worker_id": "w1", "error_code": "other"})
    view = instance(api, instance_id)
    assert view["status"] == "incident" and "'other'" in view["incident"]["message"]


def test_only_integration_accounts_and_admins_work_external_tasks(worker_api: ApiClient) -> None:
    api = worker_api
    _, _ = started(api)
    coordinator = api.user("coordinator")
    refused = api.post(FETCH, coordinator, {"worker_id": "w", "topics": [{"name": "send-sms", "lock_duration": 1}]})
    assert refused.status_code == 403 and "integration" in refused.json()["message"]
    assert len(fetch(api, api.user("admin"))) == 1


def test_a_clinical_lead_listing_external_tasks_is_told_who_may_and_where_a_failed_step_shows(
        worker_api: ApiClient) -> None:
    lead = worker_api.user("clinical_lead")
    refused = worker_api.get("/api/external-tasks", lead, params={"state": "failed"})
    assert refused.status_code == 403
    assert refused.json()["message"].startswith("listing external tasks and connector calls needs one of the roles "
                                                "integration, admin")
    assert "incident" in refused.json()["message"]
    assert worker_api.get("/api/external-tasks", worker_api.user("admin")).status_code == 200


def test_a_cancelled_episode_cancels_its_external_task(worker_api: ApiClient) -> None:
    api = worker_api
    gateway, instance_id = started(api)
    lead = api.user("clinical_lead")
    assert api.post(f"/api/instances/{instance_id}/cancel", lead, {"reason": "moved away"}).status_code == 200
    assert fetch(api, gateway) == []
    with api.engine.db.read() as session:
        assert [row.state for row in session.scalars(select(ExternalTask))] == ["cancelled"]


def test_bad_requests_are_refused_with_the_field_named(worker_api: ApiClient) -> None:
    gateway, _ = started(worker_api)
    response = worker_api.post(FETCH, gateway, {"worker_id": "", "topics": []})
    assert response.status_code == 422 and "worker_id" in response.text
    assert worker_api.post("/api/external-tasks/nope/complete", gateway, {"worker_id": "w"}).status_code == 404


@pytest.mark.postgres_only
def test_concurrent_workers_never_lock_the_same_task(worker_api: ApiClient) -> None:
    """Eight workers, each with its own engine (connection pool), fetch at the same moment from twelve
    waiting tasks: every task is locked once, by one worker, and every task is locked."""
    api = worker_api
    lead = api.user("clinical_lead")
    assert api.deploy(lead, ("sms.bpmn", sms_pathway())).status_code == 201
    for number in range(12):
        assert api.start(lead, "sms-reminder", f"visit-{number}").status_code == 201
    gateway = Principal("sms-gateway", Role.INTEGRATION)
    barrier = threading.Barrier(8)
    results: dict[int, list[str]] = {}

    def worker(number: int) -> None:
        db = Database(api.engine.db.url)  # as configured: behind PgBouncer, its ?pgbouncer=true too
        app = CarePath(db, api.engine.clock, api.engine.config)
        barrier.wait()
        found = fetch_and_lock(app, gateway, f"w{number}", [TopicRequest("send-sms", 60_000)], 3)
        results[number] = [task.id for task in found]
        db.dispose()

    threads = [threading.Thread(target=worker, args=(number,)) for number in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    locked = [task_id for ids in results.values() for task_id in ids]
    assert len(locked) == len(set(locked)) == 12
    with api.engine.db.read() as session:
        holders = {row.id: row.worker_id for row in session.scalars(select(ExternalTask))}
    assert all(holders[task_id] == f"w{number}" for number, ids in results.items() for task_id in ids)


def test_simulate_says_the_pathway_waits_for_a_worker_of_the_topic(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    diagram = tmp_path / "sms.bpmn"
    diagram.write_text(sms_pathway())
    assert main(["simulate", str(diagram), "--data", '{"phone": "+1555"}']) == 0
    out = capsys.readouterr().out
    assert "waits for   an external worker of topic send-sms (send)" in out


def test_the_episode_says_it_waits_for_a_worker_of_the_topic_until_the_task_is_done(worker_api: ApiClient) -> None:
    api = worker_api
    gateway, instance_id = started(api)
    waits = [(w["type"], w["element_id"], w["topic"]) for w in instance(api, instance_id)["waiting"]]
    assert waits == [("external_task", "send", "send-sms")]  # not an episode with nothing open or awaited
    [task] = fetch(api, gateway)
    assert [w["type"] for w in instance(api, instance_id)["waiting"]] == ["external_task"]  # locked: still waits
    assert api.post(f"/api/external-tasks/{task['id']}/complete", gateway, {"worker_id": "w1"}).status_code == 204
    assert instance(api, instance_id)["waiting"] == []
