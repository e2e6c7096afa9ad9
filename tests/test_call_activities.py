"""Call activities bind the called pathway's latest version when the call starts, and keep it."""

from __future__ import annotations

from sqlalchemy import select

from carepath.engine.persistence.tables import Event
from tests.support import diagrams as d
from tests.support.api import ApiClient


def test_call_binds_latest_version_at_call_start_and_keeps_it(api: ApiClient) -> None:
    lead = api.user("clinical_lead")
    assert api.deploy(lead, ("child.bpmn", d.linear_user_tasks("med-rec", "Reconcile medications"))).status_code == 201
    response = api.deploy(lead, ("parent.bpmn", d.call_activity("discharge", "med-rec")))
    assert response.status_code == 201, response.text
    started = api.start(lead, "discharge").json()
    assert [t["name"] for t in started["open_tasks"]] == ["Reconcile medications"]
    # A new version of the called pathway does not move the running call.
    api.deploy(lead, ("child.bpmn", d.linear_user_tasks("med-rec", "Changed task")))
    api.engine.workflows.clear()
    api.engine.specs.clear()
    done = api.post(f"/api/tasks/{started['open_tasks'][0]['id']}/complete", lead, {"data": {"meds": 3}}).json()
    assert [t["name"] for t in done["open_tasks"]] == ["After call"]
    with api.engine.db.read() as session:
        bound = session.scalars(select(Event).where(Event.instance_id == started["id"],
                                                    Event.type == "call_bound")).all()
    assert [(e.data["called_pathway"], e.data["called_version"]) for e in bound] == [("med-rec", 1)]
    # A call that starts now binds version 2.
    fresh = api.start(lead, "discharge").json()
    assert [t["name"] for t in fresh["open_tasks"]] == ["Changed task"]


def test_call_to_an_unknown_pathway_is_refused_at_deploy(api: ApiClient) -> None:
    lead = api.user("clinical_lead")
    response = api.deploy(lead, ("parent.bpmn", d.call_activity("discharge", "nowhere")))
    assert response.status_code == 422 and "nowhere" in response.text
