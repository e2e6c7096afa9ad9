"""What a deployed version holds, as the lead's version page reads it (engine/usecases/pathway_outline.py),
the running episodes per version, and a refused upload keeping its warnings (DiagramInvalid.warnings, also
in the API's answer)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from carepath.api.app import create_app
from carepath.api.settings import Settings
from carepath.engine.application import CarePath
from carepath.engine.definitions import SourceFile, parse_package
from carepath.engine.errors import DiagramInvalid, NotFound
from carepath.engine.identity import SYSTEM
from carepath.engine.queries import running_per_version
from carepath.engine.usecases.deploy import check_package, deploy_pathways
from carepath.engine.usecases.instances import start_instance
from carepath.engine.usecases.pathway_outline import TimerOutline, version_outline
from carepath.engine.usecases.users import add_user
from tests.support import diagrams as d
from tests.support import laid_out


def test_the_outline_lists_human_tasks_and_timers_as_drawn(engine: CarePath) -> None:
    deploy_pathways(engine, SYSTEM, [SourceFile("bt.bpmn", d.boundary_timers("bt", reminder="P1D").encode())])
    outline = version_outline(engine, "bt", 1)
    assert [(t.element_id, t.name) for t in outline.tasks] == [
        ("call", "Call patient"), ("reminder", "Reminder"), ("escalation", "Escalation")]
    assert outline.timers == [TimerOutline("remind", "Reminder due", "after", "P1D", "Call patient", False),
                              TimerOutline("escalate", "Escalate", "after", "P2D", "Call patient", True)]
    with pytest.raises(NotFound):
        version_outline(engine, "bt", 2)


def test_lanes_route_to_groups_staffed_or_not_and_running_episodes_are_counted(engine: CarePath) -> None:
    deploy_pathways(engine, SYSTEM, [SourceFile("n.bpmn", d.linear_user_tasks("n", "Check", lane="Night Team")
                                                .encode())])
    outline = version_outline(engine, "n", 1)
    assert [(lane.lane, lane.group, lane.staffed) for lane in outline.lanes] == [("Night Team", "night-team", False)]
    assert outline.tasks[0].lane == "Night Team" and outline.running == 0
    assert not outline.drawable  # built without a layout
    add_user(engine, "nia", "coordinator", ["night-team"])
    start_instance(engine, SYSTEM, "n", business_key="enc-1")
    outline = version_outline(engine, "n", 1)
    assert outline.lanes[0].staffed and outline.running == 1
    with engine.db.read() as session:
        assert running_per_version(session) == {("n", 1): 1}
        assert running_per_version(session, "other") == {}


def test_a_refused_upload_keeps_the_warnings_found_before_it(engine: CarePath) -> None:
    bad = laid_out.chain("w", [("startEvent", "start", ""), ("exclusiveGateway", "gw", "?"),
                               ("userTask", "call", "Call"), ("endEvent", "end", "")],
                         extra_flows=[("fx", "gw", "end")], task_attrs={"call": {"bogus": "1"}})
    with pytest.raises(DiagramInvalid) as refused:
        parse_package([SourceFile("w.bpmn", bad.encode())])
    assert [p.element_id for p in refused.value.problems] == ["gw"]
    assert any("'bogus'" in w.message for w in refused.value.warnings)
    late = laid_out.chain("late", [("startEvent", "start", ""), ("userTask", "call", "Call"), ("endEvent", "end", "")],
                          lane="Night Team", task_attrs={"call": {"camunda:dueDate": "soonish"}})
    with pytest.raises(DiagramInvalid) as refused:
        check_package(engine.config, [SourceFile("late.bpmn", late.encode())], known_groups=set())
    assert [p.element_id for p in refused.value.problems] == ["call"]
    assert any("night-team" in w.message for w in refused.value.warnings)


def test_the_api_answers_a_refused_deploy_with_its_warnings(engine: CarePath, database_url: str) -> None:
    token = add_user(engine, "lee", "clinical_lead")
    app = create_app(Settings(database_url=database_url, deploy_shipped_pathways=False, scheduler_enabled=False),
                     engine)
    bad = laid_out.chain("w", [("startEvent", "start", ""), ("exclusiveGateway", "gw", "?"),
                               ("userTask", "call", "Call"), ("endEvent", "end", "")],
                         extra_flows=[("fx", "gw", "end")], task_attrs={"call": {"bogus": "1"}})
    answer = TestClient(app).post("/api/pathways", headers={"Authorization": f"Bearer {token}"},
                                  files=[("files", ("w.bpmn", bad.encode(), "application/xml"))])
    assert answer.status_code == 422
    assert [e["element_id"] for e in answer.json()["errors"]] == ["gw"]
    assert [w["line"] for w in answer.json()["warnings"]] == [6]
