"""Moving running episodes to a new version of their pathway: POST /api/pathways/{key}/migrations.

Every step goes through a save/restore round trip (no workflow kept in memory between requests)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from carepath.engine.caches import LRUCache
from carepath.engine.clock import ManualClock
from carepath.engine.usecases.timers import fire_due_timers
from tests.support import diagrams as d
from tests.support.api import ApiClient
from tests.support.diagrams import boundary_timers, script_then_task
from tests.support.migration_pathways import KEY, version_1, version_2, without_call

SHIPPED = Path(__file__).resolve().parents[1] / "bpmn"
SHIPPED_KEY = "post-ed-follow-up"


@pytest.fixture
def moves(api: ApiClient) -> ApiClient:
    api.engine.workflows = LRUCache(0)  # every request restores the stored state
    return api


def _deploy(api: ApiClient, lead: str, xml: str) -> None:
    assert api.deploy(lead, (f"{KEY}.bpmn", xml)).status_code == 201


def _migrate(api: ApiClient, user: str, *, dry_run: bool, to: int = 2, **body: Any) -> Any:
    return api.post(f"/api/pathways/{KEY}/migrations", user,
                    {"from_version": 1, "to_version": to, "dry_run": dry_run, **body})


def _instance(api: ApiClient, user: str, instance_id: str) -> dict[str, Any]:
    return api.get(f"/api/instances/{instance_id}", user).json()


def _task_row(api: ApiClient, user: str, task_id: str) -> dict[str, Any]:
    return api.get(f"/api/tasks/{task_id}", user).json()


def _at_call_with_work_in_progress(api: ApiClient, lead: str) -> tuple[str, str, str]:
    """An episode waiting on Call patient, claimed by a coordinator with a draft and a due date set."""
    worker = api.user("coordinator")
    supervisor = api.user("supervisor")
    started = api.start(lead, KEY).json()
    task_id = started["open_tasks"][0]["id"]
    assert api.post(f"/api/tasks/{task_id}/claim", worker).status_code == 200
    assert api.client.put(f"/api/tasks/{task_id}/draft", headers=api.headers(worker),
                          json={"data": {"notes": "left voicemail"}}).status_code == 200
    due = api.post(f"/api/tasks/{task_id}/due-date", supervisor,
                   {"due_date": "2030-01-02T17:00:00+00:00", "reason": "patient away"})
    assert due.status_code == 200, due.text
    return started["id"], task_id, worker


def test_an_episode_at_a_user_task_moves_and_keeps_its_assignee_claim_draft_and_due_date(
        moves: ApiClient, clock: ManualClock) -> None:
    lead = moves.user("clinical_lead")
    _deploy(moves, lead, version_1())
    instance_id, task_id, worker = _at_call_with_work_in_progress(moves, lead)
    _deploy(moves, lead, version_2())
    before = _task_row(moves, worker, task_id)

    plan = _migrate(moves, lead, dry_run=True).json()
    [episode] = plan["episodes"]
    assert episode["outcome"] == "can_move"
    assert [(s["element_id"], s["to_element_id"]) for s in episode["plan"]["steps"]] == [("call", "call")]
    assert episode["plan"]["added"] == ["survey"]

    moved = _migrate(moves, lead, dry_run=False).json()
    assert [e["outcome"] for e in moved["episodes"]] == ["moved"]
    assert _instance(moves, lead, instance_id)["version"] == 2
    after = _task_row(moves, worker, task_id)
    for field in ("assignee", "state", "due_date", "draft", "element_id"):
        assert after[field] == before[field], field
    assert (after["assignee"], after["state"], after["draft"]) == (worker, "in-progress", {"notes": "left voicemail"})
    assert after["due_date"].startswith("2030-01-02T17:00")

    # It continues on version 2: the Survey it did not have comes after Review.
    done = moves.post(f"/api/tasks/{task_id}/complete", worker, {"data": {"notes": "booked"}})
    assert done.status_code == 200, done.text
    clock.advance(days=7, seconds=1)
    assert fire_due_timers(moves.engine) == 1
    review = _instance(moves, lead, instance_id)["open_tasks"][0]
    moves.post(f"/api/tasks/{review['id']}/complete", lead, {"data": {}})
    assert [t["name"] for t in _instance(moves, lead, instance_id)["open_tasks"]] == ["Survey"]


def test_a_waiting_timer_keeps_its_due_time_and_fires_once_at_it(moves: ApiClient, clock: ManualClock) -> None:
    lead = moves.user("clinical_lead")
    _deploy(moves, lead, version_1())
    started = moves.start(lead, KEY).json()
    moves.post(f"/api/tasks/{started['open_tasks'][0]['id']}/complete", lead, {"data": {}})
    [due] = [w["due_at"] for w in _instance(moves, lead, started["id"])["waiting"] if w["type"] == "timer"]
    _deploy(moves, lead, version_2())
    clock.advance(days=3)  # the episode has waited three of its seven days

    assert [e["outcome"] for e in _migrate(moves, lead, dry_run=False).json()["episodes"]] == ["moved"]
    waiting = _instance(moves, lead, started["id"])["waiting"]
    assert [w["due_at"] for w in waiting if w["type"] == "timer"] == [due]

    clock.advance(days=4, seconds=-1)  # just before the original due time
    assert fire_due_timers(moves.engine) == 0
    clock.advance(seconds=2)  # just after it
    assert fire_due_timers(moves.engine) == 1
    assert [t["name"] for t in _instance(moves, lead, started["id"])["open_tasks"]] == ["Review"]
    clock.advance(days=7)
    assert fire_due_timers(moves.engine) == 0
    history = moves.get(f"/api/instances/{started['id']}/history", lead).json()["items"]
    assert [e["type"] for e in history].count("timer_fired") == 1


def test_an_episode_whose_current_step_was_removed_cannot_move_and_is_unchanged(moves: ApiClient) -> None:
    lead = moves.user("clinical_lead")
    _deploy(moves, lead, version_1())
    started = moves.start(lead, KEY).json()
    _deploy(moves, lead, without_call())
    before = _instance(moves, lead, started["id"])

    for dry_run, outcome in ((True, "cannot_move"), (False, "not_moved")):
        [episode] = _migrate(moves, lead, dry_run=dry_run).json()["episodes"]
        assert episode["outcome"] == outcome
        assert "its current step 'call' (Call patient) no longer exists" in episode["reasons"][0]
    assert _instance(moves, lead, started["id"]) == before
    history = moves.get(f"/api/instances/{started['id']}/history", lead).json()["items"]
    assert "instance_migrated" not in [e["type"] for e in history]


def test_a_dry_run_changes_nothing_and_pages_through_the_episodes(moves: ApiClient) -> None:
    lead = moves.user("clinical_lead")
    _deploy(moves, lead, version_1())
    ids = sorted(moves.start(lead, KEY).json()["id"] for _ in range(3))
    _deploy(moves, lead, version_2())
    before = [_instance(moves, lead, i) for i in ids]

    first = _migrate(moves, lead, dry_run=True, limit=2).json()
    second = _migrate(moves, lead, dry_run=True, limit=2, after=first["next_after"]).json()
    assert [e["instance_id"] for e in first["episodes"] + second["episodes"]] == ids
    assert second["next_after"] is None
    assert [_instance(moves, lead, i) for i in ids] == before
    too_many = _migrate(moves, lead, dry_run=True, limit=10_000)
    assert too_many.status_code == 422


def test_history_records_the_move_from_and_to_versions(moves: ApiClient) -> None:
    lead = moves.user("clinical_lead")
    _deploy(moves, lead, version_1())
    started = moves.start(lead, KEY).json()
    _deploy(moves, lead, version_2())
    _migrate(moves, lead, dry_run=False, instance_ids=[started["id"]])
    history = moves.get(f"/api/instances/{started['id']}/history", lead).json()["items"]
    [moved] = [e for e in history if e["type"] == "instance_migrated"]
    assert (moved["data"]["old"], moved["data"]["new"], moved["actor"]) == (1, 2, lead)
    assert moved["data"]["added"] == ["survey"]


def test_who_may_move_episodes(moves: ApiClient) -> None:
    lead = moves.user("clinical_lead")
    _deploy(moves, lead, version_1())
    moves.start(lead, KEY)
    _deploy(moves, lead, version_2())
    for role, status in (("coordinator", 403), ("supervisor", 403), ("auditor", 403), ("admin", 200),
                         ("clinical_lead", 200)):
        assert _migrate(moves, moves.user(role), dry_run=True).status_code == status, role
    assert _migrate(moves, moves.user("coordinator"), dry_run=False).status_code == 403
    assert _migrate(moves, lead, dry_run=True, to=9).status_code == 404


def test_a_completion_at_the_same_time_as_the_move_is_not_lost(moves: ApiClient) -> None:
    lead = moves.user("clinical_lead")
    _deploy(moves, lead, version_1())
    started = moves.start(lead, KEY).json()
    task_id = started["open_tasks"][0]["id"]
    _deploy(moves, lead, version_2())
    barrier = threading.Barrier(2)
    answers: dict[str, Any] = {}

    def complete() -> None:
        barrier.wait()
        answers["complete"] = moves.post(f"/api/tasks/{task_id}/complete", lead, {"data": {"reached": True}})

    def move() -> None:
        barrier.wait()
        answers["move"] = _migrate(moves, lead, dry_run=False)

    threads = [threading.Thread(target=complete), threading.Thread(target=move)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers["complete"].status_code == 200, answers["complete"].text
    assert [e["outcome"] for e in answers["move"].json()["episodes"]] == ["moved"]
    instance = _instance(moves, lead, started["id"])
    assert instance["version"] == 2
    assert instance["data"]["reached"] is True
    assert [w["element_id"] for w in instance["waiting"]] == ["wait"]
    assert _task_row(moves, lead, task_id)["state"] == "completed"


def test_boundary_timers_of_an_open_task_keep_their_due_times_and_a_changed_one_is_said(
        moves: ApiClient, clock: ManualClock) -> None:
    lead = moves.user("clinical_lead")
    assert moves.deploy(lead, ("t.bpmn", boundary_timers("t"))).status_code == 201
    started = moves.start(lead, "t").json()
    dues = sorted((w["element_id"], w["due_at"]) for w in started["waiting"])
    assert moves.deploy(lead, ("t.bpmn", boundary_timers("t", escalation="P5D"))).status_code == 201
    clock.advance(hours=12)

    answer = moves.post("/api/pathways/t/migrations", lead, {"from_version": 1, "to_version": 2, "dry_run": False})
    [episode] = answer.json()["episodes"]
    assert episode["outcome"] == "moved"
    assert any("timer 'escalate'" in note and "keeps the due time" in note for note in episode["plan"]["not_kept"])
    instance = _instance(moves, lead, started["id"])
    assert sorted((w["element_id"], w["due_at"]) for w in instance["waiting"]) == dues
    assert [t["id"] for t in instance["open_tasks"]] == [started["open_tasks"][0]["id"]]
    clock.advance(hours=12, seconds=1)
    assert fire_due_timers(moves.engine) == 1
    open_now = _instance(moves, lead, started["id"])["open_tasks"]
    assert sorted(t["name"] for t in open_now) == ["Call patient", "Reminder"]


def test_the_shipped_post_ed_pathway_moves_with_its_timers_message_wait_and_claimed_call(
        shipped: ApiClient, clock: ManualClock) -> None:
    """A renamed Call patient in version 2: the claimed call keeps its row (renamed), the business-day
    reminder and escalation keep their due times, the admission watch keeps waiting."""
    lead = shipped.user("clinical_lead")
    coordinator = shipped.user("coordinator", "care-coordinator")
    started = shipped.start(lead, SHIPPED_KEY, patient_id="pat-1", data={
        "ed_visit_date": "2026-01-08", "diagnosis_category": "mental_illness", "high_risk_chronic_conditions": 0})
    assert started.status_code == 201, started.text
    instance = started.json()
    [call] = instance["open_tasks"]
    assert shipped.post(f"/api/tasks/{call['id']}/claim", coordinator).status_code == 200
    waits = sorted((w["element_id"], w["due_at"]) for w in instance["waiting"])
    source = (SHIPPED / "post-ed-follow-up.bpmn").read_text()
    renamed = source.replace('name="Call patient"', 'name="Call the patient"')
    dmn = (SHIPPED / "ed-visit-classification.dmn").read_bytes()
    deployed = shipped.deploy(lead, ("post-ed-follow-up.bpmn", renamed), ("ed-visit-classification.dmn", dmn))
    assert deployed.status_code == 201, deployed.text
    clock.advance(hours=20)

    answer = shipped.post(f"/api/pathways/{SHIPPED_KEY}/migrations", lead,
                          {"from_version": 1, "to_version": 2, "dry_run": False})
    assert [e["outcome"] for e in answer.json()["episodes"]] == ["moved"], answer.text
    moved = _instance(shipped, lead, instance["id"])
    assert sorted((w["element_id"], w["due_at"]) for w in moved["waiting"]) == waits
    row = _task_row(shipped, coordinator, call["id"])
    assert (row["name"], row["assignee"]) == ("Call the patient", coordinator)


def test_an_episode_in_incident_moves_stays_in_incident_and_a_retry_runs_the_corrected_step(
        moves: ApiClient) -> None:
    lead = moves.user("clinical_lead")
    assert moves.deploy(lead, ("s.bpmn", script_then_task("s", "score = 1 / 0"))).status_code == 201
    started = moves.start(lead, "s").json()
    assert started["status"] == "incident"
    assert moves.deploy(lead, ("s.bpmn", script_then_task("s", "score = 1"))).status_code == 201

    answer = moves.post("/api/pathways/s/migrations", lead, {"from_version": 1, "to_version": 2, "dry_run": False})
    assert [e["outcome"] for e in answer.json()["episodes"]] == ["moved"]
    moved = _instance(moves, lead, started["id"])
    assert (moved["status"], moved["version"]) == ("incident", 2)
    retried = moves.post(f"/api/instances/{started['id']}/retry", lead, {})
    assert retried.status_code == 200, retried.text
    assert [t["name"] for t in retried.json()["open_tasks"]] == ["Review"]


def _subprocess_then(*after: str) -> str:
    """start -> a subprocess with one user task -> the user tasks `after` -> end"""
    inner = (d.node("startEvent", "sub_start") + d.node("userTask", "inside", "Inside")
             + d.node("endEvent", "sub_end") + d.flow("s1", "sub_start", "inside") + d.flow("s2", "inside", "sub_end"))
    chain = ["start", "sub", *after, "end"]
    elements = [d.node("startEvent", "start"), d.node("subProcess", "sub", "Work", body=inner),
                *(d.node("userTask", a, a.title()) for a in after), d.node("endEvent", "end")]
    elements += [d.flow(f"f_{a}_{b}", a, b) for a, b in zip(chain, chain[1:], strict=False)]
    return d.definitions(d.process("sp", *elements))


def test_a_step_the_state_still_predicts_but_the_new_version_lacks_stops_the_move(moves: ApiClient) -> None:
    """Inside a running subprocess, the step after it is already predicted; the move cannot drop it, so the
    episode is refused with the step named (the diff alone would have let it through), dry run included."""
    lead = moves.user("clinical_lead")
    assert moves.deploy(lead, ("sp.bpmn", _subprocess_then("after"))).status_code == 201
    started = moves.start(lead, "sp").json()
    assert moves.deploy(lead, ("sp.bpmn", _subprocess_then())).status_code == 201
    before = _instance(moves, lead, started["id"])
    for dry_run, outcome in ((True, "cannot_move"), (False, "not_moved")):
        answer = moves.post("/api/pathways/sp/migrations", lead, {"from_version": 1, "to_version": 2,
                                                                   "dry_run": dry_run})
        [episode] = answer.json()["episodes"]
        assert episode["outcome"] == outcome
        assert any("'after'" in reason for reason in episode["reasons"]), episode["reasons"]
    assert _instance(moves, lead, started["id"]) == before
