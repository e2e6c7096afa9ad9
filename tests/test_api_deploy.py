"""Deploying pathways over HTTP: validation, versioning, sources, retiring, permissions."""

from __future__ import annotations

from pathlib import Path

import pytest

from carepath.api.cli import main
from tests.support import diagrams as d
from tests.support.api import ApiClient


def test_deploy_lists_process_with_key_and_version(api: ApiClient) -> None:
    lead = api.user("clinical_lead")
    response = api.deploy(lead, ("follow-up.bpmn", d.linear_user_tasks("follow-up", "Call patient")))
    assert response.status_code == 201, response.text
    body = response.json()
    assert [(p["key"], p["version"], p["created"]) for p in body["processes"]] == [("follow-up", 1, True)]


def test_identical_content_returns_existing_version_and_changes_make_a_new_one(api: ApiClient) -> None:
    lead = api.user("clinical_lead")
    first = d.linear_user_tasks("fu", "Call patient")
    assert api.deploy(lead, ("fu.bpmn", first)).json()["processes"][0]["version"] == 1
    repeat = api.deploy(lead, ("fu.bpmn", first))
    assert repeat.status_code == 200  # nothing new was created
    again = repeat.json()["processes"][0]
    assert (again["version"], again["created"]) == (1, False)
    changed = api.deploy(lead, ("fu.bpmn", d.linear_user_tasks("fu", "Call patient", "Book visit")))
    assert changed.json()["processes"][0]["version"] == 2
    versions = api.get("/api/pathways/fu", lead).json()["versions"]
    assert [v["version"] for v in versions] == [1, 2]
    source = api.get("/api/pathways/fu/versions/1/bpmn", lead)
    assert source.status_code == 200 and source.content == first.encode()


def test_instances_stay_on_the_version_they_started_on(api: ApiClient) -> None:
    lead = api.user("clinical_lead")
    api.deploy(lead, ("fu.bpmn", d.linear_user_tasks("fu", "Call patient")))
    old = api.start(lead, "fu").json()
    api.deploy(lead, ("fu.bpmn", d.linear_user_tasks("fu", "Book visit")))
    new = api.start(lead, "fu").json()
    assert (old["version"], old["open_tasks"][0]["name"]) == (1, "Call patient")
    assert (new["version"], new["open_tasks"][0]["name"]) == (2, "Book visit")
    pinned = api.start(lead, "fu", version=1).json()
    assert pinned["version"] == 1


def test_retired_version_keeps_running_but_starts_nothing_new(api: ApiClient) -> None:
    lead = api.user("clinical_lead")
    coordinator = api.user("coordinator")
    api.deploy(lead, ("fu.bpmn", d.linear_user_tasks("fu", "Call patient")))
    running = api.start(lead, "fu").json()
    assert api.post("/api/pathways/fu/versions/1/retire", lead).status_code == 204
    refused = api.start(lead, "fu")
    assert refused.status_code == 409 and "retired" in refused.json()["message"]
    done = api.post(f"/api/tasks/{running['open_tasks'][0]['id']}/complete", coordinator, {"data": {}})
    assert done.status_code == 200 and done.json()["status"] == "completed"


def test_malformed_xml_is_refused_with_a_located_error(api: ApiClient) -> None:
    lead = api.user("clinical_lead")
    broken = d.linear_user_tasks("fu", "Call patient").replace("</bpmn:process>", "")
    response = api.deploy(lead, ("broken.bpmn", broken))
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert errors and errors[0]["file"] == "broken.bpmn" and errors[0]["line"]


def test_non_executable_process_is_refused_with_how_to_fix_it(api: ApiClient) -> None:
    lead = api.user("clinical_lead")
    xml = d.linear_user_tasks("fu", "Call patient").replace('isExecutable="true"', 'isExecutable="false"')
    response = api.deploy(lead, ("fu.bpmn", xml))
    assert response.status_code == 422
    message = " ".join(e["message"] for e in response.json()["errors"])
    assert "executable" in message.lower() and "fu" in message


def test_gateway_without_condition_names_element_and_line(api: ApiClient) -> None:
    lead = api.user("clinical_lead")
    xml = d.gateway_on("gw", "risk == 'high'").replace(' default="f_low"', "")
    response = api.deploy(lead, ("gw.bpmn", xml))
    assert response.status_code == 422, response.text
    error = response.json()["errors"][0]
    assert error["file"] == "gw.bpmn" and error["line"] and error["element_id"]


def test_deploy_needs_clinical_lead_or_admin(api: ApiClient) -> None:
    xml = d.linear_user_tasks("fu", "Call patient")
    assert api.deploy(api.user("coordinator"), ("fu.bpmn", xml)).status_code == 403
    assert api.deploy(api.user("auditor"), ("fu.bpmn", xml)).status_code == 403
    assert api.deploy(api.user("admin"), ("fu.bpmn", xml)).status_code == 201


def test_missing_or_bad_token_is_401(api: ApiClient) -> None:
    assert api.client.get("/api/pathways").status_code == 401
    bad = api.client.get("/api/pathways", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401 and "token" in bad.json()["message"]


def test_upload_without_files_is_422_not_500(api: ApiClient) -> None:
    lead = api.user("clinical_lead")
    response = api.client.post("/api/pathways", headers=api.headers(lead))
    assert response.status_code == 422


def test_unknown_pathway_and_version_are_404(api: ApiClient) -> None:
    lead = api.user("clinical_lead")
    assert api.get("/api/pathways/nope", lead).status_code == 404
    assert api.get("/api/pathways/nope/versions/1/bpmn", lead).status_code == 404
    assert api.start(lead, "nope").status_code == 404


def test_code_that_cannot_run_is_refused_at_deploy_with_its_line(api: ApiClient) -> None:
    lead = api.user("clinical_lead")
    juel = api.deploy(lead, ("gw.bpmn", d.gateway_on("gw", "${riskService.score(patient) > 5}")))  # a Java bean
    assert juel.status_code == 422
    [error] = juel.json()["errors"]
    assert error["element_id"] == "f_high" and error["line"]
    assert "JUEL expression '${riskService.score(patient) > 5}' uses 'riskService.score(patient)" in error["message"]
    script = api.deploy(lead, ("s.bpmn", d.script_then_task("s", "import os\nos.system('id')")))
    assert script.status_code == 422 and script.json()["errors"][0]["element_id"] == "script"
    for script_format in ("text/python", "Python", "application/x-unknown"):  # every format runs as Python
        xml = d.script_then_task("sf", "import os").replace(
            '<bpmn:scriptTask id="script"', f'<bpmn:scriptTask id="script" scriptFormat="{script_format}"')
        formatted = api.deploy(lead, ("sf.bpmn", xml))
        assert formatted.status_code == 422, (script_format, formatted.text)
    timer = api.deploy(lead, ("t.bpmn", d.boundary_timers("t", reminder="in two days")))
    assert timer.status_code == 422 and "ISO 8601" in timer.json()["errors"][0]["message"]


def test_too_large_upload_is_413(api: ApiClient) -> None:
    lead = api.user("clinical_lead")
    limit = api.client.app.state.settings.max_upload_bytes  # type: ignore[attr-defined]
    response = api.deploy(lead, ("big.bpmn", b"<" + b"x" * limit))
    assert response.status_code == 413 and "too large" in response.json()["message"]


def test_a_duration_written_as_a_timer_date_is_refused_at_deploy(api: ApiClient) -> None:
    lead = api.user("clinical_lead")
    refused = api.deploy(lead, ("td.bpmn", d.boundary_timers("td", escalation="P7D", escalation_kind="timeDate")))
    assert refused.status_code == 422, refused.text
    assert "Duration" in refused.json()["errors"][0]["message"]
    relative = d.boundary_timers("td", escalation="P7D after ed_visit_date", escalation_kind="timeDate")
    assert api.deploy(lead, ("td.bpmn", relative)).status_code == 201


def test_an_event_subprocess_started_by_a_message_is_refused_with_a_way_out(api: ApiClient) -> None:
    body = ('<bpmn:subProcess id="esp" name="On readmission" triggeredByEvent="true">'
            '<bpmn:startEvent id="es"><bpmn:messageEventDefinition messageRef="Msg_readmission"/></bpmn:startEvent>'
            '<bpmn:userTask id="handle" name="Handle readmission"/><bpmn:endEvent id="ee"/>'
            '<bpmn:sequenceFlow id="g1" sourceRef="es" targetRef="handle"/>'
            '<bpmn:sequenceFlow id="g2" sourceRef="handle" targetRef="ee"/></bpmn:subProcess>')
    xml = d.definitions(d.process("ev", d.node("startEvent", "s"), d.node("userTask", "work", "Work"),
                                  d.node("endEvent", "e"), d.flow("f1", "s", "work"), d.flow("f2", "work", "e"), body),
                        messages=("readmission",))
    refused = api.deploy(api.user("clinical_lead"), ("ev.bpmn", xml))
    assert refused.status_code == 422, refused.text
    [problem] = [p for p in refused.json()["errors"] if p["element_id"] == "esp"]
    assert "message boundary event" in problem["message"]
    timer_started = xml.replace('<bpmn:messageEventDefinition messageRef="Msg_readmission"/>',
                                '<bpmn:timerEventDefinition><bpmn:timeDuration>P7D</bpmn:timeDuration>'
                                '</bpmn:timerEventDefinition>')
    assert api.deploy(api.user("clinical_lead"), ("ev.bpmn", timer_started)).status_code == 201


def test_a_modeler_default_process_id_is_warned_about_and_the_pool_names_the_pathway(
        api: ApiClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lead = api.user("clinical_lead")
    pool = ('<bpmn:collaboration id="Collaboration_1"><bpmn:participant id="Participant_1" '
            'name="Wound care  follow-up" processRef="Process_1"/></bpmn:collaboration>')
    xml = d.linear_user_tasks("Process_1", "Check wound").replace("<bpmn:process ", pool + "<bpmn:process ", 1)
    first = api.deploy(lead, ("wound.bpmn", xml))
    assert first.status_code == 201 and first.json()["processes"][0]["name"] == "Wound care follow-up"
    [warning] = [w for w in first.json()["warnings"] if "Process_1" in w["message"]]
    assert "id the modeler gives every new diagram" in warning["message"] and warning["line"]
    other = api.deploy(lead, ("other.bpmn", d.linear_user_tasks("Process_1", "Call patient")))
    assert other.json()["processes"][0]["version"] == 2
    assert any("no name" in w["message"] and "already deployed" in w["message"] for w in other.json()["warnings"])
    (tmp_path / "wound.bpmn").write_text(xml)
    assert main(["validate", "--offline", str(tmp_path / "wound.bpmn")]) == 0
    assert "wound.bpmn, line 2, Process_1: Process 'Process_1' has the id" in capsys.readouterr().out
    assert not any("Process_1" in w["message"] for w in api.deploy(
        lead, ("fu.bpmn", d.linear_user_tasks("fu", "Call"))).json()["warnings"])


def test_a_pathway_uploaded_under_a_non_latin_name_downloads_under_it(api: ApiClient) -> None:
    from urllib.parse import unquote

    from tests.test_task_assignment import camunda_task

    lead = api.user("clinical_lead")
    assert api.deploy(lead, ("パス-é.bpmn", camunda_task("kana", candidateGroups="pharmacy"))).status_code == 201
    response = api.get("/api/pathways/kana/versions/1/bpmn", lead)
    assert response.status_code == 200 and b"kana" in response.content
    disposition = response.headers["content-disposition"]
    fallback, encoded = disposition.split("; filename*=UTF-8''")
    assert fallback == 'inline; filename="__-e.bpmn"' and unquote(encoded) == "パス-é.bpmn"


def test_a_download_name_carries_no_path_quotes_or_control_characters() -> None:
    from carepath.api.attachments import content_disposition

    assert content_disposition("inline", '..\\x/"evil"\r\n;name.bpmn') == 'inline; filename="evilname.bpmn"'
    assert content_disposition("inline", "\x00", "kana.bpmn") == 'inline; filename="kana.bpmn"'
