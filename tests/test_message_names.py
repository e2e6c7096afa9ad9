"""A message whose name nothing catches or starts with (a typo) is refused, not buffered for days (defect 13).

The names in use: every message a version catches or starts with (recorded at deploy; migration 0014 fills
them in for versions deployed before), for versions deployed and not retired, or still running an episode
(retiring stops new starts only), and any an instance waits for right now. Only clinical leads and admins,
who deploy, are told the names.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from carepath.engine.persistence import migrate
from carepath.engine.persistence.tables import MessageCatchEvent, PathwayVersion
from tests.support import diagrams as d
from tests.support.api import ApiClient


def _send(api: ApiClient, user: str, name: str, key: str = "enc-1") -> tuple[int, dict[str, object]]:
    response = api.post("/api/messages", user, {"name": name, "correlation_key": key})
    return response.status_code, response.json()


def test_a_message_name_nothing_catches_is_refused_and_only_those_who_deploy_see_the_names(api: ApiClient) -> None:
    lead, admin = api.user("clinical_lead"), api.user("admin")
    coordinator, adt = api.user("coordinator", "pharmacy"), api.user("integration")
    api.deploy(lead, ("ed.bpmn", d.message_start("ed", "ed_discharge")),
               ("ref.bpmn", d.task_then_message("ref", "report_received")))
    for user in (lead, admin):
        status, body = _send(api, user, "ed_dischrge")
        assert status == 422
        assert "'ed_dischrge'" in body["message"] and "names in use: ed_discharge, report_received" in body["message"]
    for user in (coordinator, adt):
        status, body = _send(api, user, "ed_dischrge")
        assert status == 422 and "'ed_dischrge'" in body["message"] and "ed_discharge" not in body["message"]
        assert [p["field"] for p in body["errors"]] == ["name"] and "ed_discharge" not in str(body["errors"])
    assert _send(api, coordinator, "report_received")[1]["outcome"] == "buffered"  # caught, not yet waited for
    assert _send(api, lead, "ed_discharge")[1]["outcome"] == "started"


def test_catches_anywhere_in_a_pathway_count(api: ApiClient) -> None:
    """A boundary event and a receive task in a called process of the same package."""
    lead = api.user("clinical_lead")
    called = d.process("checks", d.node("startEvent", "s"), d.node("receiveTask", "lab", "Lab result",
                                                                   messageRef="Msg_lab_result"),
                       d.node("endEvent", "e"), d.flow("c1", "s", "lab"), d.flow("c2", "lab", "e"))
    caller = d.process(
        "main", d.node("startEvent", "start"), d.node("callActivity", "call", "Checks", calledElement="checks"),
        d.node("userTask", "review", "Review"),
        d.node("boundaryEvent", "cancelled", body=d.message_ref("order_cancelled"), attachedToRef="review"),
        d.node("endEvent", "end"), d.node("endEvent", "stopped"), d.flow("f1", "start", "call"),
        d.flow("f2", "call", "review"), d.flow("f3", "review", "end"), d.flow("f4", "cancelled", "stopped"))
    package = d.definitions(caller, called, messages=("lab_result", "order_cancelled"))
    deployed = api.deploy(lead, ("main.bpmn", package))
    assert deployed.status_code == 201, deployed.text
    assert _send(api, lead, "lab_result")[0] == 200
    assert _send(api, lead, "order_cancelled")[0] == 200


def test_a_retired_version_s_names_stay_in_use_while_its_episodes_run(api: ApiClient) -> None:
    lead = api.user("clinical_lead")
    api.deploy(lead, ("ref.bpmn", d.task_then_message("ref", "report_received")))
    started = api.start(lead, "ref", business_key="enc-1").json()
    assert api.post("/api/pathways/ref/versions/1/retire", lead).status_code == 204
    status, body = _send(api, lead, "report_received")
    assert (status, body["outcome"]) == (200, "buffered")  # the running episode will wait for it
    done = api.post(f"/api/tasks/{started['open_tasks'][0]['id']}/complete", lead, {"data": {}}).json()
    api.post(f"/api/tasks/{done['open_tasks'][0]['id']}/complete", lead, {"data": {}})
    assert api.get(f"/api/instances/{started['id']}", lead).json()["status"] == "completed"
    status, body = _send(api, lead, "report_received", key="enc-3")
    assert status == 422 and "names in use: none" in str(body["message"])


def test_migration_0014_records_the_messages_of_versions_deployed_before(api: ApiClient, tmp_path: Path) -> None:
    lead = api.user("clinical_lead")
    api.deploy(lead, ("ref.bpmn", d.task_then_message("ref", "report_received")),
               ("ed.bpmn", d.message_start("ed", "ed_discharge")))
    engine = api.engine.db.engine
    query = sa.select(PathwayVersion.key, MessageCatchEvent.message_name).join(
        PathwayVersion, PathwayVersion.id == MessageCatchEvent.pathway_version_id).order_by(PathwayVersion.key)
    with engine.connect() as connection:
        deployed = connection.execute(query).all()
    assert deployed == [("ed", "ed_discharge"), ("ref", "report_received")]
    migrate.downgrade(engine, "0011")
    migrate.upgrade(engine)
    with engine.connect() as connection:
        assert connection.execute(query).all() == deployed
    assert _send(api, lead, "report_received")[0] == 200
