"""Every task action x every role x whose task it is: the exact status code.

A task that is not offered to the user (a foreign group's) answers 404, the same as a task that
does not exist, so a refusal never tells whether another patient's task exists."""

from __future__ import annotations

import pytest
from httpx import Response

from carepath.engine.rules import NOT_OFFERED, TASK_RULES
from tests.support import diagrams as d
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
    "other_boss": ("supervisor", ("social-work",)),
}


def _row(admin: int, auditor: int, lead: int, coord: int, peer: int, outsider: int, boss: int,
         other_boss: int = 404) -> dict[str, int]:
    return dict(zip(USERS, (admin, auditor, lead, coord, peer, outsider, boss, other_boss), strict=True))


# Situations of the task before the action: unclaimed; claimed by "peer"; claimed by "peer" and put on
# hold; claimed by "peer" and delegated to "coord". Expected status per (action, situation, user). Nobody
# outside the task's audience learns anything about it: 404 for every action, as for a read.
EXPECTED: dict[tuple[str, str], dict[str, int]] = {
    ("get", "unclaimed"): _row(200, 200, 404, 200, 200, 404, 200),
    ("claim", "unclaimed"): _row(200, 403, 404, 200, 200, 404, 200),
    ("claim", "by_peer"): _row(200, 403, 404, 409, 200, 404, 409),
    ("unclaim", "unclaimed"): _row(409, 403, 404, 409, 409, 404, 409),
    ("unclaim", "by_peer"): _row(200, 403, 404, 403, 200, 404, 200),
    ("complete", "unclaimed"): _row(200, 403, 404, 200, 200, 404, 200),
    ("complete", "by_peer"): _row(200, 403, 404, 409, 200, 404, 409),
    ("assign", "unclaimed"): _row(200, 403, 403, 403, 403, 403, 200),
    ("hold", "unclaimed"): _row(200, 403, 404, 200, 200, 404, 200),
    ("hold", "held"): _row(409, 403, 404, 409, 409, 404, 409),
    ("resume", "held"): _row(200, 403, 404, 200, 200, 404, 200),
    ("resume", "unclaimed"): _row(409, 403, 404, 409, 409, 404, 409),
    ("comment", "unclaimed"): _row(201, 403, 404, 201, 201, 404, 201),
    ("priority", "unclaimed"): _row(200, 403, 403, 403, 403, 403, 200),
    ("due_date", "unclaimed"): _row(200, 403, 403, 403, 403, 403, 200),
    ("draft", "unclaimed"): _row(200, 403, 404, 200, 200, 404, 200),
    ("draft", "by_peer"): _row(200, 403, 404, 409, 200, 404, 409),
    ("delegate", "unclaimed"): _row(200, 403, 404, 409, 409, 404, 409),
    ("delegate", "by_peer"): _row(200, 403, 404, 409, 200, 404, 409),
    ("resolve", "by_peer"): _row(409, 403, 404, 409, 409, 404, 409),
    ("resolve", "delegated"): _row(200, 403, 404, 200, 409, 404, 409),
}
CASES = [(action, situation, user, status) for (action, situation), by_user in EXPECTED.items()
         for user, status in by_user.items()]
# The matrix's names of the rule table's task actions (engine/rules.py).
ACTIONS = {"claim": "claim", "unclaim": "unclaim", "complete": "complete", "assign": "assign", "hold": "hold",
           "resume": "resume", "comment": "comment", "priority": "set_priority", "due_date": "set_due_date",
           "draft": "save_draft", "delegate": "delegate", "resolve": "resolve"}
# Calls that succeed without changing anything, which the actions therefore do not offer.
NO_OPS = {("claim", "by_peer", "peer")}


def _call(api: ApiClient, action: str, user: str, task_id: str) -> int:
    url = f"/api/tasks/{task_id}"
    requests = {
        "get": lambda: api.get(url, user),
        "claim": lambda: api.post(f"{url}/claim", user),
        "unclaim": lambda: api.post(f"{url}/unclaim", user),
        "complete": lambda: api.post(f"{url}/complete", user, {"data": {}}),
        "assign": lambda: api.post(f"{url}/assign", user, {"user": "coord"}),
        "hold": lambda: api.post(f"{url}/hold", user, {"reason": "patient travelling"}),
        "resume": lambda: api.post(f"{url}/resume", user, {"reason": "patient back"}),
        "comment": lambda: api.post(f"{url}/comments", user, {"text": "left voicemail"}),
        "priority": lambda: api.post(f"{url}/priority", user, {"priority": 70}),
        "due_date": lambda: api.post(f"{url}/due-date", user, {"due_date": "P2D", "reason": "clinic closed"}),
        "draft": lambda: api.client.put(f"{url}/draft", headers=api.headers(user), json={"data": {}}),
        "delegate": lambda: api.post(f"{url}/delegate", user, {"user": "coord"}),
        "resolve": lambda: api.post(f"{url}/resolve", user),
    }
    return requests[action]().status_code


def _prepare(api: ApiClient, situation: str, task_id: str) -> None:
    url = f"/api/tasks/{task_id}"
    if situation != "unclaimed":
        assert api.post(f"{url}/claim", "peer").status_code == 200
    if situation == "held":
        assert api.post(f"{url}/hold", "peer", {"reason": "patient travelling"}).status_code == 200
    if situation == "delegated":
        assert api.post(f"{url}/delegate", "peer", {"user": "coord"}).status_code == 200


@pytest.mark.parametrize(("action", "situation", "user", "status"), CASES,
                         ids=[f"{a}-{s}-{u}" for a, s, u, _ in CASES])
def test_permission_matrix(api: ApiClient, action: str, situation: str, user: str, status: int) -> None:
    """The status of each call, and the task's `actions` for that user agree with it: an action is
    offered exactly when the call succeeds (and changes something)."""
    for name, (role, groups) in USERS.items():
        api.user(role, *groups, name=name)
    response = api.deploy("admin", ("m.bpmn", camunda_task("matrix", candidateGroups="pharmacy")))
    assert response.status_code in (200, 201), response.text
    task_id = api.start("admin", "matrix").json()["open_tasks"][0]["id"]
    _prepare(api, situation, task_id)
    read = api.get(f"/api/tasks/{task_id}", user)
    offered = read.json()["actions"] if read.status_code == 200 else []
    assert _call(api, action, user, task_id) == status
    if action in ACTIONS:
        succeeded = status < 300 and (action, situation, user) not in NO_OPS
        assert (ACTIONS[action] in offered) == succeeded, offered


def test_the_matrix_covers_every_task_action_of_the_rule_table() -> None:
    offered = {rule.action for rule in TASK_RULES.values() if not rule.by_system and rule.action not in NOT_OFFERED}
    assert set(ACTIONS.values()) == offered


def test_unknown_task_answers_like_a_foreign_one(api: ApiClient) -> None:
    api.user("coordinator", "social-work", name="outsider")
    assert api.get("/api/tasks/00000000-0000-0000-0000-000000000000", "outsider").status_code == 404


def test_task_workers_read_only_the_instances_they_are_involved_in(api: ApiClient) -> None:
    for name, (role, groups) in USERS.items():
        api.user(role, *groups, name=name)
    api.deploy("admin", ("m.bpmn", camunda_task("matrix", candidateGroups="pharmacy")))
    instance = api.start("admin", "matrix", patient_id="pat-9").json()
    url = f"/api/instances/{instance['id']}"
    expected = {"admin": 200, "auditor": 200, "lead": 200, "coord": 200, "peer": 200, "outsider": 404, "boss": 200,
                "other_boss": 404}
    for read in ("", "/history", "/measures"):
        assert {user: api.get(f"{url}{read}", user).status_code for user in USERS} == expected, read
    listed = {user: api.get("/api/instances", user, params={"patient_id": "pat-9"}).json()["total"] for user in USERS}
    assert listed == {user: 1 if status == 200 else 0 for user, status in expected.items()}
    offered = {user: api.get(url, user).json()["actions"] for user, status in expected.items() if status == 200}
    assert offered == {"admin": ["cancel"], "auditor": [], "lead": ["cancel"], "coord": ["cancel"],
                       "peer": ["cancel"], "boss": ["cancel"]}
    assert api.post(f"{url}/cancel", "outsider", {"reason": "x"}).status_code == 404
    assert api.post(f"{url}/cancel", "auditor", {"reason": "x"}).status_code == 403
    cancelled = api.post(f"{url}/cancel", "coord", {"reason": "duplicate referral"})
    assert cancelled.status_code == 200 and cancelled.json()["actions"] == []
    assert api.post(f"{url}/cancel", "coord", {"reason": "again"}).status_code == 409


def test_an_incidents_retry_is_offered_exactly_to_those_whose_retry_succeeds(api: ApiClient) -> None:
    for name, (role, groups) in USERS.items():
        api.user(role, *groups, name=name)
    assert api.deploy("admin", ("b.bpmn", d.script_then_task("broken", "x = 1 / 0"))).status_code == 201
    started = api.start("coord", "broken").json()
    assert started["status"] == "incident"
    url = f"/api/instances/{started['id']}"
    statuses, offered = {}, {}
    for user in USERS:
        read = api.get(url, user)
        offered[user] = "retry" in (read.json()["actions"] if read.status_code == 200 else [])
        statuses[user] = api.post(f"{url}/retry", user).status_code  # the script fails again: still an incident
    assert statuses == _row(200, 403, 200, 200, 404, 404, 404)
    assert offered == {user: status == 200 for user, status in statuses.items()}


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
    # break-glass access: the rule row `break_glass` (engine/rules.py GRANT_RULES)
    "break_glass": {"admin": 201, "auditor": 403, "lead": 403, "coord": 201, "peer": 201, "outsider": 201,
                    "boss": 201},
    "audit_break_glass": {"admin": 200, "auditor": 200, "lead": 403, "coord": 403, "peer": 403, "outsider": 403,
                          "boss": 403},
    # the row `end`: the holder (coord) their own grant, auditors and admins anyone's; to others it is not found
    "end_break_glass": {"admin": 200, "auditor": 200, "lead": 403, "coord": 200, "peer": 404, "outsider": 404,
                        "boss": 404},
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
        "break_glass": lambda: api.post("/api/break-glass", user, {"patient_id": "pat-9",
                                                                   "reason": "emergency, team unreachable"}),
        "audit_break_glass": lambda: api.get("/api/audit/break-glass", user),
        "end_break_glass": lambda: api.post(f"/api/break-glass/{_coords_grant(api)}/end", user),
    }
    return requests[action]().status_code


def _coords_grant(api: ApiClient) -> int:
    granted = api.post("/api/break-glass", "coord", {"patient_id": "pat-9", "reason": "emergency, team unreachable"})
    assert granted.status_code == 201
    return int(granted.json()["id"])


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
