"""The Camunda Modeler element templates in bpmn/element-templates: each is a well-formed Camunda 7
template, and a diagram carrying exactly what a template writes deploys and keeps the template's
promise: the care task goes to its role with its due date, the catch event takes its message.

The diagrams are built by applying each template's own bindings, so changing a template changes
what these tests deploy."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from lxml import etree
from sqlalchemy import select

from carepath.api.bootstrap import deploy_directory
from carepath.engine.application import CarePath
from carepath.engine.calendars import deadline_syntax_problem
from carepath.engine.clock import ManualClock
from carepath.engine.persistence.tables import DeploymentFile
from tests.support import diagrams as d
from tests.support.api import ApiClient

TEMPLATES = Path(__file__).resolve().parents[1] / "bpmn" / "element-templates"
C7_SCHEMA = "https://unpkg.com/@camunda/element-templates-json-schema/resources/schema.json"
CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
CARE_TASK = "org.carepath.care-task"
EXTERNAL_TASK = "org.carepath.external-task"
BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
WAIT_FOR_EVENT = "org.carepath.wait-for-external-event"
# Camunda 7 binding types and the field types each allows (the element templates JSON schema).
C7_BINDINGS = {
    "property": {"String", "Text", "Hidden", "Dropdown", "Boolean"},
    "camunda:inputParameter": {"String", "Text", "Hidden", "Dropdown"},
    "camunda:field": {"String", "Text", "Hidden", "Dropdown"},
    "camunda:executionListener": {"Hidden"},
    **{binding: {"String", "Hidden", "Dropdown"} for binding in (
        "camunda:property", "camunda:outputParameter", "camunda:in", "camunda:in:businessKey", "camunda:out",
        "camunda:errorEventDefinition")},
}
DATE_ATTRIBUTES = ("camunda:dueDate", "camunda:followUpDate")
NY = ZoneInfo("America/New_York")
FRIDAY_10AM = datetime(2026, 11, 20, 10, 0, tzinfo=NY)
# What each "Due in" choice means for a task that appears on Friday 20 November 2026, 10:00 in New York
# (the default us-federal calendar): business days skip the weekend, days do not.
DUE_FROM_FRIDAY_10AM = {
    "": None,
    "P1BD": datetime(2026, 11, 23, 10, 0, tzinfo=NY),
    "P2BD": datetime(2026, 11, 24, 10, 0, tzinfo=NY),
    "P7D": datetime(2026, 11, 27, 10, 0, tzinfo=NY),
    "P14D": datetime(2026, 12, 4, 10, 0, tzinfo=NY),
    "P30D": datetime(2026, 12, 20, 10, 0, tzinfo=NY),
}


def load_templates() -> dict[str, dict[str, Any]]:
    templates: dict[str, dict[str, Any]] = {}
    for path in sorted(TEMPLATES.glob("*.json")):
        content = json.loads(path.read_text(encoding="utf-8"))
        for template in content if isinstance(content, list) else [content]:
            assert template.get("id") not in templates, f"{path.name}: template id {template.get('id')} is used twice"
            templates[template.get("id")] = template
    return templates


TEMPLATES_BY_ID = load_templates()


def template_problems(template: dict[str, Any]) -> list[str]:
    """What Camunda Modeler would refuse in a Camunda 7 template, or CarePath could not use."""
    problems = [f"missing '{key}'" for key in ("$schema", "name", "id", "version", "appliesTo", "properties")
                if key not in template]
    if template.get("$schema") != C7_SCHEMA:
        problems.append(f"$schema is not the Camunda 7 schema: {template.get('$schema')}")
    problems += [f"appliesTo '{kind}' is not a bpmn: type" for kind in template.get("appliesTo", [])
                 if not re.fullmatch(r"bpmn:[A-Z]\w+", kind)]
    groups = {group["id"] for group in template.get("groups", [])}
    ids = [prop.get("id") for prop in template.get("properties", [])]
    if len(ids) != len(set(ids)) or None in ids:
        problems.append(f"property ids are missing or not unique: {ids}")
    for prop in template.get("properties", []):
        problems += [f"{prop.get('id')}: {problem}" for problem in property_problems(prop, groups)]
    for scope in template.get("scopes", []):
        if scope.get("type") != "camunda:Connector":
            problems.append(f"scope {scope.get('type')} is not camunda:Connector")
        for prop in scope.get("properties", []):
            problems += [f"{prop.get('id')}: {problem}" for problem in property_problems(prop, groups)]
        if not any(prop["binding"] == {"type": "property", "name": "connectorId"} for prop in scope["properties"]):
            problems.append("the connector scope does not set connectorId")
    return problems


def property_problems(prop: dict[str, Any], groups: set[str]) -> list[str]:
    binding = prop.get("binding", {})
    allowed = C7_BINDINGS.get(binding.get("type"))
    if allowed is None:
        return [f"binding type {binding.get('type')} is not a Camunda 7 binding"]
    problems = [] if prop.get("type") in allowed else [f"type {prop.get('type')} is not allowed for {binding['type']}"]
    if binding["type"] in ("property", "camunda:property", "camunda:inputParameter") and not binding.get("name"):
        problems.append("the binding has no name")
    if binding["type"] == "camunda:outputParameter" and not binding.get("source"):
        problems.append("an output parameter binding needs its source")
    if "group" in prop and prop["group"] not in groups:
        problems.append(f"group {prop['group']} is not defined")
    if prop.get("type") == "Dropdown":
        problems += dropdown_problems(prop)
    return problems


def dropdown_problems(prop: dict[str, Any]) -> list[str]:
    listed = prop.get("choices", [])
    if not listed or not all(choice.get("name") and isinstance(choice.get("value"), str) for choice in listed):
        return ["a dropdown needs choices, each with a name and a text value"]
    choices = [choice["value"] for choice in listed]
    problems = [] if prop.get("value") in (None, *choices) else [f"the default {prop['value']!r} is not a choice"]
    attribute = prop["binding"].get("name")
    if attribute in DATE_ATTRIBUTES:  # every date offered must be one CarePath can work out
        problems += [f"choice {c!r}: {deadline_syntax_problem(c)}" for c in choices if c and deadline_syntax_problem(c)]
    if attribute == "camunda:priority":
        problems += [f"priority {c!r} is not 0-100" for c in choices if not (c.isdigit() and int(c) <= 100)]
    return problems


def field(template_id: str, property_id: str) -> dict[str, Any]:
    return next(prop for prop in TEMPLATES_BY_ID[template_id]["properties"] if prop["id"] == property_id)


def apply_template(element: etree._Element, template: dict[str, Any], entered: dict[str, str]) -> None:
    """Do what Camunda Modeler does when the template is applied and its fields filled in: mark the
    element with the template and write each field's value (as entered, else the template's default)
    where its binding says. A binding this helper cannot write fails the test rather than being skipped."""
    properties = {prop["id"]: prop for prop in template["properties"]}
    scoped = {prop["id"]: prop for scope in template.get("scopes", []) for prop in scope["properties"]}
    assert set(entered) <= set(properties) | set(scoped), f"the template has no fields {set(entered) - set(properties)}"
    element.set(f"{{{CAMUNDA_NS}}}modelerTemplate", template["id"])
    element.set(f"{{{CAMUNDA_NS}}}modelerTemplateVersion", str(template["version"]))
    if scoped:
        _connector(element, scoped, entered)
    for prop_id, prop in properties.items():
        value = entered.get(prop_id, prop.get("value"))
        if value is None:
            continue
        check_input(prop, value)
        binding = prop["binding"]
        if binding["type"] == "camunda:property":
            _camunda_property(element, binding["name"], str(value))
            continue
        assert binding["type"] == "property", f"apply_template cannot write a {binding['type']} binding yet"
        prefix, _, local = binding["name"].rpartition(":")
        assert prefix in ("", "camunda"), f"unknown prefix in {binding['name']}"
        element.set(f"{{{CAMUNDA_NS}}}{local}" if prefix else local, str(value))


def _connector(element: etree._Element, properties: dict[str, dict[str, Any]], entered: dict[str, str]) -> None:
    """<camunda:connector><camunda:connectorId/><camunda:inputOutput> parameters, as the Modeler writes a
    camunda:Connector scope: an input parameter named by the binding holds the value; an output parameter named
    by the value holds the binding's source."""
    connector = etree.SubElement(_extensions(element), f"{{{CAMUNDA_NS}}}connector")
    mapping = etree.SubElement(connector, f"{{{CAMUNDA_NS}}}inputOutput")
    for prop_id, prop in properties.items():
        value, binding = entered.get(prop_id, prop.get("value")), prop["binding"]
        if value is None:
            continue
        check_input(prop, value)
        if binding == {"type": "property", "name": "connectorId"}:
            etree.SubElement(connector, f"{{{CAMUNDA_NS}}}connectorId").text = value
        elif binding["type"] == "camunda:inputParameter":
            etree.SubElement(mapping, f"{{{CAMUNDA_NS}}}inputParameter", name=binding["name"]).text = value
        else:
            assert binding["type"] == "camunda:outputParameter", f"_connector cannot write a {binding['type']}"
            etree.SubElement(mapping, f"{{{CAMUNDA_NS}}}outputParameter", name=value).text = binding["source"]
    connector.append(mapping)  # after the connectorId, as the Modeler orders them


def _extensions(element: etree._Element) -> etree._Element:
    extensions = element.find(f"{{{BPMN_NS}}}extensionElements")
    if extensions is None:
        extensions = etree.SubElement(element, f"{{{BPMN_NS}}}extensionElements")
        element.insert(0, extensions)
    return extensions


def _camunda_property(element: etree._Element, name: str, value: str) -> None:
    """<bpmn:extensionElements><camunda:properties><camunda:property name value/>, as the Modeler writes it."""
    extensions = _extensions(element)
    properties = extensions.find(f"{{{CAMUNDA_NS}}}properties")
    if properties is None:
        properties = etree.SubElement(extensions, f"{{{CAMUNDA_NS}}}properties")
    etree.SubElement(properties, f"{{{CAMUNDA_NS}}}property", name=name, value=value)


def check_input(prop: dict[str, Any], value: str) -> None:
    """Only what the properties panel accepts: a listed choice, or text that meets the constraints."""
    if prop.get("type") == "Dropdown":
        assert value in [choice["value"] for choice in prop["choices"]], f"{value!r} is not a choice of {prop['id']}"
    constraints = prop.get("constraints", {})
    assert value or not constraints.get("notEmpty"), f"{prop['id']} must not be empty"
    pattern = constraints.get("pattern")
    if pattern is not None:
        regex = pattern["value"] if isinstance(pattern, dict) else pattern
        assert re.search(regex, value), f"{value!r} does not match the pattern of {prop['id']}"


def with_template(xml: str, element_id: str, template_id: str, entered: dict[str, str]) -> str:
    xml = xml.replace("<bpmn:definitions ", f'<bpmn:definitions xmlns:camunda="{CAMUNDA_NS}" ', 1)
    root = etree.fromstring(xml.encode())
    [element] = root.xpath(f"//*[@id='{element_id}']")
    apply_template(element, TEMPLATES_BY_ID[template_id], entered)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8").decode()


def care_pathway(pid: str, entered: dict[str, str]) -> str:
    """start -> "Call patient" (a care task, in the Care Coordinator lane) -> end."""
    xml = d.definitions(d.process(
        pid, d.node("startEvent", "start"), d.node("userTask", "call", "Call patient"), d.node("endEvent", "end"),
        d.flow("f1", "start", "call"), d.flow("f2", "call", "end"), lanes={"Care Coordinator": ["call"]}))
    return with_template(xml, "call", CARE_TASK, entered)


def visit_pathway(pid: str, entered: dict[str, str]) -> str:
    """start -> wait for the visit (a message catch event as Camunda Modeler draws it) -> "Close episode" -> end."""
    catch = d.node("intermediateCatchEvent", "visit_done",
                   body='<bpmn:messageEventDefinition id="MessageEventDefinition_1"/>')
    xml = d.definitions(d.process(
        pid, d.node("startEvent", "start"), catch, d.node("userTask", "close", "Close episode"),
        d.node("endEvent", "end"), d.flow("f1", "start", "visit_done"), d.flow("f2", "visit_done", "close"),
        d.flow("f3", "close", "end")))
    return with_template(xml, "visit_done", WAIT_FOR_EVENT, entered)


def deploy(api: ApiClient, user: str, xml: str) -> str:
    deployed = api.deploy(user, ("pathway.bpmn", xml))
    assert deployed.status_code == 201, deployed.text
    return str(deployed.json()["processes"][0]["key"])


def _at(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


@pytest.mark.parametrize("template_id", sorted(TEMPLATES_BY_ID))
def test_each_template_is_a_camunda_7_element_template_carepath_can_use(template_id: str) -> None:
    assert template_problems(TEMPLATES_BY_ID[template_id]) == []


def test_the_care_task_and_wait_templates_are_there_for_their_elements() -> None:
    assert TEMPLATES_BY_ID[CARE_TASK]["appliesTo"] == ["bpmn:UserTask"]
    assert TEMPLATES_BY_ID[WAIT_FOR_EVENT]["appliesTo"] == ["bpmn:IntermediateCatchEvent"]


def test_a_care_task_from_the_template_is_offered_to_its_role_with_its_dates(
        api: ApiClient, clock: ManualClock) -> None:
    clock.set(FRIDAY_10AM)
    lead = api.user("clinical_lead")
    key = deploy(api, lead, care_pathway("care", {"role": "pharmacy", "dueIn": "P2BD", "followUp": "P1BD",
                                                  "priority": "75"}))
    started = api.start(lead, key).json()
    pharmacist, social_worker = api.user("coordinator", "pharmacy"), api.user("coordinator", "social-work")
    [task] = api.get("/api/tasks", pharmacist, params={"candidate": "me"}).json()["items"]
    assert task["instance_id"] == started["id"] and task["name"] == "Call patient"
    assert task["candidate_groups"] == ["care-coordinator", "pharmacy"]  # the lane's group and the role
    assert (task["assignee"], task["priority"]) == (None, 75)
    assert _at(task["due_date"]) == datetime(2026, 11, 24, 10, 0, tzinfo=NY)  # Tuesday: 2 business days
    assert _at(task["follow_up_date"]) == datetime(2026, 11, 23, 10, 0, tzinfo=NY)
    assert api.get("/api/tasks", social_worker).json()["items"] == []


def test_the_care_task_defaults_are_no_due_date_and_normal_priority(api: ApiClient) -> None:
    admin = api.user("admin")
    key = deploy(api, admin, care_pathway("defaults", {"role": "pharmacy", "assignee": "${patient.pcp}"}))
    [task] = api.start(admin, key, data={"patient": {"pcp": "dr-lee"}}).json()["open_tasks"]
    assert (task["assignee"], task["due_date"], task["follow_up_date"], task["priority"]) == ("dr-lee", None, None, 50)


def test_every_due_in_choice_gives_the_date_it_names(api: ApiClient, clock: ManualClock) -> None:
    choices = [choice["value"] for choice in field(CARE_TASK, "dueIn")["choices"]]
    assert sorted(choices) == sorted(DUE_FROM_FRIDAY_10AM)  # a new choice needs its expected date above
    admin = api.user("admin")
    for number, choice in enumerate(choices):
        clock.set(FRIDAY_10AM)
        key = deploy(api, admin, care_pathway(f"due{number}", {"role": "pharmacy", "dueIn": choice}))
        [task] = api.start(admin, key).json()["open_tasks"]
        assert _at(task["due_date"]) == DUE_FROM_FRIDAY_10AM[choice], choice


def test_a_catch_event_from_the_wait_template_takes_its_message_by_business_key(api: ApiClient) -> None:
    lead = api.user("clinical_lead")
    key = deploy(api, lead, visit_pathway("visit", {"messageName": "visit_completed"}))
    ana = api.start(lead, key, business_key="enc-1", patient_id="pat-1").json()
    bob = api.start(lead, key, business_key="enc-2", patient_id="pat-2").json()
    assert [(w["message_name"], w["correlation_key"]) for w in bob["waiting"]] == [("visit_completed", "enc-2")]

    def send(correlation_key: str) -> dict[str, Any]:
        sent = api.post("/api/messages", lead, {"name": "visit_completed", "correlation_key": correlation_key,
                                                "data": {"visit_date": "2026-03-06"}})
        assert sent.status_code == 200, sent.text
        return dict(sent.json())

    assert send("pat-2")["outcome"] == "buffered"  # the patient id is not what the catch waits for
    assert send("enc-2") == {"outcome": "delivered", "instance_ids": [bob["id"]], "message_id": None,
                             "expires_at": None}
    bob_now = api.get(f"/api/instances/{bob['id']}", lead).json()
    assert [t["name"] for t in bob_now["open_tasks"]] == ["Close episode"]
    assert bob_now["data"]["visit_done_Response"] == {"visit_date": "2026-03-06"}
    ana_now = api.get(f"/api/instances/{ana['id']}", lead).json()
    assert ana_now["open_tasks"] == [] and ana_now["waiting"][0]["message_name"] == "visit_completed"


def test_the_wait_template_refuses_message_names_that_would_not_match() -> None:
    name = field(WAIT_FOR_EVENT, "messageName")
    check_input(name, "visit_completed")
    for bad in ("", "visit completed", "visit_completed "):
        with pytest.raises(AssertionError):
            check_input(name, bad)


def test_the_templates_are_not_deployed_with_the_shipped_pathways(engine: CarePath) -> None:
    assert sorted(deploy_directory(engine, TEMPLATES.parent)) == [
        "post-ed-follow-up v1 (new)", "sdoh-screening-referral v1 (new)", "specialist-referral v1 (new)",
        "transition-of-care v1 (new)"]
    with engine.db.read() as session:
        uploaded = set(session.scalars(select(DeploymentFile.filename)))
    assert uploaded and not uploaded & {path.name for path in TEMPLATES.glob("*.json")}


def sms_pathway(pid: str, entered: dict[str, str]) -> str:
    """start -> "Send SMS" (a service task from the external task template) -> "Review" -> end."""
    xml = d.definitions(d.process(
        pid, d.node("startEvent", "start"), d.node("serviceTask", "send", "Send SMS"),
        d.node("userTask", "review", "Review"), d.node("endEvent", "end"), d.flow("f1", "start", "send"),
        d.flow("f2", "send", "review"), d.flow("f3", "review", "end")))
    return with_template(xml, "send", EXTERNAL_TASK, entered)


def test_a_service_task_from_the_external_task_template_waits_for_a_worker_of_its_topic(api: ApiClient) -> None:
    assert TEMPLATES_BY_ID[EXTERNAL_TASK]["appliesTo"] == ["bpmn:ServiceTask"]
    lead = api.user("clinical_lead")
    key = deploy(api, lead, sms_pathway("sms", {"topic": "send-sms", "variables": "phone, message", "priority": "50"}))
    started = api.start(lead, key, data={"phone": "+1555", "message": "Hi", "diagnosis": "CHF"}).json()
    assert started["open_tasks"] == []
    gateway = api.user("integration")
    [task] = api.post("/api/external-tasks/fetch-and-lock", gateway, {
        "worker_id": "w", "topics": [{"name": "send-sms", "lock_duration": 1000}]}).json()
    assert (task["instance_id"], task["priority"]) == (started["id"], 50)
    assert task["variables"] == {"message": "Hi", "phone": "+1555"}  # not the diagnosis
    assert api.post(f"/api/external-tasks/{task['id']}/complete", gateway, {"worker_id": "w"}).status_code == 204
