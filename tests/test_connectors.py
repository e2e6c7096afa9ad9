"""Built-in connectors: an HTTP request, a FHIR create/update, a notification, declared as Camunda 8 connector
templates or Camunda 7 Connect. The deploy refuses a URL outside the configured destinations; the call goes out
from CarePath's own deliverer after the step is committed, retries on the product's clock, fails into an
incident, and its response is mapped into the episode's data. Every step restores the workflow from the database."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from carepath.api.connector_http import ConnectorHttp
from carepath.engine.application import CarePath
from carepath.engine.caches import LRUCache
from carepath.engine.clock import ManualClock
from carepath.engine.connector_destinations import Destination
from carepath.engine.persistence.database import Database
from carepath.engine.persistence.external_task_tables import ExternalTask
from carepath.engine.persistence.tables import NotificationRecord, PathwayVersion
from carepath.engine.usecases.connector_calls import deliver_connector_calls, next_connector_time
from tests.support import diagrams as d
from tests.support.api import ApiClient
from tests.support.together import run_until_idle_together

ZEEBE = 'xmlns:zeebe="http://camunda.org/schema/zeebe/1.0"'
CAMUNDA = 'xmlns:camunda="http://camunda.org/schema/1.0/bpmn"'
LAB = Destination("lab", "https://lab.example.org/api", "LAB_TOKEN", {"X-Site": "north"})
FHIR = Destination("fhir", "https://fhir.example.org/r4")


def pathway(service_task: str, namespace: str, pid: str = "lab-order") -> str:
    """start -> the connector task -> 'Review' -> end."""
    elements = [d.node("startEvent", "start"), service_task, d.node("userTask", "review", "Review"),
                d.node("endEvent", "end"), d.flow("f1", "start", "call"), d.flow("f2", "call", "review"),
                d.flow("f3", "review", "end")]
    return d.definitions(d.process(pid, *elements)).replace("xmlns:xsi=", f"{namespace} xmlns:xsi=", 1)


def zeebe_task(kind: str, inputs: dict[str, str], headers: dict[str, str] | None = None, retries: str = "3") -> str:
    mapping = "".join(f'<zeebe:input source="{value}" target="{target}"/>' for target, value in inputs.items())
    header_xml = "".join(f'<zeebe:header key="{k}" value="{v}"/>' for k, v in (headers or {}).items())
    return d.node("serviceTask", "call", "Order the test", body=(
        f'<bpmn:extensionElements><zeebe:taskDefinition type="{kind}" retries="{retries}"/>'
        f"<zeebe:ioMapping>{mapping}</zeebe:ioMapping><zeebe:taskHeaders>{header_xml}</zeebe:taskHeaders>"
        "</bpmn:extensionElements>"))


def http_json(url: str = "https://lab.example.org/api/orders", **extra: str) -> str:
    inputs = {"method": "POST", "url": url, "body": "={test: &quot;CBC&quot;, patient: patient}",
              "authentication.type": "noAuth", "connectionTimeoutInSeconds": "20", **extra}
    return zeebe_task("io.camunda:http-json:1", inputs, {"resultVariable": "order", "resultExpression":
                                                         "={orderId: response.body.id, placed: response.status}",
                                                         "retryBackoff": "PT10S"})


def camunda7_task(connector: str, inputs: str, outputs: str = "") -> str:
    return d.node("serviceTask", "call", "Order the test", body=(
        f"<bpmn:extensionElements><camunda:connector><camunda:connectorId>{connector}</camunda:connectorId>"
        f"<camunda:inputOutput>{inputs}{outputs}</camunda:inputOutput></camunda:connector>"
        "</bpmn:extensionElements>"))


def parameter(name: str, value: str, kind: str = "input") -> str:
    return f'<camunda:{kind}Parameter name="{name}">{value}</camunda:{kind}Parameter>'


class Recorder:
    """A fake remote server behind httpx's MockTransport: answers from a list, records every request."""

    def __init__(self, *answers: httpx.Response) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answers.pop(0)


@pytest.fixture
def api(api: ApiClient) -> ApiClient:
    api.engine.workflows = LRUCache(0)
    api.engine.config = replace(api.engine.config, connector_destinations={"lab": LAB, "fhir": FHIR})
    return api


def use(api: ApiClient, handler: Callable[[httpx.Request], httpx.Response]) -> None:
    api.engine.connector_sender = ConnectorHttp(transport=httpx.MockTransport(handler),
                                                environment={"LAB_TOKEN": "s3cret"})


def started(api: ApiClient, xml: str, data: dict[str, Any] | None = None) -> str:
    lead = api.user("clinical_lead")
    deployed = api.deploy(lead, ("lab.bpmn", xml))
    assert deployed.status_code == 201, deployed.text
    response = api.start(lead, "lab-order", "visit-1", data=data or {"patient": "p-1"})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def view(api: ApiClient, instance_id: str) -> dict[str, Any]:
    return dict(api.get(f"/api/instances/{instance_id}", api.user("admin")).json())


def refusal(api: ApiClient, xml: str) -> str:
    response = api.deploy(api.user("clinical_lead"), ("lab.bpmn", xml))
    assert response.status_code == 422, response.text
    return json.dumps(response.json())


def test_an_http_call_goes_out_after_the_step_is_committed_and_its_response_is_mapped(api: ApiClient) -> None:
    server = Recorder(httpx.Response(201, json={"id": "ord-7", "status": "placed"}))
    use(api, server)
    instance_id = started(api, pathway(http_json(), ZEEBE))
    assert server.requests == []  # nothing is sent inside the episode's transaction
    assert view(api, instance_id)["status"] == "running"
    assert deliver_connector_calls(api.engine) == 1
    [sent] = server.requests
    assert (sent.method, str(sent.url)) == ("POST", "https://lab.example.org/api/orders")
    assert json.loads(sent.content) == {"test": "CBC", "patient": "p-1"}
    assert sent.headers["Authorization"] == "Bearer s3cret" and sent.headers["X-Site"] == "north"
    assert sent.headers["Idempotency-Key"].startswith("carepath-connector-")
    data = view(api, instance_id)["data"]
    assert data["order"]["body"] == {"id": "ord-7", "status": "placed"} and data["order"]["status"] == 201
    assert (data["orderId"], data["placed"]) == ("ord-7", 201)
    assert not {"response", "url", "method", "body", "carepath.connector"} & set(data)  # locals are gone
    [task] = api.get("/api/tasks", api.user("admin"), params={"instance_id": instance_id}).json()["items"]
    assert task["name"] == "Review"  # the episode went on
    assert deliver_connector_calls(api.engine) == 0  # sent once


def test_a_failing_call_is_retried_after_a_backoff_on_the_products_clock(api: ApiClient, clock: ManualClock) -> None:
    server = Recorder(httpx.Response(503), httpx.Response(200, json={"id": "ord-8"}))
    use(api, server)
    instance_id = started(api, pathway(http_json(), ZEEBE))
    assert deliver_connector_calls(api.engine) == 1
    assert deliver_connector_calls(api.engine) == 0  # waits for its backoff (PT10S)
    clock.advance(timedelta(seconds=11))
    assert deliver_connector_calls(api.engine) == 1
    assert len(server.requests) == 2 and view(api, instance_id)["data"]["orderId"] == "ord-8"
    [first, second] = server.requests
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]


def test_exhausted_retries_and_a_4xx_are_incidents_that_can_be_retried(api: ApiClient, clock: ManualClock) -> None:
    server = Recorder(httpx.Response(500), httpx.Response(502), httpx.Response(404, text="no such test"))
    use(api, server)
    instance_id = started(api, pathway(http_json().replace('retries="3"', 'retries="2"'), ZEEBE))
    deliver_connector_calls(api.engine)
    clock.advance(timedelta(seconds=11))
    deliver_connector_calls(api.engine)
    shown = view(api, instance_id)
    assert shown["status"] == "incident" and "answered 502" in shown["incident"]["message"]
    assert "the last allowed" in shown["incident"]["message"] and shown["incident"]["element_id"] == "call"
    assert api.post(f"/api/instances/{instance_id}/retry", api.user("clinical_lead"), {}).status_code == 200
    assert deliver_connector_calls(api.engine) == 1
    shown = view(api, instance_id)
    assert shown["status"] == "incident" and "answered 404" in shown["incident"]["message"]  # no retry of a 4xx
    assert len(server.requests) == 3


def test_a_destination_removed_after_the_deploy_makes_the_call_an_incident(api: ApiClient) -> None:
    server = Recorder()
    use(api, server)
    instance_id = started(api, pathway(http_json(), ZEEBE))
    api.engine.config = replace(api.engine.config, connector_destinations={"fhir": FHIR})
    deliver_connector_calls(api.engine)
    shown = view(api, instance_id)
    assert shown["status"] == "incident" and "CAREPATH_CONNECTOR_DESTINATIONS" in shown["incident"]["message"]
    assert server.requests == []


@pytest.mark.parametrize(("xml", "expected"), [
    (http_json("https://evil.example.com/orders"), "is under no destination of CAREPATH_CONNECTOR_DESTINATIONS"),
    (http_json("https://lab.example.org/other"), "is under no destination"),
    (http_json("https://lab.example.org.evil.com/api/x"), "is under no destination"),
    (http_json("https://lab.example.org/api/../admin"), "'..' segment"),
    (http_json("=baseUrl"), "its url is an expression"),
    (http_json(**{"authentication.type": "bearer"}), "credentials never sit in a diagram"),
    (zeebe_task("io.camunda:http-json:1", {"url": "https://lab.example.org/api/x"}), "no input 'method'"),
    (zeebe_task("carepath:fhir:1", {"operation": "update", "resourceType": "Task", "resource": "=task"}),
     "an update needs the input 'resourceId'"),
    (zeebe_task("carepath:notification:1", {"recipients": "team:x", "title": "t", "message": "m"}),
     "is not group:NAME, user:NAME or role:NAME"),
    (http_json().replace("PT10S", "soon"), "retryBackoff 'soon' is not a duration"),
    (http_json().replace("</bpmn:extensionElements>", "</bpmn:extensionElements>"
                         '<bpmn:multiInstanceLoopCharacteristics isSequential="true"/>'), "repeats"),
])
def test_the_deploy_refuses_a_connector_it_cannot_run_and_says_where(api: ApiClient, xml: str, expected: str) -> None:
    refused = refusal(api, pathway(xml, ZEEBE))
    assert expected in refused and "Order the test" in refused


def test_a_fhir_connector_needs_a_configured_server(api: ApiClient) -> None:
    api.engine.config = replace(api.engine.config, connector_destinations={"lab": LAB})
    xml = zeebe_task("carepath:fhir:1", {"operation": "create", "resourceType": "Task", "resource": "=task"})
    assert "add a destination named 'fhir'" in refusal(api, pathway(xml, ZEEBE))


def test_a_camunda7_http_connector_runs_with_its_output_parameters(api: ApiClient) -> None:
    server = Recorder(httpx.Response(200, json={"slot": "09:30"}, headers={"X-Trace": "t1"}))
    use(api, server)
    inputs = (parameter("url", "https://lab.example.org/api/slots") + parameter("method", "POST")
              + parameter("headers", '<camunda:map><camunda:entry key="Accept">application/json</camunda:entry>'
                                     "</camunda:map>")
              + parameter("payload", "${patient}"))
    outputs = (parameter("booking", "${response}", "output") + parameter("code", "${statusCode}", "output"))
    instance_id = started(api, pathway(camunda7_task("http-connector", inputs, outputs), CAMUNDA))
    deliver_connector_calls(api.engine)
    [sent] = server.requests
    assert sent.headers["Accept"] == "application/json" and sent.content == b"p-1"
    data = view(api, instance_id)["data"]
    assert (data["booking"], data["code"]) == ({"slot": "09:30"}, 200)
    assert not {"response", "statusCode", "headers", "payload"} & set(data)


def test_fhir_create_and_update_map_the_id_and_version_back(api: ApiClient) -> None:
    server = Recorder(httpx.Response(201, json={"resourceType": "Task", "id": "t-9", "meta": {"versionId": "1"}}),
                      httpx.Response(200, headers={"Location": "https://fhir.example.org/r4/Task/t-9/_history/2"}))
    use(api, server)
    create = zeebe_task("carepath:fhir:1", {"operation": "create", "resourceType": "Task",
                                            "resource": "={status: &quot;requested&quot;, intent: &quot;order&quot;}"},
                        {"resultExpression": "={taskId: response.id, taskVersion: response.versionId}"})
    update = d.node("serviceTask", "update", "Update the task", body=(
        '<bpmn:extensionElements><zeebe:taskDefinition type="carepath:fhir:1"/><zeebe:ioMapping>'
        '<zeebe:input source="update" target="operation"/><zeebe:input source="Task" target="resourceType"/>'
        '<zeebe:input source="=taskId" target="resourceId"/>'
        '<zeebe:input source="={status: &quot;completed&quot;, intent: &quot;order&quot;}" target="resource"/>'
        '</zeebe:ioMapping><zeebe:taskHeaders><zeebe:header key="resultVariable" value="updated"/>'
        "</zeebe:taskHeaders></bpmn:extensionElements>"))
    xml = pathway(create, ZEEBE).replace('<bpmn:sequenceFlow id="f2" sourceRef="call" targetRef="review"/>',
                                         update + '<bpmn:sequenceFlow id="f2" sourceRef="call" targetRef="update"/>'
                                         '<bpmn:sequenceFlow id="f4" sourceRef="update" targetRef="review"/>')
    instance_id = started(api, xml)
    assert deliver_connector_calls(api.engine) == 2  # the update is reached once the create completed
    created, updated = server.requests
    assert (created.method, str(created.url)) == ("POST", "https://fhir.example.org/r4/Task")
    assert json.loads(created.content) == {"resourceType": "Task", "status": "requested", "intent": "order"}
    assert (updated.method, str(updated.url)) == ("PUT", "https://fhir.example.org/r4/Task/t-9")
    assert json.loads(updated.content)["id"] == "t-9" and created.headers["Content-Type"] == "application/fhir+json"
    data = view(api, instance_id)["data"]
    assert (data["taskId"], data["taskVersion"]) == ("t-9", "1")
    assert (data["updated"]["id"], data["updated"]["versionId"]) == ("t-9", "2")


def test_a_notification_connector_writes_notifications_and_completes_in_one_step(api: ApiClient) -> None:
    inputs = (parameter("recipients", "group:nurses, user:dr-lee, role:admin") + parameter("title", "Lab result")
              + parameter("message", "${'Result for ' + patient}"))
    instance_id = started(api, pathway(camunda7_task("carepath-notification", inputs), CAMUNDA))
    assert deliver_connector_calls(api.engine) == 1  # no sender needed: it only writes rows
    with api.engine.db.read() as session:
        [row] = session.scalars(select(NotificationRecord).where(NotificationRecord.instance_id == instance_id))
        assert (row.kind, row.subject, list(row.recipients)) == (
            "connector", "Lab result", ["group:nurses", "user:dr-lee", "role:admin"])
        assert row.payload["message"] == "Result for p-1"
        [call] = session.scalars(select(ExternalTask).where(ExternalTask.instance_id == instance_id))
        assert call.state == "completed"
    assert view(api, instance_id)["status"] == "running"
    [task] = api.get("/api/tasks", api.user("admin"), params={"instance_id": instance_id}).json()["items"]
    assert task["name"] == "Review"


def test_outside_workers_cannot_fetch_the_connectors_topics(api: ApiClient) -> None:
    started(api, pathway(http_json(), ZEEBE))
    response = api.post("/api/external-tasks/fetch-and-lock", api.user("integration"), {
        "worker_id": "w", "topics": [{"name": "carepath.connector.http", "lock_duration": 1000}], "max_tasks": 1})
    assert response.status_code == 422 and "reserved" in response.text


@pytest.mark.postgres_only
def test_two_deliverers_never_send_the_same_call_twice(api: ApiClient, database_url: str,
                                                       clock: ManualClock) -> None:
    sent: list[str] = []
    lock = threading.Lock()

    def answer(request: httpx.Request) -> httpx.Response:
        with lock:
            sent.append(request.headers["Idempotency-Key"])
        return httpx.Response(200, json={"id": "x"})

    lead = api.user("clinical_lead")
    assert api.deploy(lead, ("lab.bpmn", pathway(http_json(), ZEEBE))).status_code == 201
    for n in range(12):
        assert api.start(lead, "lab-order", f"visit-{n}", data={"patient": f"p-{n}"}).status_code == 201
    deliverers = []
    for _ in range(2):
        other = CarePath(Database(database_url), clock, api.engine.config)
        other.connector_sender = ConnectorHttp(transport=httpx.MockTransport(answer),
                                               environment={"LAB_TOKEN": "t"})
        deliverers.append(other)
    run_until_idle_together(deliverers, lambda app: deliver_connector_calls(app, limit=3))
    assert len(sent) == 12 and len(set(sent)) == 12
    with api.engine.db.read() as session:
        states = session.scalars(select(ExternalTask.state)).all()
    assert list(states) == ["completed"] * 12
    for app in deliverers:
        app.db.dispose()


class LabHandler(BaseHTTPRequestHandler):
    answers: list[int] = []
    seen: list[tuple[str, bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).seen.append((self.path, body))
        status = type(self).answers.pop(0)
        payload = json.dumps({"id": "real-1"}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def lab_server() -> Iterator[str]:
    LabHandler.answers, LabHandler.seen = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), LabHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join()


def test_a_call_to_a_real_http_server_retries_then_succeeds(api: ApiClient, clock: ManualClock,
                                                            lab_server: str) -> None:
    api.engine.config = replace(api.engine.config, connector_destinations={"lab": Destination("lab", lab_server)})
    api.engine.connector_sender = ConnectorHttp()
    LabHandler.answers = [500, 201]
    instance_id = started(api, pathway(http_json(f"{lab_server}/orders"), ZEEBE))
    deliver_connector_calls(api.engine)
    clock.advance(timedelta(seconds=11))
    deliver_connector_calls(api.engine)
    assert [path for path, _ in LabHandler.seen] == ["/orders", "/orders"]
    assert view(api, instance_id)["data"]["orderId"] == "real-1"


def test_a_camunda8_connector_deploys_without_a_warning_that_its_mapping_is_ignored(api: ApiClient) -> None:
    response = api.deploy(api.user("clinical_lead"), ("lab.bpmn", pathway(http_json(), ZEEBE)))
    assert response.status_code == 201 and "Zeebe" not in response.text


def test_the_camunda8_form_runs_in_a_diagram_of_another_editor(api: ApiClient) -> None:
    """A SpiffWorkflow diagram (read by the SpiffWorkflow parser) declares a notification the Camunda 8 way."""
    notify_task = zeebe_task("carepath:notification:1", {"recipients": "group:nurses", "title": "Seen",
                                                         "message": "=&quot;Seen: &quot; + patient"})
    xml = pathway(notify_task, f'{ZEEBE} xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"')
    xml = xml.replace('<bpmn:userTask id="review" name="Review">', '<bpmn:userTask id="review" name="Review">'
                      "<bpmn:extensionElements><spiffworkflow:instructionsForEndUser>Check</spiffworkflow:"
                      "instructionsForEndUser></bpmn:extensionElements>")
    instance_id = started(api, xml)
    assert deliver_connector_calls(api.engine) == 1
    with api.engine.db.read() as session:
        [row] = session.scalars(select(NotificationRecord).where(NotificationRecord.instance_id == instance_id))
    assert row.payload["message"] == "Seen: p-1"
    with api.engine.db.read() as session:
        [version] = session.scalars(select(PathwayVersion.family).where(PathwayVersion.key == "lab-order"))
    assert version == "spiff"


def test_the_scheduler_makes_the_call_a_commit_left_waiting_and_wakes_for_its_retry(
        api: ApiClient, clock: ManualClock) -> None:
    from carepath.engine.scheduler import TimerScheduler

    server = Recorder(httpx.Response(503), httpx.Response(200, json={"id": "ord-9"}))
    use(api, server)
    instance_id = started(api, pathway(http_json(), ZEEBE))
    assert next_connector_time(api.engine) == clock()
    TimerScheduler(api.engine).fire()  # not started: its wake-up is called by hand
    assert next_connector_time(api.engine) == clock() + timedelta(seconds=10)
    clock.advance(timedelta(seconds=10))
    TimerScheduler(api.engine).fire()
    assert view(api, instance_id)["data"]["orderId"] == "ord-9" and next_connector_time(api.engine) is None


def test_without_a_sender_http_calls_wait_and_do_not_wake_the_scheduler(api: ApiClient) -> None:
    api.engine.connector_sender = None
    instance_id = started(api, pathway(http_json(), ZEEBE))
    assert deliver_connector_calls(api.engine) == 0 and next_connector_time(api.engine) is None
    assert view(api, instance_id)["status"] == "running"


def test_a_diagram_cannot_set_the_host_header(api: ApiClient) -> None:
    server = Recorder(httpx.Response(200, json={}))
    use(api, server)
    inputs = (parameter("url", "https://lab.example.org/api/x") + parameter("method", "GET")
              + parameter("headers", '<camunda:map><camunda:entry key="Host">intranet.local</camunda:entry>'
                                     '<camunda:entry key="X-Ok">1</camunda:entry></camunda:map>'))
    started(api, pathway(camunda7_task("http-connector", inputs), CAMUNDA))
    deliver_connector_calls(api.engine)
    [sent] = server.requests
    assert sent.headers["Host"] == "lab.example.org" and sent.headers["X-Ok"] == "1"


SPIFF = 'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"'


def spiff_task(operator: str, **parameters: str) -> str:
    written = "".join(f'<spiffworkflow:parameter id="{name}" type="any" value="{value}"/>'
                      for name, value in parameters.items())
    return d.node("serviceTask", "call", "Order the test", body=(
        f'<bpmn:extensionElements><spiffworkflow:serviceTaskOperator id="{operator}" resultVariable="lab">'
        f"<spiffworkflow:parameters>{written}<spiffworkflow:parameter id=\"basic_auth_username\" type=\"str\"/>"
        "</spiffworkflow:parameters></spiffworkflow:serviceTaskOperator></bpmn:extensionElements>"))


def test_a_spiff_arena_http_operator_runs(api: ApiClient) -> None:
    server = Recorder(httpx.Response(200, json={"slots": 3}))
    use(api, server)
    xml = pathway(spiff_task("http/PostRequestV2", url="&quot;https://lab.example.org/api/slots&quot;",
                             data="{'patient': patient}", params="{'day': 'mon'}"), SPIFF)
    instance_id = started(api, xml)
    deliver_connector_calls(api.engine)
    [sent] = server.requests
    assert (sent.method, str(sent.url), json.loads(sent.content)) == (
        "POST", "https://lab.example.org/api/slots?day=mon", {"patient": "p-1"})
    assert view(api, instance_id)["data"]["lab"] == {"body": {"slots": 3}, "mimetype": "application/json",
                                                     "http_status": 200}


@pytest.mark.parametrize(("parameters", "expected"), [
    ({"url": "&quot;https://evil.example.com/&quot;"}, "is under no destination"),
    ({"url": "base + '/x'"}, "its url is an expression"),
    ({"url": "&quot;https://lab.example.org/api/x&quot;", "basic_auth_password": "'pw'"},
     "credentials never sit in a diagram"),
])
def test_the_deploy_refuses_a_spiff_operator_it_cannot_run(api: ApiClient, parameters: dict[str, str],
                                                          expected: str) -> None:
    assert expected in refusal(api, pathway(spiff_task("http/GetRequestV2", **parameters), SPIFF))


def test_simulate_says_the_episode_waits_for_a_connector_call(tmp_path: Any, capsys: pytest.CaptureFixture[str]
                                                             ) -> None:
    from carepath.api.cli import main

    diagram = tmp_path / "lab.bpmn"
    diagram.write_text(pathway(zeebe_task("carepath:notification:1", {"recipients": "group:nurses", "title": "t",
                                                                       "message": "m"}), ZEEBE))
    assert main(["simulate", str(diagram)]) == 0
    assert "waits for   CarePath's notification connector call (call)" in capsys.readouterr().out


def test_a_call_whose_episode_moved_on_meanwhile_is_dropped_and_the_next_call_still_goes_out(
        api: ApiClient) -> None:
    lead = api.user("clinical_lead")
    episodes: dict[str, str] = {}
    cancelled: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        if not cancelled:  # while the first call is out, its episode is cancelled
            instance_id = episodes[json.loads(request.content)["patient"]]
            response = api.post(f"/api/instances/{instance_id}/cancel", lead, {"reason": "moved away"})
            assert response.status_code == 200, response.text
            cancelled.append(instance_id)
        return httpx.Response(200, json={"id": "o"})

    use(api, answer)
    episodes["p-1"] = started(api, pathway(http_json(), ZEEBE))
    episodes["p-2"] = api.start(lead, "lab-order", "visit-2", data={"patient": "p-2"}).json()["id"]
    assert deliver_connector_calls(api.engine) == 2
    [other] = set(episodes.values()) - set(cancelled)
    assert view(api, cancelled[0])["status"] == "cancelled"
    assert view(api, other)["data"]["orderId"] == "o"


def test_retrying_a_call_that_was_an_incident_wakes_the_deliverer_at_once(api: ApiClient, clock: ManualClock) -> None:
    server = Recorder(httpx.Response(404), httpx.Response(200, json={"id": "ord-10"}))
    use(api, server)
    instance_id = started(api, pathway(http_json(), ZEEBE))
    assert deliver_connector_calls(api.engine) == 1
    assert view(api, instance_id)["status"] == "incident"
    woken: list[datetime] = []
    api.engine.on_timer_scheduled(woken.append)  # what a running scheduler listens to
    assert api.post(f"/api/instances/{instance_id}/retry", api.user("clinical_lead"), {}).status_code == 200
    assert woken == [clock()]  # not left for the next sweep, up to 30 s later
    assert deliver_connector_calls(api.engine) == 1 and view(api, instance_id)["data"]["orderId"] == "ord-10"
