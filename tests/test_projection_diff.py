"""`carepath simulate` and the server read a step's changes with one function (projections.diff_projections),
so they say the same about which timers fired and which were cancelled. They disagreed on a cycle timer's
last repetition: its event still waits with the paths it started, so the server records it fired; the
simulation's own copy of the diff called it cancelled."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from carepath.api.cli import main
from carepath.engine.clock import ManualClock
from carepath.engine.model import InstanceStatus, MessageWait, Snapshot, TimerWait
from carepath.engine.usecases.projections import ProjectionDiff, TimerChange, diff_projections
from carepath.engine.usecases.timers import fire_due_timers
from tests.support import diagrams as d
from tests.support.api import ApiClient

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday


def _reminded_twice(pid: str) -> str:
    """A task with a non-interrupting boundary timer that repeats twice, an hour apart, each time opening a
    reminder."""
    boundary = ('<bpmn:timerEventDefinition><bpmn:timeCycle xsi:type="bpmn:tFormalExpression">R2/PT1H'
                "</bpmn:timeCycle></bpmn:timerEventDefinition>")
    return d.definitions(d.process(
        pid, d.node("startEvent", "start"), d.node("userTask", "work", "Work"),
        d.node("boundaryEvent", "again", "Every hour", body=boundary, attachedToRef="work", cancelActivity="false"),
        d.node("userTask", "remind", "Reminder"), d.node("endEvent", "end"), d.node("endEvent", "reminded"),
        d.flow("f1", "start", "work"), d.flow("f2", "work", "end"), d.flow("f3", "again", "remind"),
        d.flow("f4", "remind", "reminded")))


def _server(api: ApiClient, clock: ManualClock) -> list[tuple[str, str]]:
    lead = api.user("clinical_lead")
    assert api.deploy(lead, ("p.bpmn", _reminded_twice("p"))).status_code == 201
    clock.set(START)
    instance_id = api.start(lead, "p").json()["id"]
    for _ in range(3):
        clock.advance(timedelta(hours=1))
        fire_due_timers(api.engine)
    history = api.get(f"/api/instances/{instance_id}/history", lead, params={"limit": 500}).json()["items"]
    return [(e["type"], e["data"]["element_id"]) for e in history if e["type"] in ("timer_fired", "timer_cancelled")]


def _simulated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> list[tuple[str, str]]:
    diagram = tmp_path / "p.bpmn"
    diagram.write_text(_reminded_twice("p"))
    assert main(["simulate", str(diagram), "--data", "{}", "--start", START.isoformat(), "--advance", "PT3H",
                 "--json"]) == 0
    moments = json.loads(capsys.readouterr().out)["moments"]
    return [(kind, timer["element_id"]) for m in moments for kind, key in (("timer_fired", "timers_fired"),
            ("timer_cancelled", "timers_cancelled")) for timer in m.get(key, [])]


def test_the_simulation_and_the_server_agree_on_what_fired(api: ApiClient, clock: ManualClock, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    server = _server(api, clock)
    assert server == [("timer_fired", "again"), ("timer_fired", "again")]
    monkeypatch.setenv("CAREPATH_DATABASE_URL", f"sqlite:///{tmp_path / 'never.db'}")
    assert _simulated(tmp_path, capsys) == server


# -- the diff itself, without a workflow or a database ----------------------------------------------------

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def _diff(snapshot: Snapshot, pending: dict[str, datetime], ran: frozenset[str] = frozenset()) -> ProjectionDiff:
    return diff_projections(snapshot, open_tasks=["t1"], pending={k: (due, k) for k, due in pending.items()},
                            waits=[("w1", "report", "bk")], business_key="bk", now=NOW,
                            completed=lambda ids: set(ids) & ran)


def test_a_timer_that_came_due_but_whose_activity_ended_first_is_cancelled_not_fired() -> None:
    snapshot = Snapshot(InstanceStatus.RUNNING, {})
    diff = _diff(snapshot, {"due": NOW - timedelta(minutes=1), "later": NOW + timedelta(hours=1)})
    assert diff.timers_changed == [TimerChange("due", False, None), TimerChange("later", False, None)]
    assert diff.tasks_closed == ["t1"] and diff.waits_ended == [("w1", "report", "bk")]


def test_a_timer_the_workflow_ran_fired_and_a_cycle_that_moved_on_fired_and_waits_again() -> None:
    next_time = NOW + timedelta(hours=1)
    snapshot = Snapshot(InstanceStatus.RUNNING, {}, timers=[TimerWait("cycle", "cycle", None, next_time)],
                        messages=[MessageWait("w1", "wait", "report", None)])
    diff = _diff(snapshot, {"ran": NOW, "cycle": NOW}, ran=frozenset({"ran"}))
    assert diff.timers_changed == [TimerChange("cycle", True, next_time), TimerChange("ran", True, None)]
    assert diff.timers_fired == {"cycle", "ran"} and diff.waits_ended == [] and diff.waits_started == []
