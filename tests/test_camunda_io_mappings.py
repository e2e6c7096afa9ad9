"""Camunda input/output parameters through the API: a worker fetches an external task's input parameters and
its result is mapped into the episode's data; a user task's form shows its input parameters, and its output
parameters reach the episode's data. The inputs are the task's own: the episode's data never keeps them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from carepath.api.cli import main
from carepath.engine.caches import LRUCache
from tests.support import diagrams as d
from tests.support.api import ApiClient

CAMUNDA = 'xmlns:camunda="http://camunda.org/schema/1.0/bpmn"'


def io(*parameters: str, form: str = "") -> str:
    return (f"<bpmn:extensionElements>{form}<camunda:inputOutput>" + "".join(parameters)
            + "</camunda:inputOutput></bpmn:extensionElements>")


def param(kind: str, name: str, value: str) -> str:
    return f'<camunda:{kind}Parameter name="{name}">{value}</camunda:{kind}Parameter>'


def mapped_pathway() -> str:
    """start -> 'Send SMS' (topic send-sms; inputs phone, text; output sms_status) -> 'Call' (input greeting,
    output follow_up; a form with greeting and answered) -> end."""
    sms = io(param("input", "phone", "${patient.phone}"), param("input", "text", "Your visit is due"),
             param("output", "sms_status", "${status == 'sent' ? 'delivered' : 'failed'}"))
    form = ('<camunda:formData><camunda:formField id="greeting" type="string"/>'
            '<camunda:formField id="answered" type="boolean"/></camunda:formData>')
    call = io(param("input", "greeting", "${'Hello ' + patient.name}"),
              param("output", "follow_up", "${answered ? 'none' : 'call again'}"), form=form)
    xml = d.definitions(d.process(
        "sms-mapped", d.node("startEvent", "start"),
        d.node("serviceTask", "send", "Send SMS", body=sms,
               **{"camunda:type": "external", "camunda:topic": "send-sms"}),
        d.node("userTask", "call", "Call", body=call), d.node("endEvent", "end"),
        d.flow("f1", "start", "send"), d.flow("f2", "send", "call"), d.flow("f3", "call", "end")))
    return xml.replace('xmlns:xsi=', f'{CAMUNDA} xmlns:xsi=', 1)


def instance(api: ApiClient, instance_id: str) -> dict[str, Any]:
    return dict(api.get(f"/api/instances/{instance_id}", api.user("admin")).json())


def test_inputs_reach_the_worker_and_the_form_and_outputs_reach_the_episode(api: ApiClient) -> None:
    api.engine.workflows = LRUCache(0)  # every step restores the workflow from the database
    lead = api.user("clinical_lead")
    assert api.deploy(lead, ("sms.bpmn", mapped_pathway())).status_code == 201
    started = api.start(lead, "sms-mapped", "visit-1", data={"patient": {"phone": "+1555", "name": "Ana"}})
    assert started.status_code == 201, started.text
    instance_id = started.json()["id"]
    gateway = api.user("integration", name="sms-gateway")
    fetched = api.post("/api/external-tasks/fetch-and-lock", gateway, {
        "worker_id": "w1", "topics": [{"name": "send-sms", "lock_duration": 60_000}], "max_tasks": 1})
    [task] = fetched.json()
    assert task["variables"]["phone"] == "+1555" and task["variables"]["text"] == "Your visit is due"
    done = api.post(f"/api/external-tasks/{task['id']}/complete", gateway,
                    {"worker_id": "w1", "variables": {"status": "sent"}})
    assert done.status_code == 204, done.text
    view = instance(api, instance_id)
    assert view["data"]["sms_status"] == "delivered" and "phone" not in view["data"] and "text" not in view["data"]
    [call] = view["open_tasks"]
    form = api.get(f"/api/tasks/{call['id']}/form", lead)
    assert form.status_code == 200 and form.json()["data"] == {"greeting": "Hello Ana"}
    assert api.post(f"/api/tasks/{call['id']}/complete", lead, {"data": {"answered": False}}).status_code == 200
    data = instance(api, instance_id)["data"]
    assert data["follow_up"] == "call again" and "greeting" not in data


def test_validate_lists_each_parameter_as_written_and_as_evaluated(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "sms.bpmn"
    path.write_text(mapped_pathway())
    assert main(["validate", "--offline", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"input parameter: {path}, line 2, send: phone = ${{patient.phone}} -> patient.phone" in out
    assert f"output parameter: {path}, line 2, call: follow_up = ${{answered ? 'none' : 'call again'}} -> " \
           "'none' if answered else 'call again'" in out
