"""Engine-level: state survives a save/restore round trip after every step, and the projection
always matches what the engine says (as SpiffWorkflow's own tests do with save_restore)."""

from __future__ import annotations

import json

from sqlalchemy import select

from carepath.engine.persistence.tables import Instance, Task
from tests.support import diagrams as d
from tests.support.api import ApiClient


def _engine_view(api: ApiClient, instance_id: str) -> tuple[set[str], str]:
    """Open task ids straight from the workflow, restored from the stored state; and a re-dump."""
    restored = api.workflow(instance_id)
    with api.engine.db.read() as session:
        projected = set(session.scalars(select(Task.id).where(Task.instance_id == instance_id,
                                                              Task.state == "ready")))
    assert {t.id for t in restored.snapshot().open_tasks} == projected
    return projected, restored.dump()


def test_state_round_trips_and_projection_matches_after_every_step(api: ApiClient) -> None:
    lead = api.user("clinical_lead")
    api.deploy(lead, ("g.bpmn", d.gateway_on("g", "risk_score > 5")))
    instance = api.start(lead, "g").json()
    while instance["open_tasks"]:
        with api.engine.db.read() as session:
            stored = session.get(Instance, instance["id"]).state
        _, dumped = _engine_view(api, instance["id"])
        assert json.loads(dumped) == json.loads(stored)
        task = instance["open_tasks"][0]
        instance = api.post(f"/api/tasks/{task['id']}/complete", lead, {"data": {"risk_score": 9}}).json()
    assert instance["status"] == "completed"
    _engine_view(api, instance["id"])


def test_stored_state_holds_no_spec(api: ApiClient) -> None:
    lead = api.user("clinical_lead")
    api.deploy(lead, ("g.bpmn", d.gateway_on("g", "risk_score > 5")))
    instance = api.start(lead, "g").json()
    with api.engine.db.read() as session:
        state = json.loads(session.get(Instance, instance["id"]).state)
    assert "spec" not in state and "subprocess_specs" not in state
    assert "tasks" in state


def test_workflow_cache_is_not_required(api: ApiClient) -> None:
    lead = api.user("clinical_lead")
    api.deploy(lead, ("fu.bpmn", d.linear_user_tasks("fu", "Call patient", "Book visit")))
    instance = api.start(lead, "fu").json()
    api.engine.workflows.clear()
    api.engine.specs.clear()
    done = api.post(f"/api/tasks/{instance['open_tasks'][0]['id']}/complete", lead, {"data": {}}).json()
    assert [t["name"] for t in done["open_tasks"]] == ["Book visit"]
