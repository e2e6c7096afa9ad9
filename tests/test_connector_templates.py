"""The connector element templates (bpmn/element-templates/connectors.json): a diagram carrying exactly what a
template writes (its bindings applied as Camunda Modeler applies them) deploys, and its connector runs."""

from __future__ import annotations

from dataclasses import replace

import httpx
import pytest
from sqlalchemy import select

from carepath.api.connector_http import ConnectorHttp
from carepath.engine.connector_destinations import Destination
from carepath.engine.persistence.tables import NotificationRecord
from carepath.engine.usecases.connector_calls import deliver_connector_calls
from tests.support import diagrams as d
from tests.support.api import ApiClient
from tests.test_element_templates import TEMPLATES_BY_ID, with_template


def pathway(template_id: str, entered: dict[str, str], pid: str = "templated") -> str:
    """start -> "Call" (from the template) -> "Review" -> end."""
    xml = d.definitions(d.process(
        pid, d.node("startEvent", "start"), d.node("serviceTask", "call", "Call"),
        d.node("userTask", "review", "Review"), d.node("endEvent", "end"), d.flow("f1", "start", "call"),
        d.flow("f2", "call", "review"), d.flow("f3", "review", "end")))
    return with_template(xml, "call", template_id, entered)


@pytest.fixture
def api(api: ApiClient) -> ApiClient:
    api.engine.config = replace(api.engine.config, connector_destinations={
        "lab": Destination("lab", "https://lab.example.org/api"), "fhir": Destination("fhir", "https://fhir.test/r4")})
    return api


def run(api: ApiClient, xml: str, answer: httpx.Response | None = None) -> tuple[str, list[httpx.Request]]:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        assert answer is not None
        return answer

    api.engine.connector_sender = ConnectorHttp(transport=httpx.MockTransport(handler), environment={})
    lead = api.user("clinical_lead")
    deployed = api.deploy(lead, ("templated.bpmn", xml))
    assert deployed.status_code == 201, deployed.text
    started = api.start(lead, "templated", "visit-1", data={"order": {"test": "CBC"}})
    assert started.status_code == 201, started.text
    assert deliver_connector_calls(api.engine) == 1
    return str(started.json()["id"]), sent


def data(api: ApiClient, instance_id: str) -> dict[str, object]:
    shown = api.get(f"/api/instances/{instance_id}", api.user("admin")).json()
    assert shown["status"] == "running", shown
    return dict(shown["data"])


def test_the_connector_templates_are_camunda_7_connectors_for_service_tasks() -> None:
    for template_id in ("org.carepath.http-connector", "org.carepath.fhir-connector",
                        "org.carepath.notification-connector"):
        [scope] = TEMPLATES_BY_ID[template_id]["scopes"]
        assert scope["type"] == "camunda:Connector" and "bpmn:ServiceTask" in TEMPLATES_BY_ID[template_id]["appliesTo"]


def test_an_http_request_from_the_template_runs(api: ApiClient) -> None:
    xml = pathway("org.carepath.http-connector", {"url": "https://lab.example.org/api/orders",
                                                   "payload": "${order}", "resultVariable": "placed",
                                                   "statusVariable": "status"})
    instance_id, [sent] = run(api, xml, httpx.Response(201, json={"id": "o-1"}))
    assert (sent.method, sent.content, sent.headers["Content-Type"]) == ("POST", b'{"test":"CBC"}', "application/json")
    values = data(api, instance_id)
    assert (values["placed"], values["status"]) == ({"id": "o-1"}, 201)


def test_the_http_template_refuses_a_url_outside_the_destinations_at_deploy(api: ApiClient) -> None:
    xml = pathway("org.carepath.http-connector", {"url": "https://elsewhere.example.com/x"})
    response = api.deploy(api.user("clinical_lead"), ("templated.bpmn", xml))
    assert response.status_code == 422 and "CAREPATH_CONNECTOR_DESTINATIONS" in response.text


def test_a_fhir_create_from_the_template_runs(api: ApiClient) -> None:
    xml = pathway("org.carepath.fhir-connector", {"resourceType": "ServiceRequest", "resource": "${order}",
                                                   "idVariable": "requestId", "versionVariable": "requestVersion"})
    answer = httpx.Response(201, json={"resourceType": "ServiceRequest", "id": "sr-1", "meta": {"versionId": "1"}})
    instance_id, [sent] = run(api, xml, answer)
    assert (sent.method, str(sent.url)) == ("POST", "https://fhir.test/r4/ServiceRequest")
    values = data(api, instance_id)
    assert (values["requestId"], values["requestVersion"]) == ("sr-1", "1")


def test_a_notification_from_the_template_runs(api: ApiClient) -> None:
    xml = pathway("org.carepath.notification-connector", {"recipients": "group:nurses, role:admin",
                                                           "title": "Order placed", "message": "Check the order"})
    instance_id, sent = run(api, xml)
    assert sent == []
    with api.engine.db.read() as session:
        [row] = session.scalars(select(NotificationRecord).where(NotificationRecord.instance_id == instance_id))
    assert (row.subject, list(row.recipients)) == ("Order placed", ["group:nurses", "role:admin"])
