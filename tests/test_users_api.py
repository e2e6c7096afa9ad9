"""Users, groups and tokens over the API: admins only; deactivation revokes and releases."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from carepath.engine.clock import ManualClock
from carepath.engine.errors import Conflict
from carepath.engine.identity import SYSTEM
from carepath.engine.usecases.users import deactivate_user
from tests.support import diagrams as d
from tests.support.api import ApiClient


def test_admin_manages_users_and_memberships_apply_to_open_tasks(api: ApiClient) -> None:
    admin = api.user("admin")
    coordinator = api.user("coordinator")
    assert api.get("/api/users", coordinator).status_code == 403
    created = api.post("/api/users", admin, {"name": "kim", "role": "coordinator", "groups": ["pharmacy"]})
    assert created.status_code == 201 and created.json()["user"]["groups"] == ["pharmacy"]
    kim = {"Authorization": f"Bearer {created.json()['token']}"}
    api.deploy(admin, ("fu.bpmn", d.linear_user_tasks("fu", "Call patient", lane="Care Coordinator")))
    api.start(admin, "fu")
    assert api.client.get("/api/tasks", headers=kim).json()["total"] == 0
    moved = api.client.put("/api/users/kim/groups", headers=api.headers(admin), json={"groups": ["care-coordinator"]})
    assert moved.json()["groups"] == ["care-coordinator"]
    assert api.client.get("/api/tasks", headers=kim).json()["total"] == 1  # at once, no re-routing needed
    assert api.get("/api/groups", admin).json()["care-coordinator"] == ["kim"]
    assert api.post("/api/users", admin, {"name": "kim", "role": "coordinator"}).status_code == 409
    assert api.post("/api/users", admin, {"name": "x", "role": "wizard"}).status_code == 422


def test_deactivation_revokes_tokens_and_releases_tasks(api: ApiClient) -> None:
    admin = api.user("admin")
    sam = api.user("coordinator", "care-coordinator", name="sam")
    api.deploy(admin, ("fu.bpmn", d.linear_user_tasks("fu", "Call patient", lane="Care Coordinator")))
    task = api.start(admin, "fu").json()["open_tasks"][0]
    assert api.post(f"/api/tasks/{task['id']}/claim", sam).json()["assignee"] == "sam"
    assert api.post("/api/users/sam/deactivate", admin).json()["active"] is False
    assert api.get("/api/tasks", sam).status_code == 401
    assert api.get(f"/api/tasks/{task['id']}", admin).json()["assignee"] is None


def test_tokens_expire_and_can_be_revoked(api: ApiClient, clock: ManualClock) -> None:
    admin = api.user("admin")
    api.user("coordinator", name="lee")
    issued = api.post("/api/users/lee/tokens", admin, {"expires_in_days": 1}).json()
    headers = {"Authorization": f"Bearer {issued['token']}"}
    assert api.client.get("/api/tasks", headers=headers).status_code == 200
    clock.advance(timedelta(days=1, seconds=1))
    expired = api.client.get("/api/tasks", headers=headers)
    assert expired.status_code == 401 and "expired" in expired.json()["message"]
    listed = api.get("/api/users/lee/tokens", admin).json()
    assert len(listed) == 2
    first = listed[0]["id"]
    assert api.client.delete(f"/api/users/lee/tokens/{first}", headers=api.headers(admin)).status_code == 204
    assert api.get("/api/tasks", "lee").status_code == 401


def test_user_and_group_names_are_checked_at_creation(api: ApiClient) -> None:
    admin = api.user("admin")
    for name in ("team/a", "..", "a b", "a?b", "_x", "x" * 101, "a%2Fb", "a\\b"):
        refused = api.post("/api/users", admin, {"name": name, "role": "coordinator"})
        assert refused.status_code == 422, (name, refused.text)
        assert "letters, digits" in refused.json()["message"] and refused.json()["errors"][0]["field"] == "name"
    for name in ("jane.doe@example.org", "josé", "x" * 100, "7-west_nurse"):
        created = api.post("/api/users", admin, {"name": name, "role": "coordinator"})
        assert created.status_code == 201, (name, created.text)
        assert api.get(f"/api/users/{name}", admin).json()["name"] == name  # can be read (and changed) again
    refused = api.post("/api/users", admin, {"name": "kim", "role": "coordinator", "groups": ["team/a"]})
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "groups"
    moved = api.client.put("/api/users/josé/groups", headers=api.headers(admin), json={"groups": ["a b"]})
    assert moved.status_code == 422 and "group name 'a b' is not allowed" in moved.json()["message"]


def test_an_admin_cannot_deactivate_themself_nor_the_last_admin(api: ApiClient) -> None:
    first = api.user("admin")
    refused = api.post(f"/api/users/{first}/deactivate", first)
    assert refused.status_code == 409 and "yourself" in refused.json()["message"]
    second = api.user("admin")
    assert api.post(f"/api/users/{first}/deactivate", second).status_code == 200
    assert api.get(f"/api/users/{second}", second).json()["active"] is True
    with pytest.raises(Conflict, match="last active admin"):  # `carepath user deactivate` acts as the system
        deactivate_user(api.engine, SYSTEM, second)


def test_the_command_line_refuses_the_same_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from carepath.api.cli import main

    monkeypatch.setenv("CAREPATH_DATABASE_URL", f"sqlite:///{tmp_path / 'names.db'}")
    assert main(["user", "add", "team/a", "--role", "coordinator"]) == 1
    assert "letters, digits" in capsys.readouterr().err
    assert main(["user", "add", "kim", "--role", "coordinator", "--group", "ward 7"]) == 1


def test_deactivation_returns_delegated_tasks_to_their_owner_and_records_each_release(api: ApiClient) -> None:
    admin = api.user("admin")
    for name in ("dana", "sam", "kim"):
        api.user("coordinator", "care-coordinator", name=name)
    api.deploy(admin, ("fu.bpmn", d.linear_user_tasks("fu", "Call patient", lane="Care Coordinator")))
    lent = api.start(admin, "fu", business_key="lent").json()  # dana delegates to sam
    lent_task = lent["open_tasks"][0]["id"]
    api.post(f"/api/tasks/{lent_task}/claim", "dana")
    api.post(f"/api/tasks/{lent_task}/delegate", "dana", {"user": "sam"})
    given = api.start(admin, "fu", business_key="given").json()  # sam delegates to kim
    given_task = given["open_tasks"][0]["id"]
    api.post(f"/api/tasks/{given_task}/claim", "sam")
    api.post(f"/api/tasks/{given_task}/delegate", "sam", {"user": "kim"})
    assert api.post("/api/users/sam/deactivate", admin).status_code == 200
    back = api.get(f"/api/tasks/{lent_task}", admin).json()
    assert (back["assignee"], back["owner"]) == ("dana", None)
    kept = api.get(f"/api/tasks/{given_task}", admin).json()
    assert (kept["assignee"], kept["owner"]) == ("kim", None)  # a resolve would hand it to nobody active
    released = [(e["task_id"], e["data"]["field"], e["data"]["old"], e["data"]["new"])
                for instance in (lent, given)
                for e in api.get(f"/api/instances/{instance['id']}/history", admin).json()["items"]
                if e["type"] == "task_released"]
    assert released == [(lent_task, "owner", "dana", None), (lent_task, "assignee", "sam", "dana"),
                        (given_task, "owner", "sam", None)]
    assert api.post(f"/api/tasks/{given_task}/resolve", "kim").status_code == 409  # nothing to return to


def test_a_task_is_handed_only_to_a_user_who_may_work_it(api: ApiClient) -> None:
    """Assigning or delegating to an auditor or an integration account left the task stuck: refused."""
    api.user("supervisor", "care-coordinator", name="boss")
    api.user("coordinator", "care-coordinator", name="dana")
    api.user("auditor", name="audrey")
    api.user("integration", name="scheduler-feed")
    lead = api.user("clinical_lead")
    api.deploy(lead, ("fu.bpmn", d.linear_user_tasks("fu", "Call patient", lane="Care Coordinator")))
    task = api.start(lead, "fu").json()["open_tasks"][0]["id"]
    for target in ("audrey", "scheduler-feed"):
        refused = api.post(f"/api/tasks/{task}/assign", "boss", {"user": target})
        assert refused.status_code == 422 and "cannot work tasks" in refused.json()["message"], target
    api.post(f"/api/tasks/{task}/claim", "dana")
    refused = api.post(f"/api/tasks/{task}/delegate", "dana", {"user": "audrey"})
    assert refused.status_code == 422 and "auditor" in refused.json()["message"]
    assert api.post(f"/api/tasks/{task}/delegate", "dana", {"user": "boss"}).status_code == 200
