"""The rule table on its own: pure functions over small facts, no HTTP, no database (milliseconds)."""

from __future__ import annotations

from pathlib import Path

import pytest

from carepath.engine.errors import Conflict, InvalidTransition, NotFound, PermissionDenied
from carepath.engine.identity import Principal, Role
from carepath.engine.model import EVENT_TYPES, GrantState, InstanceStatus, TaskState, UserState
from carepath.engine.rules import (
    GRANT_RULES,
    INSTANCE_RULES,
    SUBJECT_STATES,
    TABLES,
    TASK_RULES,
    USER_RULES,
    GrantFacts,
    InstanceFacts,
    TaskFacts,
    UserFacts,
    allowed_actions,
    check,
    engine_step,
    render_markdown,
)

COORD = Principal("coord", Role.COORDINATOR, frozenset({"pharmacy"}))
PEER = Principal("peer", Role.COORDINATOR, frozenset({"pharmacy"}))
OUTSIDER = Principal("outsider", Role.COORDINATOR, frozenset({"social-work"}))
BOSS = Principal("boss", Role.SUPERVISOR, frozenset({"pharmacy"}))
OTHER_BOSS = Principal("other-boss", Role.SUPERVISOR, frozenset({"social-work"}))
AUDITOR = Principal("auditor", Role.AUDITOR)
ADMIN = Principal("admin", Role.ADMIN)


def task(state: TaskState = TaskState.READY, assignee: str | None = None, owner: str | None = None,
         audience: tuple[str, ...] = ("group:pharmacy",), staffed: frozenset[str] = frozenset({"pharmacy"}),
         draft: bool = False) -> TaskFacts:
    return TaskFacts(id="t-1", name="Call patient", state=state, assignee=assignee, owner=owner,
                     audience=audience, has_draft=draft, staffed=staffed)


def test_what_may_happen_to_an_on_hold_task_and_who_may_do_it() -> None:
    held = task(TaskState.ON_HOLD, assignee="peer")
    assert allowed_actions(held, COORD) == ["resume", "comment"]
    assert allowed_actions(held, BOSS) == ["resume", "comment", "set_priority", "set_due_date"]
    assert allowed_actions(held, AUDITOR) == []
    assert allowed_actions(held, OUTSIDER) == []


def test_a_ready_task_offers_its_group_the_work_and_its_supervisor_the_routing() -> None:
    ready = task()
    assert allowed_actions(ready, COORD) == ["claim", "hold", "save_draft", "complete", "comment"]
    assert allowed_actions(ready, BOSS) == ["claim", "assign", "hold", "save_draft", "complete", "comment",
                                            "set_priority", "set_due_date"]
    mine = task(assignee="coord")
    assert "claim" not in allowed_actions(mine, COORD)  # a no-op: already theirs
    assert {"unclaim", "delegate"} <= set(allowed_actions(mine, COORD))
    assert allowed_actions(mine, PEER) == ["comment"]


def test_once_claimed_a_task_is_its_holders_until_released_or_reassigned() -> None:
    """Was the rule part of an API test (claim, release, assign); the API keeps what only it can show."""
    claimed = task(assignee="coord")
    for action, error in (("claim", Conflict), ("complete", Conflict), ("hold", Conflict),
                          ("save_draft", Conflict), ("unclaim", PermissionDenied), ("delegate", Conflict)):
        with pytest.raises(error):
            check(TASK_RULES[action], claimed, PEER)
    with pytest.raises(PermissionDenied, match="needs one of the roles supervisor, admin"):
        check(TASK_RULES["assign"], claimed, COORD)
    check(TASK_RULES["assign"], claimed, BOSS)
    check(TASK_RULES["unclaim"], claimed, BOSS)  # a supervisor of its group releases it
    check(TASK_RULES["unclaim"], claimed, COORD)
    on_hold = task(TaskState.ON_HOLD, assignee="coord")
    with pytest.raises(InvalidTransition):
        check(TASK_RULES["complete"], on_hold, COORD)
    with pytest.raises(PermissionDenied):
        check(TASK_RULES["set_priority"], on_hold, COORD)
    delegated = task(assignee="peer", owner="coord")
    with pytest.raises(Conflict, match="only they can resolve"):
        check(TASK_RULES["resolve"], delegated, COORD)
    check(TASK_RULES["resolve"], delegated, PEER)


def test_a_task_assigned_by_the_diagram_to_one_person_is_nobody_elses() -> None:
    theirs = task(assignee="dr-lee", audience=("user:dr-lee",))
    assert allowed_actions(theirs, COORD) == []
    assert "hold" in allowed_actions(theirs, Principal("dr-lee", Role.COORDINATOR))


@pytest.mark.parametrize("action", [a for a, rule in TASK_RULES.items() if Role.COORDINATOR in rule.roles])
def test_a_task_the_user_may_not_see_is_not_found_whatever_they_ask(action: str) -> None:
    with pytest.raises(NotFound):
        check(TASK_RULES[action], task(TaskState.COMPLETED, assignee="peer"), OUTSIDER)


def test_another_groups_supervisor_is_answered_not_found_not_forbidden() -> None:
    for action in ("assign", "set_priority", "set_due_date"):
        with pytest.raises(NotFound):
            check(TASK_RULES[action], task(), OTHER_BOSS)


def test_refusals_come_in_order_role_visibility_state_guards() -> None:
    with pytest.raises(PermissionDenied, match="needs one of the roles"):
        check(TASK_RULES["claim"], task(), AUDITOR)
    with pytest.raises(InvalidTransition, match="is on-hold"):
        check(TASK_RULES["claim"], task(TaskState.ON_HOLD, assignee="peer"), COORD)
    with pytest.raises(Conflict, match="claimed by peer"):
        check(TASK_RULES["claim"], task(assignee="peer"), COORD)
    with pytest.raises(PermissionDenied, match="only they, a supervisor"):
        check(TASK_RULES["unclaim"], task(assignee="peer"), COORD)
    with pytest.raises(Conflict, match="only the task's assignee"):
        check(TASK_RULES["delegate"], task(assignee="peer"), COORD)
    with pytest.raises(Conflict, match="only they can resolve"):
        check(TASK_RULES["resolve"], task(assignee="coord", owner="peer"), PEER)


def test_admins_pass_checks_on_people_but_not_on_the_task() -> None:
    check(TASK_RULES["claim"], task(assignee="peer"), ADMIN)
    with pytest.raises(InvalidTransition, match="not delegated"):
        check(TASK_RULES["resolve"], task(assignee="peer"), ADMIN)
    with pytest.raises(InvalidTransition, match="not claimed by anyone"):
        check(TASK_RULES["unclaim"], task(), ADMIN)


def test_supervisors_see_and_route_tasks_nobody_can_pick_up() -> None:
    unrouted = task(audience=("group:night-shift",), staffed=frozenset({"pharmacy"}))
    assert "assign" in allowed_actions(unrouted, OTHER_BOSS)
    assert allowed_actions(unrouted, OUTSIDER) == []
    staffed = task(audience=("group:night-shift",), staffed=frozenset({"night-shift"}))
    assert allowed_actions(staffed, OTHER_BOSS) == []


def test_staffed_groups_are_read_only_for_a_task_offered_to_groups_alone() -> None:
    reads: list[int] = []

    def staffed() -> frozenset[str]:
        reads.append(1)
        return frozenset()

    offered_by_name = TaskFacts("t", "x", TaskState.READY, audience=("user:coord", "group:a"), staffed=staffed)
    allowed_actions(offered_by_name, OTHER_BOSS)
    assert reads == []
    only_groups = TaskFacts("t", "x", TaskState.READY, audience=("group:a",), staffed=staffed)
    allowed_actions(only_groups, OTHER_BOSS)
    assert reads


def test_instances_may_be_cancelled_while_active_and_retried_in_incident() -> None:
    running = InstanceFacts("i-1", InstanceStatus.RUNNING)
    incident = InstanceFacts("i-1", InstanceStatus.INCIDENT)
    assert allowed_actions(running, COORD) == ["cancel"]
    assert allowed_actions(incident, COORD) == ["cancel", "retry"]
    assert allowed_actions(InstanceFacts("i-1", InstanceStatus.COMPLETED), ADMIN) == []
    assert allowed_actions(incident, AUDITOR) == []
    with pytest.raises(NotFound):
        check(INSTANCE_RULES["cancel"], InstanceFacts("i-1", InstanceStatus.RUNNING, readable=False), COORD)


def test_the_engines_rows_are_taken_by_no_user_and_check_the_state() -> None:
    assert allowed_actions(task(), ADMIN).count("engine_cancel") == 0
    with pytest.raises(PermissionDenied):
        check(TASK_RULES["engine_cancel"], task(), ADMIN)
    assert engine_step(TASK_RULES, "engine_cancel", "ready", "task x").to == (TaskState.CANCELLED,)
    with pytest.raises(InvalidTransition):
        engine_step(TASK_RULES, "engine_cancel", "completed", "task x")


def test_every_row_names_states_of_its_subject_and_a_known_event() -> None:
    for subject, table in TABLES.items():
        states = set(SUBJECT_STATES[subject])
        for rule in table.values():
            assert set(rule.from_states) | set(rule.to) <= states, (subject, rule.action)
            assert rule.event is None or rule.event in EVENT_TYPES, (subject, rule.action)
            assert rule.by_system or rule.event, (subject, rule.action)  # a user's change is recorded


def test_the_docs_show_the_table_as_the_code_has_it() -> None:
    """docs/state-machine.md is what `carepath docs rules` renders; regenerate it when the table changes."""
    docs = Path(__file__).parents[1] / "docs" / "state-machine.md"
    assert docs.read_text() == render_markdown()
    for table in TABLES.values():
        for action in table:
            assert f"`{action}`" in docs.read_text()


def test_a_transition_cannot_set_a_state_its_row_does_not_lead_to() -> None:
    """set_task_field checks the new state against the row's to-states (resume leads to ready or in-progress)."""
    from types import SimpleNamespace
    from typing import Any, cast

    from carepath.engine.usecases.transitions import set_task_field

    recorded: list[Any] = []
    uow = cast(Any, SimpleNamespace(record=lambda *a, **k: recorded.append((a, k))))
    row = cast(Any, SimpleNamespace(state="on-hold", name="Call", instance_id="i", id="t"))
    with pytest.raises(InvalidTransition, match="leads to ready or in-progress, not completed"):
        set_task_field(uow, TASK_RULES["resume"], row, "completed", "ana")
    assert row.state == "on-hold" and recorded == []
    set_task_field(uow, TASK_RULES["resume"], row, "ready", "ana", reason="back")
    assert row.state == "ready" and recorded[0][0][0] == "task_resumed"


def test_what_an_admin_may_do_to_a_user_follows_the_user_table() -> None:
    sam = UserFacts("sam", UserState.ACTIVE, Role.COORDINATOR, frozenset({"admin"}))
    assert allowed_actions(sam, ADMIN) == ["set_groups", "set_password", "issue_token", "revoke_token", "deactivate",
                                           "end_session"]
    assert allowed_actions(sam, COORD) == []  # nobody else manages users (their own sessions: see below)
    gone = UserFacts("sam", UserState.DEACTIVATED, Role.COORDINATOR, frozenset({"admin"}))
    assert allowed_actions(gone, ADMIN) == ["set_groups", "revoke_token", "end_session"]
    with pytest.raises(InvalidTransition, match="is deactivated"):
        check(USER_RULES["set_password"], gone, ADMIN)
    feed = UserFacts("feed", UserState.ACTIVE, Role.INTEGRATION, frozenset({"admin"}))
    assert "set_password" not in allowed_actions(feed, ADMIN)
    with pytest.raises(Conflict, match="integration account"):
        check(USER_RULES["set_password"], feed, ADMIN)
    with pytest.raises(PermissionDenied):
        check(USER_RULES["deactivate"], sam, BOSS)


def test_an_admin_cannot_deactivate_themself_nor_the_last_admin() -> None:
    me = UserFacts("admin", UserState.ACTIVE, Role.ADMIN, frozenset({"admin", "root"}))
    with pytest.raises(Conflict, match="yourself"):
        check(USER_RULES["deactivate"], me, ADMIN)
    last = UserFacts("root", UserState.ACTIVE, Role.ADMIN, frozenset({"root"}))
    with pytest.raises(Conflict, match="last active admin"):
        check(USER_RULES["deactivate"], last, ADMIN)
    assert "deactivate" not in allowed_actions(last, ADMIN)


def test_a_session_is_ended_by_its_user_or_an_admin_and_is_not_found_by_others() -> None:
    coords = UserFacts("coord", UserState.ACTIVE, Role.COORDINATOR, session=7)
    check(USER_RULES["end_session"], coords, COORD)
    check(USER_RULES["end_session"], coords, ADMIN)
    with pytest.raises(NotFound, match="no open session 7"):
        check(USER_RULES["end_session"], coords, PEER)


def test_a_grant_is_ended_by_its_holder_an_auditor_or_an_admin_while_it_runs() -> None:
    grant = GrantFacts(3, "coord", GrantState.ACTIVE)
    for who in (COORD, AUDITOR, ADMIN):
        assert allowed_actions(grant, who) == ["end"]
    with pytest.raises(NotFound):
        check(GRANT_RULES["end"], grant, PEER)
    with pytest.raises(PermissionDenied):
        check(GRANT_RULES["end"], grant, Principal("lead", Role.CLINICAL_LEAD))
    with pytest.raises(InvalidTransition, match="expired"):
        check(GRANT_RULES["end"], GrantFacts(3, "coord", GrantState.EXPIRED), COORD)
