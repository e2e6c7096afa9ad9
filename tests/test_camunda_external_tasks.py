"""Camunda 7's external-task REST contract under /engine-rest: what Camunda's own workers send and expect."""

from __future__ import annotations

import base64
from typing import Any

from carepath.engine.caches import LRUCache
from tests.support.api import ApiClient
from tests.test_external_tasks import sms_pathway

BASE = "/engine-rest/external-task"


def basic(user: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()}


def setup(api: ApiClient, *, boundary: bool = False) -> tuple[dict[str, str], str]:
    api.engine.workflows = LRUCache(0)
    lead = api.user("clinical_lead")
    assert api.deploy(lead, ("sms.bpmn", sms_pathway(boundary=boundary))).status_code == 201
    started = api.start(lead, "sms-reminder", "visit-7", data={"phone": "+15550100", "message": "Hi", "age": 70})
    gateway = api.user("integration", name="sms-gateway")
    return basic(gateway, api.headers(gateway)["Authorization"].removeprefix("Bearer ")), started.json()["id"]


def fetch_body(**extra: Any) -> dict[str, Any]:
    return {"workerId": "py-worker", "maxTasks": 2, "usePriority": True, "asyncResponseTimeout": 0,
            "topics": [{"topicName": "send-sms", "lockDuration": 10_000, "processVariables": {},
                        "deserializeValues": True}], "sorting": None, **extra}


def test_a_camunda_worker_fetches_with_typed_variables_and_completes_with_204(api: ApiClient) -> None:
    auth, instance_id = setup(api)
    response = api.client.post(f"{BASE}/fetchAndLock", headers=auth, json=fetch_body())
    assert response.status_code == 200, response.text
    [task] = response.json()
    assert (task["topicName"], task["workerId"], task["businessKey"]) == ("send-sms", "py-worker", "visit-7")
    assert task["processInstanceId"] == instance_id and task["activityId"] == "send"
    assert task["variables"] == {"message": {"value": "Hi", "type": "String", "valueInfo": {}},
                                 "phone": {"value": "+15550100", "type": "String", "valueInfo": {}}}
    assert task["lockExpirationTime"].endswith("+0000")
    done = api.client.post(f"{BASE}/{task['id']}/complete", headers=auth, json={
        "workerId": "py-worker", "variables": {"attempts": {"value": 1, "type": "Integer"},
                                               "reply": {"value": '{"ok": true}', "type": "Json"}}})
    assert done.status_code == 204 and done.content == b""
    admin = api.user("admin")
    view = api.get(f"/api/instances/{instance_id}", admin).json()
    assert view["data"]["attempts"] == 1 and view["data"]["reply"] == {"ok": True}
    assert [t["name"] for t in view["open_tasks"]] == ["Review"]


def test_errors_answer_in_camunda_s_format(api: ApiClient) -> None:
    auth, _ = setup(api)
    [task] = api.client.post(f"{BASE}/fetchAndLock", headers=auth, json=fetch_body()).json()
    other = api.client.post(f"{BASE}/{task['id']}/complete", headers=auth, json={"workerId": "someone-else"})
    assert other.status_code == 409 and other.json()["type"] == "RestException"
    assert "py-worker" in other.json()["message"]
    missing = api.client.post(f"{BASE}/nope/complete", headers=auth, json={"workerId": "py-worker"})
    assert missing.status_code == 404 and missing.json()["type"] == "InvalidRequestException"
    invalid = api.client.post(f"{BASE}/fetchAndLock", headers=auth, json={"workerId": "w"})
    assert invalid.status_code == 400 and invalid.json()["type"] == "InvalidRequestException"


def test_never_anonymous_and_the_user_must_own_the_token(api: ApiClient) -> None:
    auth, _ = setup(api)
    anonymous = api.client.post(f"{BASE}/fetchAndLock", json=fetch_body())
    assert anonymous.status_code == 401 and anonymous.json()["type"] == "AuthenticationException"
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic")
    token = base64.b64decode(auth["Authorization"].split()[1]).decode().split(":", 1)[1]
    wrong_user = api.client.post(f"{BASE}/fetchAndLock", headers=basic("someone", token), json=fetch_body())
    assert wrong_user.status_code == 401
    bearer = api.client.post(f"{BASE}/fetchAndLock", headers={"Authorization": f"Bearer {token}"}, json=fetch_body())
    assert bearer.status_code == 200 and len(bearer.json()) == 1


def test_failure_bpmn_error_extend_lock_and_unlock(api: ApiClient) -> None:
    auth, instance_id = setup(api, boundary=True)
    [task] = api.client.post(f"{BASE}/fetchAndLock", headers=auth, json=fetch_body()).json()
    url = f"{BASE}/{task['id']}"
    assert api.client.post(f"{url}/extendLock", headers=auth, json={"workerId": "py-worker",
                                                                     "newDuration": 5000}).status_code == 204
    assert api.client.post(f"{url}/unlock", headers=auth).status_code == 204
    [task] = api.client.post(f"{BASE}/fetchAndLock", headers=auth, json=fetch_body()).json()
    failed = api.client.post(f"{url}/failure", headers=auth, json={
        "workerId": "py-worker", "errorMessage": "busy", "errorDetails": "503", "retries": 2, "retryTimeout": 0})
    assert failed.status_code == 204
    [task] = api.client.post(f"{BASE}/fetchAndLock", headers=auth, json=fetch_body()).json()
    assert task["retries"] == 2 and task["errorMessage"] == "busy" and task["errorDetails"] == "503"
    thrown = api.client.post(f"{url}/bpmnError", headers=auth, json={"workerId": "py-worker", "errorCode": "no-phone",
                                                                     "errorMessage": "landline only"})
    assert thrown.status_code == 204
    admin = api.user("admin")
    assert [t["name"] for t in api.get(f"/api/instances/{instance_id}", admin).json()["open_tasks"]] == [
        "Call the patient"]


def test_a_long_poll_with_nothing_to_do_answers_an_empty_list(api: ApiClient) -> None:
    auth, _ = setup(api)
    api.client.post(f"{BASE}/fetchAndLock", headers=auth, json=fetch_body())  # takes the only task
    response = api.client.post(f"{BASE}/fetchAndLock", headers=auth, json=fetch_body(asyncResponseTimeout=600))
    assert response.status_code == 200 and response.json() == []
