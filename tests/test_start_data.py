"""A pathway declares the data it needs to start (its start event's form or its sidecar's start_data);
every start that lacks or mistypes it answers 422 naming each field, and nothing is stored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from carepath.api.cli import main
from carepath.api.settings import shipped_pathways_dir
from carepath.engine.forms import form_problems
from carepath.engine.persistence.tables import Event, Instance
from tests.support import diagrams as d
from tests.support.api import ApiClient

CAMUNDA = 'xmlns:camunda="http://camunda.org/schema/1.0/bpmn"'
SPIFF = 'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"'
SCHEMA = {"type": "object", "required": ["visit_date"],
          "properties": {"visit_date": {"type": "string", "format": "date"}, "count": {"type": "integer"}}}


def _stored(api: ApiClient) -> tuple[int, int]:
    with api.engine.db.read() as session:
        return (session.scalar(select(func.count()).select_from(Instance)) or 0,
                session.scalar(select(func.count()).select_from(Event).where(Event.instance_id.is_not(None))) or 0)


def _with_start(pid: str, start_body: str, namespace: str) -> str:
    xml = d.definitions(d.process(
        pid, d.node("startEvent", "start", body=start_body), d.node("userTask", "task_0", "Follow up"),
        d.node("endEvent", "end"), d.flow("f1", "start", "task_0"), d.flow("f2", "task_0", "end")))
    return xml.replace("<bpmn:definitions ", f"<bpmn:definitions {namespace} ", 1)


def test_the_readme_start_without_its_data_answers_422_naming_each_field_and_stores_nothing(
        shipped: ApiClient) -> None:
    lead = shipped.user("clinical_lead")
    refused = shipped.start(lead, "post-ed-follow-up", data={"ed_visit_date": "2026-11-20",
                                                            "high_risk_chronic_conditions": "two"})
    assert refused.status_code == 422, refused.text
    fields = {e["field"] for e in refused.json()["errors"]}
    assert fields == {"diagnosis_category", "high_risk_chronic_conditions"}
    assert "post-ed-follow-up" in refused.json()["message"]
    assert _stored(shipped) == (0, 0)
    readme = {"ed_visit_date": "2026-11-20", "diagnosis_category": "mental_illness", "high_risk_chronic_conditions": 0}
    started = shipped.start(lead, "post-ed-follow-up", "enc-1001", patient_id="pat-42", data=readme)
    assert started.status_code == 201 and started.json()["status"] == "running"
    schema = shipped.get("/api/pathways/post-ed-follow-up", lead).json()["versions"][0]["start_data"]
    # high_risk_chronic_conditions is the intake's (an ADT start cannot carry it): typed, not required
    assert schema["required"] == ["ed_visit_date", "diagnosis_category"]


@pytest.mark.parametrize("name", ["post-ed-follow-up", "sdoh-screening-referral", "specialist-referral",
                                  "transition-of-care"])
def test_each_shipped_pathway_declares_its_start_data_and_its_example_fits(name: str) -> None:
    sidecar = json.loads((shipped_pathways_dir() / f"{name}.pathway.json").read_text())
    assert sidecar["start_data"]["required"]
    assert form_problems(sidecar["start_data"], sidecar["example_data"]) == []
    assert form_problems(sidecar["start_data"], {}) != []


def test_a_camunda_start_form_is_the_start_data_and_allows_other_fields(api: ApiClient) -> None:
    lead = api.user("clinical_lead")
    form = ('<bpmn:extensionElements><camunda:formData><camunda:formField id="visit_date" type="date">'
            '<camunda:validation><camunda:constraint name="required"/></camunda:validation></camunda:formField>'
            '<camunda:formField id="count" type="long"/></camunda:formData></bpmn:extensionElements>')
    assert api.deploy(lead, ("cs.bpmn", _with_start("cs", form, CAMUNDA))).status_code == 201
    refused = api.start(lead, "cs", data={"count": "3", "ward": "4B"})
    assert refused.status_code == 422
    assert [(e["field"], e["message"]) for e in refused.json()["errors"]] == [
        ("count", "'count': '3' is not of type 'integer'"), ("visit_date", "'visit_date' is required")]
    assert api.start(lead, "cs", data={"visit_date": "2026-03-02", "ward": "4B"}).status_code == 201


def test_a_spiff_arena_start_form_file_is_the_start_data(api: ApiClient) -> None:
    lead = api.user("clinical_lead")
    body = ('<bpmn:extensionElements><spiffworkflow:properties><spiffworkflow:property '
            'name="formJsonSchemaFilename" value="start-form.json"/></spiffworkflow:properties>'
            "</bpmn:extensionElements>")
    xml = _with_start("ss", body, SPIFF)
    missing = api.deploy(lead, ("ss.bpmn", xml))
    assert missing.status_code == 422 and "start-form.json" in missing.json()["errors"][0]["message"]
    assert api.deploy(lead, ("ss.bpmn", xml), ("start-form.json", json.dumps(SCHEMA))).status_code == 201
    assert [e["field"] for e in api.start(lead, "ss", data={}).json()["errors"]] == ["visit_date"]


def test_a_message_start_lacking_the_data_is_refused_and_starts_nothing(api: ApiClient) -> None:
    lead = api.user("clinical_lead")
    sidecar = json.dumps({"start_data": SCHEMA})
    assert api.deploy(lead, ("ms.bpmn", d.message_start("ms", "referral_received")),
                      ("ms.pathway.json", sidecar)).status_code == 201
    refused = api.post("/api/messages", lead, {"name": "referral_received", "correlation_key": "r-1",
                                                "data": {"visit_date": "soon"}})
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["field"] == "visit_date" and "date" in refused.json()["errors"][0]["message"]
    assert _stored(api) == (0, 0)
    started = api.post("/api/messages", lead, {"name": "referral_received", "correlation_key": "r-1",
                                               "data": {"visit_date": "2026-03-02"}})
    assert started.status_code == 200 and started.json()["outcome"] == "started"


def test_a_bad_start_data_schema_or_example_is_refused_at_deploy_and_by_validate(
        api: ApiClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lead = api.user("clinical_lead")
    xml = d.linear_user_tasks("fu", "Follow up")
    cases = {"not a schema": {"start_data": {"type": "object", "required": "visit_date"}},
             "example does not fit": {"start_data": SCHEMA, "example_data": {"count": 1}},
             "not an object": {"start_data": {"type": "array"}}}
    messages = []
    for sidecar in cases.values():
        refused = api.deploy(lead, ("fu.bpmn", xml), ("fu.pathway.json", json.dumps(sidecar)))
        assert refused.status_code == 422, refused.text
        messages.append(refused.json()["errors"][0]["message"])
    assert "not a valid JSON Schema" in messages[0]
    assert "example_data" in messages[1] and "'visit_date' is required" in messages[1]
    assert "JSON object" in messages[2]
    (tmp_path / "fu.bpmn").write_text(xml)
    (tmp_path / "fu.pathway.json").write_text(json.dumps(cases["example does not fit"]))
    assert main(["validate", "--offline", str(tmp_path / "fu.bpmn")]) == 1
    assert "'visit_date' is required" in capsys.readouterr().err
