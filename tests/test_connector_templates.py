"""The connector element templates (bpmn/element-templates/connectors.json): a diagram carrying exactly what a
template writes (its bindings applied as Camunda Modeler applies them) deploys, and its connector runs."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from lxml import etree
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
    assert "Zeebe" not in deployed.text  # no warning that what the template wrote is ignored
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


# Camunda 8 templates (bpmn/element-templates/camunda8/): binding types and what each writes.
C8_TEMPLATES = {template["id"]: template for template in json.loads(
    (Path(__file__).resolve().parents[1] / "bpmn" / "element-templates" / "camunda8" / "connectors.json")
    .read_text(encoding="utf-8"))}
C8_SCHEMA = "https://unpkg.com/@camunda/zeebe-element-templates-json-schema/resources/schema.json"
ZEEBE_NS = "http://camunda.org/schema/zeebe/1.0"
BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
C8_BINDINGS = {"zeebe:taskDefinition": "property", "zeebe:input": "name", "zeebe:taskHeader": "key"}


def c8_problems(template: dict[str, Any]) -> list[str]:
    """What Camunda Modeler (Camunda 8) would refuse in a template, or CarePath could not use."""
    problems = [] if template.get("$schema") == C8_SCHEMA else [f"$schema is {template.get('$schema')}"]
    groups = {group["id"] for group in template.get("groups", [])}
    ids = [prop.get("id") for prop in template["properties"]]
    problems += [] if len(ids) == len(set(ids)) and None not in ids else [f"property ids not unique: {ids}"]
    for prop in template["properties"]:
        binding = prop["binding"]
        if C8_BINDINGS.get(binding["type"]) not in binding:
            problems.append(f"{prop['id']}: binding {binding} is not a Camunda 8 binding CarePath reads")
        if "group" in prop and prop["group"] not in groups:
            problems.append(f"{prop['id']}: group {prop['group']} is not defined")
        if prop["type"] == "Dropdown" and prop.get("value") not in [c["value"] for c in prop["choices"]]:
            problems.append(f"{prop['id']}: the default is not a choice")
    return problems


def with_c8_template(template_id: str, entered: dict[str, str]) -> str:
    """The pathway above with "Call" made from the Camunda 8 template, as the Modeler writes it: each field's value
    (a FEEL field's with its leading '=') where its binding says; an empty optional field is not written."""
    template = C8_TEMPLATES[template_id]
    xml = d.definitions(d.process(
        "templated", d.node("startEvent", "start"), d.node("serviceTask", "call", "Call"),
        d.node("userTask", "review", "Review"), d.node("endEvent", "end"), d.flow("f1", "start", "call"),
        d.flow("f2", "call", "review"), d.flow("f3", "review", "end")))
    root = etree.fromstring(xml.replace("<bpmn:definitions ", f'<bpmn:definitions xmlns:zeebe="{ZEEBE_NS}" ', 1)
                            .encode())
    [task] = root.xpath("//*[@id='call']")
    task.set(f"{{{ZEEBE_NS}}}modelerTemplate", template_id)
    task.set(f"{{{ZEEBE_NS}}}modelerTemplateVersion", str(template["version"]))
    extensions = etree.SubElement(task, f"{{{BPMN_NS}}}extensionElements")
    parts = {name: etree.SubElement(extensions, f"{{{ZEEBE_NS}}}{name}")
             for name in ("taskDefinition", "ioMapping", "taskHeaders")}
    for prop in template["properties"]:
        value = entered.get(prop["id"], prop.get("value"))
        if not value:
            assert prop.get("optional") or not prop.get("constraints", {}).get("notEmpty"), prop["id"]
            continue
        if prop.get("feel") == "required" and not value.startswith("="):
            value = "=" + value
        binding = prop["binding"]
        if binding["type"] == "zeebe:taskDefinition":
            parts["taskDefinition"].set(binding["property"], value)
        elif binding["type"] == "zeebe:input":
            etree.SubElement(parts["ioMapping"], f"{{{ZEEBE_NS}}}input", source=value, target=binding["name"])
        else:
            etree.SubElement(parts["taskHeaders"], f"{{{ZEEBE_NS}}}header", key=binding["key"], value=value)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8").decode()


@pytest.mark.parametrize("template_id", sorted(C8_TEMPLATES))
def test_each_camunda8_template_is_one_carepath_can_use(template_id: str) -> None:
    assert c8_problems(C8_TEMPLATES[template_id]) == []


def test_an_http_request_from_the_camunda8_template_runs(api: ApiClient) -> None:
    xml = with_c8_template("org.carepath.camunda8.http-json", {
        "url": "https://lab.example.org/api/orders", "body": "{test: order.test}",
        "resultExpression": "{orderId: response.body.id, placed: response.status}"})
    instance_id, [sent] = run(api, xml, httpx.Response(201, json={"id": "o-2"}))
    assert (sent.method, sent.content) == ("POST", b'{"test":"CBC"}')
    values = data(api, instance_id)
    assert (values["orderId"], values["placed"]) == ("o-2", 201)


def test_a_fhir_update_from_the_camunda8_template_runs(api: ApiClient) -> None:
    xml = with_c8_template("org.carepath.camunda8.fhir", {
        "operation": "update", "resourceType": "Task", "resourceId": "t-1",
        "resource": "{status: \"completed\", intent: \"order\"}", "resultVariable": "task"})
    instance_id, [sent] = run(api, xml, httpx.Response(200, json={"resourceType": "Task", "id": "t-1",
                                                                  "meta": {"versionId": "4"}}))
    assert (sent.method, str(sent.url)) == ("PUT", "https://fhir.test/r4/Task/t-1")
    assert data(api, instance_id)["task"]["versionId"] == "4"


def test_a_notification_from_the_camunda8_template_runs(api: ApiClient) -> None:
    xml = with_c8_template("org.carepath.camunda8.notification", {
        "recipients": "user:dr-lee", "title": "Order", "message": "=\"Order \" + order.test"})
    instance_id, _ = run(api, xml)
    with api.engine.db.read() as session:
        [row] = session.scalars(select(NotificationRecord).where(NotificationRecord.instance_id == instance_id))
    assert (row.payload["message"], list(row.recipients)) == ("Order CBC", ["user:dr-lee"])
