"""Every task action x every role x whose task it is: the exact status code.

A task that is not offered to the user (a foreign group's) answers 404, the same as a task that
does not exist, so a refusal never tells whether another patient's task exists."""

from __future__ import annotations

import pytest
from httpx import Response

from tests.support.api import ApiClient
from tests.support.diagrams import task_then_message
from tests.test_task_assignment import camunda_task

# Users: (role, groups). "mine" tasks are offered to group "pharmacy".
USERS = {
    "admin": ("admin", ()),
    "auditor": ("auditor", ()),
    "lead": ("clinical_lead", ()),
    "coord": ("coordinator", ("pharmacy",)),
    "peer": ("coordinator", ("pharmacy",)),
    "outsider": ("coordinator", ("social-work",)),
    "boss": ("supervisor", ("pharmacy",)),
}

# Situations of the task before the action: unclaimed, claimed by "coord", claimed by "peer".
# Expected status per (action, situation, user).
EXPECTED: dict[tuple[str, str], dict[str, int]] = {
    ("get", "unclaimed"): {"admin": 200, "auditor": 200, "lead": 404, "coord": 200, "peer": 200,
                           "outsider": 404, "boss": 200},
    ("claim", "unclaimed"): {"admin": 200, "auditor": 403, "lead": 404, "coord": 200, "peer": 200,
                             "outsider": 404, "boss": 200},
    ("claim", "by_peer"): {"admin": 200, "auditor": 403, "lead": 404, "coord": 409, "peer": 200,
                           "outsider": 404, "boss": 409},
    ("unclaim", "by_peer"): {"admin": 200, "auditor": 403, "lead": 404, "coord": 403, "peer": 200,
                             "outsider": 404, "boss": 200},
    ("complete", "unclaimed"): {"admin": 200, "auditor": 403, "lead": 404, "coord": 200, "peer": 200,
                                "outsider": 404, "boss": 200},
    ("complete", "by_peer"): {"admin": 200, "auditor": 403, "lead": 404, "coord": 409, "peer": 200,
                              "outsider": 404, "boss": 409},
    ("assign", "unclaimed"): {"admin": 200, "auditor": 403, "lead": 403, "coord": 403, "peer": 403,
                              "outsider": 403, "boss": 200},
    ("hold", "unclaimed"): {"admin": 200, "auditor": 403, "lead": 404, "coord": 200, "peer": 200,
                            "outsider": 404, "boss": 200},
    ("comment", "unclaimed"): {"admin": 201, "auditor": 403, "lead": 404, "coord": 201, "peer": 201,
                               "outsider": 404, "boss": 201},
    ("priority", "unclaimed"): {"admin": 200, "auditor": 403, "lead": 403, "coord": 403, "peer": 403,
                                "outsider": 403, "boss": 200},
}
CASES = [(action, situation, user, status) for (action, situation), by_user in EXPECTED.items()
         for user, status in by_user.items()]


def _call(api: ApiClient, action: str, user: str, task_id: str) -> int:
    url = f"/api/tasks/{task_id}"
    requests = {
        "get": lambda: api.get(url, user),
        "claim": lambda: api.post(f"{url}/claim", user),
        "unclaim": lambda: api.post(f"{url}/unclaim", user),
        "complete": lambda: api.post(f"{url}/complete", user, {"data": {}}),
        "assign": lambda: api.post(f"{url}/assign", user, {"user": "coord"}),
        "hold": lambda: api.post(f"{url}/hold", user, {"reason": "patient travelling"}),
        "comment": lambda: api.post(f"{url}/comments", user, {"text": "left voicemail"}),
        "priority": lambda: api.post(f"{url}/priority", user, {"priority": 70}),
    }
    return requests[action]().status_code


@pytest.mark.parametrize(("action", "situation", "user", "status"), CASES,
                         ids=[f"{a}-{s}-{u}" for a, s, u, _ in CASES])
def test_permission_matrix(api: ApiClient, action: str, situation: str, user: str, status: int) -> None:
    for name, (role, groups) in USERS.items():
        api.user(role, *groups, name=name)
    response = api.deploy("admin", ("m.bpmn", camunda_task("matrix", candidateGroups="pharmacy")))
    assert response.status_code in (200, 201), response.text
    task_id = api.start("admin", "matrix").json()["open_tasks"][0]["id"]
    if situation == "by_peer":
        assert api.post(f"/api/tasks/{task_id}/claim", "peer").status_code == 200
    assert _call(api, action, user, task_id) == status


def test_unknown_task_answers_like_a_foreign_one(api: ApiClient) -> None:
    api.user("coordinator", "social-work", name="outsider")
    assert api.get("/api/tasks/00000000-0000-0000-0000-000000000000", "outsider").status_code == 404


def test_task_workers_read_only_the_instances_they_are_involved_in(api: ApiClient) -> None:
    for name, (role, groups) in USERS.items():
        api.user(role, *groups, name=name)
    api.deploy("admin", ("m.bpmn", camunda_task("matrix", candidateGroups="pharmacy")))
    instance = api.start("admin", "matrix", patient_id="pat-9").json()
    url = f"/api/instances/{instance['id']}"
    expected = {"admin": 200, "auditor": 200, "lead": 200, "coord": 200, "peer": 200, "outsider": 404, "boss": 200}
    for read in ("", "/history", "/measures"):
        assert {user: api.get(f"{url}{read}", user).status_code for user in USERS} == expected, read
    listed = {user: api.get("/api/instances", user, params={"patient_id": "pat-9"}).json()["total"] for user in USERS}
    assert listed == {user: 1 if status == 200 else 0 for user, status in expected.items()}
    assert api.post(f"{url}/cancel", "outsider", {"reason": "x"}).status_code == 404
    assert api.post(f"{url}/cancel", "coord", {"reason": "duplicate referral"}).status_code == 200


# Endpoints guarded by role alone: expected status per user.
ROLE_EXPECTED: dict[str, dict[str, int]] = {
    "deploy": {"admin": 201, "auditor": 403, "lead": 201, "coord": 403, "peer": 403, "outsider": 403, "boss": 403},
    "retire": {"admin": 204, "auditor": 403, "lead": 204, "coord": 403, "peer": 403, "outsider": 403, "boss": 403},
    "start": {"admin": 201, "auditor": 403, "lead": 201, "coord": 201, "peer": 201, "outsider": 201, "boss": 201},
    "message": {"admin": 200, "auditor": 403, "lead": 200, "coord": 200, "peer": 200, "outsider": 200, "boss": 200},
    "list_pathways": dict.fromkeys(USERS, 200),
    "users": {"admin": 200, "auditor": 403, "lead": 403, "coord": 403, "peer": 403, "outsider": 403, "boss": 403},
    "create_user": {"admin": 201, "auditor": 403, "lead": 403, "coord": 403, "peer": 403, "outsider": 403,
                    "boss": 403},
    "groups": {"admin": 200, "auditor": 403, "lead": 403, "coord": 403, "peer": 403, "outsider": 403, "boss": 403},
    "audit_events": {"admin": 200, "auditor": 200, "lead": 403, "coord": 403, "peer": 403, "outsider": 403,
                     "boss": 403},
    "audit_export": {"admin": 200, "auditor": 200, "lead": 403, "coord": 403, "peer": 403, "outsider": 403,
                     "boss": 403},
}
ROLE_CASES = [(action, user, status) for action, by_user in ROLE_EXPECTED.items() for user, status in by_user.items()]


def _role_call(api: ApiClient, action: str, user: str) -> int:
    unique = f"{action}-{user}"
    requests = {
        "deploy": lambda: api.deploy(user, (f"{unique}.bpmn", camunda_task(unique, candidateGroups="pharmacy"))),
        "retire": lambda: api.post("/api/pathways/matrix/versions/1/retire", user),
        "start": lambda: api.start(user, "matrix"),
        "message": lambda: _send_report(api, user, unique),
        "list_pathways": lambda: api.get("/api/pathways", user),
        "users": lambda: api.get("/api/users", user),
        "create_user": lambda: api.post("/api/users", user, {"name": unique, "role": "auditor"}),
        "groups": lambda: api.get("/api/groups", user),
        "audit_events": lambda: api.get("/api/audit/events", user, params={"patient_id": "pat-9"}),
        "audit_export": lambda: api.get("/api/audit/export", user, params={"format": "fhir"}),
    }
    return requests[action]().status_code


def _send_report(api: ApiClient, user: str, key: str) -> Response:
    """A message some deployed pathway catches (one nothing catches is refused)."""
    assert api.deploy("admin", ("report.bpmn", task_then_message("report", "report"))).status_code == 201
    return api.post("/api/messages", user, {"name": "report", "correlation_key": key})


@pytest.mark.parametrize(("action", "user", "status"), ROLE_CASES, ids=[f"{a}-{u}" for a, u, _ in ROLE_CASES])
def test_role_matrix(api: ApiClient, action: str, user: str, status: int) -> None:
    for name, (role, groups) in USERS.items():
        api.user(role, *groups, name=name)
    assert api.deploy("admin", ("m.bpmn", camunda_task("matrix", candidateGroups="pharmacy"))).status_code == 201
    assert _role_call(api, action, user) == status
