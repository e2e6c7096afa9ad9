"""Who a message reaches (defect 5), and the `integration` role for the systems that send messages.

A coordinator's message reaches only the instances they may read: to them, an instance of another team
is not there, so the message is buffered as if nothing waited (no instance id in the answer) and is never
handed to that instance later either. An integration account (a scheduling system, an ADT feed) reaches
every instance, starts pathways, and may call nothing else.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from carepath.api.cli import main
from carepath.engine.application import CarePath
from carepath.engine.clock import ManualClock
from carepath.engine.persistence.database import Database
from carepath.engine.usecases.users import authenticate
from tests.support import diagrams as d
from tests.support.api import ApiClient


def _call_and_wait(pid: str) -> str:
    """start -> in parallel: user task "Call patient" (team "pharmacy") and a wait for "report" -> end."""
    return d.definitions(d.process(
        pid, d.node("startEvent", "start"), d.node("parallelGateway", "split"),
        d.node("userTask", "call", "Call patient"),
        d.node("intermediateCatchEvent", "wait", "Report received", body=d.message_ref("report")),
        d.node("parallelGateway", "join"), d.node("endEvent", "end"),
        d.flow("f0", "start", "split"), d.flow("f1", "split", "call"), d.flow("f2", "split", "wait"),
        d.flow("f3", "call", "join"), d.flow("f4", "wait", "join"), d.flow("f5", "join", "end"),
        lanes={"Pharmacy": ["call"]}), messages=("report",))


def _received(api: ApiClient, lead: str, instance_id: str) -> list[str]:
    history = api.get(f"/api/instances/{instance_id}/history", lead, params={"limit": 500}).json()["items"]
    return [e["actor"] for e in history if e["type"] == "message_received"]


@pytest.fixture
def episode(api: ApiClient) -> dict[str, str]:
    """One pharmacy patient's episode, waiting for "report" with its call task open."""
    users = {"lead": api.user("clinical_lead"), "insider": api.user("coordinator", "pharmacy"),
             "outsider": api.user("coordinator", "social-work")}
    assert api.deploy(users["lead"], ("p.bpmn", _call_and_wait("p"))).status_code == 201
    started = api.start(users["lead"], "p", business_key="enc-1").json()
    return {**users, "id": started["id"], "task": started["open_tasks"][0]["id"]}


def test_a_coordinators_message_to_an_instance_they_cannot_see_is_not_delivered_nor_reveals_it(
        api: ApiClient, episode: dict[str, str]) -> None:
    outsider, lead = episode["outsider"], episode["lead"]
    assert api.get(f"/api/instances/{episode['id']}", outsider).status_code == 404
    sent = api.post("/api/messages", outsider, {"name": "report", "correlation_key": "enc-1", "data": {"x": 1}})
    assert sent.status_code == 200
    assert sent.json()["outcome"] == "buffered" and sent.json()["instance_ids"] == []
    # The episode moves on through its own team's work, and the outsider's message still does not reach it.
    done = api.post(f"/api/tasks/{episode['task']}/complete", episode["insider"], {"data": {}})
    assert done.status_code == 200
    instance = api.get(f"/api/instances/{episode['id']}", lead).json()
    assert [w["message_name"] for w in instance["waiting"]] == ["report"] and "x" not in instance["data"]
    assert _received(api, lead, episode["id"]) == []


def test_a_coordinator_who_may_see_the_instance_delivers_to_it(api: ApiClient, episode: dict[str, str]) -> None:
    sent = api.post("/api/messages", episode["insider"], {"name": "report", "correlation_key": "enc-1"}).json()
    assert (sent["outcome"], sent["instance_ids"]) == ("delivered", [episode["id"]])
    assert _received(api, episode["lead"], episode["id"]) == [episode["insider"]]


def test_a_repeated_message_id_names_the_instance_only_to_a_sender_who_may_see_it(
        api: ApiClient, episode: dict[str, str]) -> None:
    body = {"name": "report", "correlation_key": "enc-1", "message_id": "sched-1"}
    assert api.post("/api/messages", episode["insider"], body).json()["instance_ids"] == [episode["id"]]
    again = api.post("/api/messages", episode["insider"], body).json()
    assert (again["outcome"], again["instance_ids"]) == ("duplicate", [episode["id"]])
    replayed = api.post("/api/messages", episode["outsider"], body).json()
    assert (replayed["outcome"], replayed["instance_ids"]) == ("duplicate", [])



def test_a_message_id_reused_for_another_message_tells_another_team_nothing_of_the_first(
        api: ApiClient, episode: dict[str, str]) -> None:
    first = {"name": "report", "correlation_key": "enc-1", "message_id": "sched-2"}
    assert api.post("/api/messages", episode["insider"], first).json()["outcome"] == "delivered"
    other = {"name": "report", "correlation_key": "enc-9", "message_id": "sched-2"}
    refused = api.post("/api/messages", episode["outsider"], other)
    assert refused.status_code == 409 and "already used" in refused.json()["message"]
    assert "enc-1" not in refused.text
    told = api.post("/api/messages", episode["insider"], other)  # the team that may read where it went
    assert told.status_code == 409 and "'report' for 'enc-1'" in told.json()["message"]


def test_an_integration_account_reaches_every_instance(api: ApiClient, episode: dict[str, str]) -> None:
    scheduling = api.user("integration")
    sent = api.post("/api/messages", scheduling, {"name": "report", "correlation_key": "enc-1"}).json()
    assert (sent["outcome"], sent["instance_ids"]) == ("delivered", [episode["id"]])


def test_a_buffered_integration_message_is_delivered_when_the_instance_gets_there(api: ApiClient) -> None:
    lead, scheduling = api.user("clinical_lead"), api.user("integration")
    api.deploy(lead, ("ref.bpmn", d.task_then_message("ref", "report")))
    started = api.start(lead, "ref", business_key="enc-2").json()
    assert api.post("/api/messages", scheduling, {"name": "report", "correlation_key": "enc-2"}).json()[
        "outcome"] == "buffered"
    done = api.post(f"/api/tasks/{started['open_tasks'][0]['id']}/complete", lead, {"data": {}}).json()
    assert [t["name"] for t in done["open_tasks"]] == ["Close"]


def test_an_integration_account_starts_pathways(api: ApiClient) -> None:
    lead, adt = api.user("clinical_lead"), api.user("integration")
    api.deploy(lead, ("ed.bpmn", d.message_start("ed", "ed_discharge")), ("ref.bpmn", d.task_then_message("ref", "x")))
    started = api.start(adt, "ref", business_key="enc-3")
    assert started.status_code == 201 and started.json()["business_key"] == "enc-3"
    by_message = api.post("/api/messages", adt, {"name": "ed_discharge", "correlation_key": "enc-4"}).json()
    assert by_message["outcome"] == "started"


# Routes an integration account may call, and routes anyone may call without a token.
INTEGRATION_MAY = {("POST", "/api/pathways/{key}/instances"), ("POST", "/api/messages"),
                   # the EHR's master patient index merges and unmerges patients (PATIENT_RULES)
                   ("POST", "/api/patients/{patient_id}/merge"), ("POST", "/api/patients/{patient_id}/unmerge"),
                   # external workers (EXTERNAL_TASK_RULES; Camunda's /engine-rest contract is not in the document)
                   ("POST", "/api/external-tasks/fetch-and-lock"), ("GET", "/api/external-tasks"),
                   *(("POST", f"/api/external-tasks/{{task_id}}/{action}")
                     for action in ("complete", "failure", "bpmn-error", "extend-lock", "unlock")),
                   # a community organization's system reads and updates the referrals it owns (REFERRAL_RULES)
                   ("GET", "/api/referrals"), ("GET", "/api/referrals/{referral_id}"),
                   ("POST", "/api/referrals/{referral_id}/status")}
PUBLIC = {"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


def _routes(api: ApiClient) -> list[tuple[str, str]]:
    paths = api.client.get("/openapi.json").json()["paths"]
    return [(method.upper(), path) for path, operations in paths.items() if path not in PUBLIC
            for method in operations]


def test_an_integration_account_may_call_nothing_but_start_message_merge_external_tasks_and_referrals(
        api: ApiClient) -> None:
    """Every route of the API, as an integration account: 403 naming the role, except those it may call
    (which then answer as they do for anyone: here 404 for a pathway or referral that does not exist, 422
    for no body)."""
    adt = api.user("integration")
    answers = {}
    for method, path in _routes(api):
        url = re.sub(r"\{[^}]+\}", "1", path)
        response = api.client.request(method, url, headers=api.headers(adt), json={})
        answers[(method, path)] = response.status_code
        if response.status_code == 403:
            assert "integration account" in response.json()["message"], (method, path)
    allowed = {route: status for route, status in answers.items() if status != 403}
    assert set(allowed) == INTEGRATION_MAY, allowed
    assert len(answers) > 30  # the whole API was walked


def test_user_add_with_the_integration_role(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    monkeypatch.setenv("CAREPATH_DATABASE_URL", url)
    assert main(["user", "add", "scheduling", "--role", "integration"]) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    principal = authenticate(CarePath(Database(url), ManualClock()), token)
    assert (principal.name, principal.role.value) == ("scheduling", "integration")
