"""After every engine step an instance that has not ended has a task open, waits for something (a timer, a
message, a worker) or is in incident: a state with none of these becomes an incident naming the element."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from carepath.api.cli import main
from tests.support import diagrams as d
from tests.support.api import ApiClient


def _deadlock(key: str) -> str:
    """An exclusive choice whose two paths meet at a parallel join: the join waits for the path not taken."""
    return d.definitions(d.process(
        key, d.node("startEvent", "start"), d.node("exclusiveGateway", "choose", default="to_a"),
        d.node("userTask", "a", "A"), d.node("scriptTask", "b", "B", body="<bpmn:script>x = 1</bpmn:script>"),
        d.node("parallelGateway", "join", "Both done"), d.node("endEvent", "end"), d.flow("f0", "start", "choose"),
        d.flow("to_a", "choose", "a"), d.flow("to_b", "choose", "b", "urgent == True"), d.flow("fa", "a", "join"),
        d.flow("fb", "b", "join"), d.flow("fe", "join", "end")))


def test_an_instance_left_with_nothing_to_do_is_an_incident_naming_where_it_stopped(api: ApiClient) -> None:
    lead = api.user("admin")
    assert api.deploy(lead, ("stall.bpmn", _deadlock("stall"))).status_code == 201
    instance = api.start(lead, "stall", data={"urgent": True}).json()  # B runs, then the join waits for A
    assert instance["status"] == "incident"
    assert instance["incident"]["element_id"] == "join"
    assert "Both done" in instance["incident"]["message"] and "never go on" in instance["incident"]["message"]
    history = api.get(f"/api/instances/{instance['id']}/history", lead).json()
    assert any(event["data"].get("element_id") == "join" for event in history["items"])


def test_an_instance_waiting_for_a_person_is_not_stalled(api: ApiClient) -> None:
    lead = api.user("admin")
    assert api.deploy(lead, ("wait.bpmn", _deadlock("wait"))).status_code == 201
    instance = api.start(lead, "wait", data={"urgent": False}).json()
    assert instance["status"] == "running" and [t["element_id"] for t in instance["open_tasks"]] == ["a"]


def test_simulate_fails_on_a_stall_and_names_the_element(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: Any) -> None:
    monkeypatch.setenv("CAREPATH_DATABASE_URL", f"sqlite:///{tmp_path / 'never.db'}")
    path = tmp_path / "stall.bpmn"
    path.write_text(_deadlock("stall"))
    assert main(["simulate", str(path), "--data", '{"urgent": true}']) == 1
    out, err = capsys.readouterr()
    assert "incident at join" in err
    assert "stopped at parallel gateway 'Both done'" in out
    assert not (tmp_path / "never.db").exists()
