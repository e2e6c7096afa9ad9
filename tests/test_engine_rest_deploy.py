"""Camunda Modeler's Deploy and Start buttons against /engine-rest: the calls its Camunda 7 plugin makes
(client/src/plugins/camunda-plugin/shared/CamundaAPI.js), answered by CarePath's own deploy and start."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from httpx import Response

from carepath.engine.usecases.passwords import set_password
from carepath.engine.usecases.users import issue_token
from tests.support import diagrams as d
from tests.support.api import ApiClient

SHIPPED = Path(__file__).resolve().parents[1] / "bpmn"
REST = "/engine-rest"
PASSWORD = "correct horse battery staple"


def basic(name: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{secret}".encode()).decode(),
            "Accept": "application/json"}


def lead_with_token(api: ApiClient, role: str = "clinical_lead") -> dict[str, str]:
    name = api.user(role)
    return basic(name, issue_token(api.engine, name))


def modeler_deploy(api: ApiClient, headers: dict[str, str], *files: tuple[str, str | bytes],
                   name: str = "post-ed", **fields: str) -> Response:
    """As the modeler sends it: the fields, then each file in a part named after the file."""
    form = {"deployment-name": name, "deployment-source": "Camunda Modeler", "enable-duplicate-filtering": "true",
            **fields}
    parts = [(file_name, (file_name, content if isinstance(content, bytes) else content.encode(), "text/xml"))
             for file_name, content in files]
    return api.client.post(f"{REST}/deployment/create", headers=headers, data=form, files=parts)


def post_ed_files() -> list[tuple[str, bytes]]:
    return [(name, (SHIPPED / name).read_bytes()) for name in
            ("post-ed-follow-up.bpmn", "ed-visit-classification.dmn", "post-ed-follow-up.pathway.json")]


def modeler_diagram(pid: str = "home-visit") -> str:
    """A diagram as Camunda Modeler saves it: camunda and modeler namespaces, assignee and candidate groups
    on user tasks, a layout."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" xmlns:dc="http://www.omg.org/spec/DD/20100524/DC"
  xmlns:camunda="http://camunda.org/schema/1.0/bpmn" xmlns:modeler="http://camunda.org/schema/modeler/1.0"
  id="Definitions_1" targetNamespace="http://bpmn.io/schema/bpmn" exporter="Camunda Modeler"
  exporterVersion="5.31.0" modeler:executionPlatform="Camunda Platform" modeler:executionPlatformVersion="7.22.0">
  <bpmn:process id="{pid}" name="Home visit" isExecutable="true" camunda:historyTimeToLive="180">
    <bpmn:startEvent id="StartEvent_1"><bpmn:outgoing>Flow_1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="Task_book" name="Book home visit" camunda:candidateGroups="community_nurses">
      <bpmn:incoming>Flow_1</bpmn:incoming><bpmn:outgoing>Flow_2</bpmn:outgoing></bpmn:userTask>
    <bpmn:userTask id="Task_visit" name="Visit patient" camunda:assignee="nurse-ann">
      <bpmn:incoming>Flow_2</bpmn:incoming><bpmn:outgoing>Flow_3</bpmn:outgoing></bpmn:userTask>
    <bpmn:endEvent id="EndEvent_1"><bpmn:incoming>Flow_3</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="Flow_1" sourceRef="StartEvent_1" targetRef="Task_book" />
    <bpmn:sequenceFlow id="Flow_2" sourceRef="Task_book" targetRef="Task_visit" />
    <bpmn:sequenceFlow id="Flow_3" sourceRef="Task_visit" targetRef="EndEvent_1" />
  </bpmn:process>
  <bpmndi:BPMNDiagram id="BPMNDiagram_1"><bpmndi:BPMNPlane id="Plane_1" bpmnElement="{pid}">
    <bpmndi:BPMNShape id="S_start" bpmnElement="StartEvent_1"><dc:Bounds x="152" y="82" width="36" height="36" />
    </bpmndi:BPMNShape>
  </bpmndi:BPMNPlane></bpmndi:BPMNDiagram>
</bpmn:definitions>
"""


def test_the_modeler_connection_check_and_version_answer_with_basic_token_credentials(api: ApiClient) -> None:
    headers = lead_with_token(api)
    check = api.client.get(f"{REST}/deployment", params={"maxResults": 0}, headers=headers)
    assert check.status_code == 200 and check.json() == []
    assert api.client.get(f"{REST}/version", headers=headers).json() == {"version": "7.22.0"}


def test_several_files_with_a_dmn_deploy_and_a_repeat_answers_the_existing_deployment(api: ApiClient) -> None:
    headers = lead_with_token(api)
    first = modeler_deploy(api, headers, *post_ed_files())
    assert first.status_code == 200, first.text
    body = first.json()
    definition = body["deployedProcessDefinitions"]["post-ed-follow-up:1"]
    assert (body["name"], body["source"]) == ("post-ed", "Camunda Modeler")
    assert (definition["key"], definition["version"], definition["resource"], definition["deploymentId"]) == (
        "post-ed-follow-up", 1, "post-ed-follow-up.bpmn", body["id"])
    again = modeler_deploy(api, headers, *post_ed_files()).json()
    assert again["id"] == body["id"]
    assert list(again["deployedProcessDefinitions"]) == ["post-ed-follow-up:1"]
    listed = api.client.get(f"{REST}/deployment", headers=headers).json()
    assert [item["id"] for item in listed] == [body["id"]]


def test_a_changed_diagram_deploys_a_new_version(api: ApiClient) -> None:
    headers = lead_with_token(api)
    modeler_deploy(api, headers, ("fu.bpmn", d.linear_user_tasks("fu", "Call patient")))
    changed = modeler_deploy(api, headers, ("fu.bpmn", d.linear_user_tasks("fu", "Call patient", "Book")))
    assert list(changed.json()["deployedProcessDefinitions"]) == ["fu:2"]


def test_a_bad_diagram_answers_400_with_the_located_problem_in_the_message(api: ApiClient) -> None:
    headers = lead_with_token(api)
    broken = d.definitions(d.process(
        "triage", d.node("startEvent", "start"), d.node("exclusiveGateway", "Gateway_1"),
        d.node("userTask", "high", "Escalate"), d.node("endEvent", "end"), d.flow("f0", "start", "Gateway_1"),
        d.flow("f1", "Gateway_1", "high", "risk > 5"), d.flow("f2", "Gateway_1", "end"), d.flow("f3", "high", "end")))
    response = modeler_deploy(api, headers, ("triage.bpmn", broken))
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "ParseException"
    assert body["message"].startswith("ENGINE-09005 Could not parse BPMN process. Errors: \n* ")
    assert "Gateway_1" in body["message"] and "resource triage.bpmn | line " in body["message"]
    assert body["details"]["triage.bpmn"]["errors"][0]["mainElementId"] == "Gateway_1"


def test_no_credentials_or_wrong_ones_are_refused_with_a_challenge(api: ApiClient) -> None:
    name = api.user("clinical_lead")
    for headers in ({}, basic(name, "not-a-token-or-password"), {"Authorization": "Basic !!"}):
        response = api.client.get(f"{REST}/deployment", params={"maxResults": 0}, headers=headers)
        assert response.status_code == 401, headers
        assert "Basic" in response.headers["WWW-Authenticate"] and response.json()["message"]
    refused = modeler_deploy(api, {}, ("fu.bpmn", d.linear_user_tasks("fu", "Call patient")))
    assert refused.status_code == 401 and api.get("/api/pathways/fu", name).status_code == 404


def test_someone_elses_token_under_a_users_name_is_refused(api: ApiClient) -> None:
    lead = api.user("clinical_lead")
    other = api.user("clinical_lead")
    response = api.client.get(f"{REST}/version", headers=basic(lead, issue_token(api.engine, other)))
    assert response.status_code == 401


def test_a_password_and_a_bearer_token_work_too(api: ApiClient) -> None:
    lead = api.user("clinical_lead")
    set_password(api.engine, lead, PASSWORD)
    assert api.client.get(f"{REST}/version", headers=basic(lead, PASSWORD)).status_code == 200
    assert api.client.get(f"{REST}/version", headers=api.headers(lead)).status_code == 200


def test_a_role_that_may_not_deploy_gets_403_in_camundas_shape(api: ApiClient) -> None:
    response = modeler_deploy(api, lead_with_token(api, "coordinator"),
                              ("fu.bpmn", d.linear_user_tasks("fu", "Call patient")))
    assert response.status_code == 403
    assert response.json()["type"] == "AuthorizationException" and response.json()["message"]


def test_start_by_key_with_camunda_variables_makes_the_episode(api: ApiClient) -> None:
    headers = lead_with_token(api)
    modeler_deploy(api, headers, *post_ed_files())
    variables = {"ed_visit_date": {"value": "2026-03-02", "type": "String"},
                 "diagnosis_category": {"value": "mental_illness", "type": "String"},
                 "high_risk_chronic_conditions": {"value": 1, "type": "Integer"}}
    started = api.client.post(f"{REST}/process-definition/key/post-ed-follow-up/start", headers=headers,
                              json={"variables": variables, "businessKey": "ED-1001"})
    assert started.status_code == 200, started.text
    body = started.json()
    assert (body["businessKey"], body["definitionId"], body["ended"]) == ("ED-1001", "post-ed-follow-up:1", False)
    episode = api.get(f"/api/instances/{body['id']}", api.user("admin")).json()
    assert episode["business_key"] == "ED-1001" and episode["data"]["high_risk_chronic_conditions"] == 1


def test_start_by_the_id_the_deploy_answered(api: ApiClient) -> None:
    headers = lead_with_token(api)
    deployed = modeler_deploy(api, headers, ("fu.bpmn", d.linear_user_tasks("fu", "Call patient"))).json()
    [definition_id] = deployed["deployedProcessDefinitions"]
    started = api.client.post(f"{REST}/process-definition/{definition_id}/start", headers=headers,
                              json={"businessKey": "bk-1", "variables": None})
    assert started.status_code == 200 and started.json()["definitionId"] == "fu:1"
    unknown = api.client.post(f"{REST}/process-definition/fu:9/start", headers=headers, json={"businessKey": "b"})
    assert unknown.status_code == 404 and unknown.json()["type"] == "InvalidRequestException"


def test_a_start_without_business_key_or_with_a_mistyped_variable_says_what_to_fix(api: ApiClient) -> None:
    headers = lead_with_token(api)
    modeler_deploy(api, headers, ("fu.bpmn", d.linear_user_tasks("fu", "Call patient")))
    start = f"{REST}/process-definition/key/fu/start"
    missing = api.client.post(start, headers=headers, json={"businessKey": None, "variables": None})
    assert missing.status_code == 400 and "business key" in missing.json()["message"]
    mistyped: dict[str, Any] = {"businessKey": "b", "variables": {"age": {"value": "ten", "type": "Integer"}}}
    wrong = api.client.post(start, headers=headers, json=mistyped)
    assert wrong.status_code == 400 and "'age'" in wrong.json()["message"]


def test_a_camunda_modeler_diagram_deploys_and_its_tasks_are_routed(api: ApiClient) -> None:
    headers = lead_with_token(api)
    deployed = modeler_deploy(api, headers, ("home-visit.bpmn", modeler_diagram()))
    assert deployed.status_code == 200, deployed.text
    started = api.client.post(f"{REST}/process-definition/key/home-visit/start", headers=headers,
                              json={"businessKey": "HV-1"})
    assert started.status_code == 200, started.text
    episode = api.get(f"/api/instances/{started.json()['id']}", api.user("admin")).json()
    [task] = episode["open_tasks"]
    assert task["name"] == "Book home visit" and task["candidate_groups"] == ["community_nurses"]


def test_a_tenant_or_an_unknown_field_is_refused_by_name(api: ApiClient) -> None:
    headers = lead_with_token(api)
    files = ("fu.bpmn", d.linear_user_tasks("fu", "Call patient"))
    tenant = modeler_deploy(api, headers, files, **{"tenant-id": "ward-7"})
    assert tenant.status_code == 400 and "tenant" in tenant.json()["message"]
    unknown = modeler_deploy(api, headers, files, **{"surprise": "x"})
    assert unknown.status_code == 400 and "'surprise'" in unknown.json()["message"]


def test_file_names_are_cut_to_their_last_part_and_the_upload_limit_holds(api: ApiClient) -> None:
    headers = lead_with_token(api)
    deployed = modeler_deploy(api, headers, ("../../etc/fu.bpmn", d.linear_user_tasks("fu", "Call patient")))
    assert deployed.json()["deployedProcessDefinitions"]["fu:1"]["resource"] == "fu.bpmn"
    limit = api.client.app.state.settings.max_upload_bytes  # type: ignore[attr-defined]
    huge = modeler_deploy(api, headers, ("big.bpmn", b"<" + b" " * limit))
    assert huge.status_code == 413 and "upload" in json.dumps(huge.json())


def test_an_integration_account_is_refused_the_editors_buttons(api: ApiClient) -> None:
    headers = lead_with_token(api, "integration")
    assert api.client.get(f"{REST}/version", headers=headers).status_code == 403
    started = api.client.post(f"{REST}/process-definition/key/fu/start", headers=headers, json={"businessKey": "b"})
    assert started.status_code == 403 and "integration account" in started.json()["message"]


def test_a_decision_deployed_alone_from_its_tab_says_to_deploy_it_with_the_pathway(api: ApiClient) -> None:
    dmn = (SHIPPED / "ed-visit-classification.dmn").read_bytes()
    response = modeler_deploy(api, lead_with_token(api), ("ed-visit-classification.dmn", dmn))
    assert response.status_code == 400
    assert "Upload the .bpmn file of the pathway together with its .dmn files" in response.json()["message"]
