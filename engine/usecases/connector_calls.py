"""CarePath's own worker for the built-in connectors: HTTP requests, FHIR create/update, notifications.

A connector task is an external task on a reserved topic (definitions/_connectors.py), so it reuses that
machinery whole: the engine step that reaches it commits it as waiting with its evaluated inputs; this
deliverer (the scheduler's, in `carepath serve` and `carepath worker`) claims one with fetch-and-lock (SKIP LOCKED,
a lease per call), makes the call OUTSIDE any transaction, and reports the outcome through the same use cases a
worker's completion and failure use (one transaction each, history recorded):
  - a 2xx answer: `complete_task` with the response as the task's local result (`response`, and Camunda 7's
    `statusCode`, `headers`); the task's result mapping writes what the diagram asks into the process data;
  - a network error, a timeout, 408, 429 or 5xx: `report_failure` with one retry fewer, fetchable again after a
    backoff on the product's clock (doubling from the diagram's retryBackoff or CAREPATH_CONNECTOR_RETRY_SECONDS);
    none left: the episode is in incident, retried like any other;
  - another answer (a 4xx, a redirect), a destination no longer configured, a request that cannot be built:
    an incident at once.
A notification only writes notification rows (delivered later by the channels), so it is done and completed in
one transaction. Each call carries the Idempotency-Key `carepath-connector-<task id>`; only a deliverer that dies
mid-call lets another send it again (after the lease), with the same key for the receiver to drop.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from ..application import CarePath
from ..connector_destinations import FHIR_DESTINATION, Destination, OutsideDestinations, destination_for
from ..definitions import CONNECTOR_CONFIG, CONNECTOR_TOPICS
from ..errors import CarePathError, Conflict
from ..identity import Principal, Role
from ..model import ExternalTaskState
from ..persistence.external_task_tables import ExternalTask
from ..persistence.unit_of_work import UnitOfWork
from .external_tasks import MAX_LOCK_MS, ExternalTaskView, TopicRequest, complete_task, fetch_and_lock, report_failure
from .notifications import notify

log = logging.getLogger("carepath.connectors")
CONNECTORS = Principal("carepath-connectors", Role.INTEGRATION)
RETRIED_STATUSES = frozenset({408, 429})
MAX_TIMEOUT_S = 300.0
# How long a claimed call is left to its deliverer before another may make it (one that died mid-call): longer
# than any call may take.
LEASE_MS = int((MAX_TIMEOUT_S + 60) * 1000)
# Headers a diagram may not set: the transport's own (Host would reach another site behind the same address).
TRANSPORT_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
RECIPIENT_KINDS = ("group", "user", "role")


@dataclass(frozen=True)
class ConnectorRequest:
    method: str
    url: str
    destination: Destination
    headers: dict[str, str]
    body: bytes | None
    timeout_s: float
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ConnectorResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def content(self) -> Any:
        """The body as JSON when it is JSON, else as text (None when empty)."""
        if not self.body:
            return None
        text = self.body.decode("utf-8", errors="replace")
        try:
            return json.loads(text)
        except ValueError:
            return text


# Sends one request (api/connector_http.py); raises on a network error or timeout.
ConnectorSender = Callable[[ConnectorRequest], ConnectorResponse]


class CallRefused(Exception):
    """The call cannot be made as the task asks (an incident, no retry); the message says why."""


def deliver_connector_calls(app: CarePath, limit: int = 10) -> int:
    """Carry out up to `limit` due connector calls, one after another; returns how many were handled."""
    topics = [TopicRequest(topic, LEASE_MS) for topic in _deliverable(app)]
    worker = f"carepath-connectors@{app.worker_id}"
    handled = 0
    while handled < limit:
        claimed = fetch_and_lock(app, CONNECTORS, worker, topics, 1, connectors=True)
        if not claimed:
            break
        handled += 1
        try:
            _carry_out(app, claimed[0], worker)
        except CarePathError as moved_on:  # another deliverer took it after the lease, or the episode moved on
            log.warning("connector call %s: its outcome was not recorded: %s", claimed[0].id, moved_on.message)
    return handled


def _deliverable(app: CarePath) -> list[str]:
    """The connectors' topics this process can carry out: notifications always, HTTP and FHIR with a sender."""
    kinds = ["notification"] + (["http", "fhir"] if app.connector_sender is not None else [])
    return [CONNECTOR_TOPICS[kind] for kind in kinds]


def _carry_out(app: CarePath, task: ExternalTaskView, worker: str) -> None:
    config = task.variables.get(CONNECTOR_CONFIG) or {}
    kind, style = str(config.get("kind")), str(config.get("style", "camunda8"))
    if kind == "notification":
        _notify(app, task, worker)
        return
    sender = app.connector_sender
    assert sender is not None
    try:
        request = _http_request(app, task) if kind == "http" else _fhir_request(app, task)
        request = replace(request, headers={**request.headers, "Idempotency-Key": f"carepath-connector-{task.id}"})
    except (CallRefused, OutsideDestinations) as refused:
        _fail(app, task, worker, str(refused), retries=0)
        return
    try:
        response = sender(request)
    except Exception as exc:  # any failure to send is a failed attempt, retried
        _retry_or_fail(app, task, worker, config, f"{request.method} {_where(request)} failed ({type(exc).__name__})")
        return
    if 200 <= response.status < 300:
        _complete(app, task, worker, _results(kind, style, response))
    elif response.status >= 500 or response.status in RETRIED_STATUSES:
        _retry_or_fail(app, task, worker, config, f"{_where(request)} answered {response.status}")
    else:
        _fail(app, task, worker, f"{_where(request)} answered {response.status}", retries=0,
              details=response.body[:2000].decode("utf-8", errors="replace") or None)


def _where(request: ConnectorRequest) -> str:
    return f"destination '{request.destination.name}'"  # never the URL: it may carry identifiers


def _complete(app: CarePath, task: ExternalTaskView, worker: str, results: dict[str, Any],
              also: Callable[[UnitOfWork, ExternalTask], None] | None = None) -> None:
    try:
        complete_task(app, CONNECTORS, task.id, worker, results, also=also)
    except Conflict:
        raise
    except (CarePathError, CallRefused) as failed:  # the result mapping or the notification cannot be done
        message = failed.message if isinstance(failed, CarePathError) else str(failed)
        _fail(app, task, worker, f"its result could not be used: {message}", retries=0)


def _fail(app: CarePath, task: ExternalTaskView, worker: str, message: str, *, retries: int,
          delay: timedelta = timedelta(0), details: str | None = None) -> None:
    report_failure(app, CONNECTORS, task.id, worker, f"Connector call: {message}"[:4000], error_details=details,
                   retries=retries, retry_timeout_ms=min(int(delay.total_seconds() * 1000), MAX_LOCK_MS))


def _retry_or_fail(app: CarePath, task: ExternalTaskView, worker: str, config: dict[str, Any], message: str) -> None:
    allowed = int(config.get("retries", 3))
    left = max((task.retries if task.retries is not None else allowed) - 1, 0)
    attempt = allowed - left
    base = timedelta(seconds=int(config.get("backoff_s") or 0)) or app.config.connector_retry_base
    delay = min(base * (2 ** min(max(attempt - 1, 0), 30)), app.config.connector_retry_max)
    _fail(app, task, worker, message + ("" if left else f" (attempt {attempt}, the last allowed)"),
          retries=left, delay=delay)


def _timeout(app: CarePath, inputs: dict[str, Any]) -> float:
    written = inputs.get("connectionTimeoutInSeconds") or inputs.get("timeout")
    try:
        timeout = float(written) if written not in (None, "") else app.config.connector_timeout_s
    except (TypeError, ValueError):
        raise CallRefused(f"the timeout '{str(written)[:40]}' is not a number of seconds") from None
    return min(max(timeout, 1.0), MAX_TIMEOUT_S)


def _http_request(app: CarePath, task: ExternalTaskView) -> ConnectorRequest:
    inputs = task.variables
    url, method = str(inputs.get("url") or ""), str(inputs.get("method") or "").upper()
    destination = destination_for(url, app.config.connector_destinations)  # checked again: config may change
    body = inputs.get("body", inputs.get("payload"))
    headers = {name: value for name, value in _texts(inputs.get("headers"), "headers").items()
               if name.lower() not in TRANSPORT_HEADERS}
    if body is not None and not isinstance(body, (str, bytes)):
        headers.setdefault("Content-Type", "application/json")
    return ConnectorRequest(method, url, destination, headers, _encoded(body), _timeout(app, inputs),
                            _texts(inputs.get("queryParameters"), "queryParameters"))


def _fhir_request(app: CarePath, task: ExternalTaskView) -> ConnectorRequest:
    inputs = task.variables
    destination = app.config.connector_destinations.get(FHIR_DESTINATION)
    if destination is None:
        raise CallRefused(f"no FHIR server is configured (a destination named '{FHIR_DESTINATION}' in "
                          "CAREPATH_CONNECTOR_DESTINATIONS)")
    operation, resource_type = inputs.get("operation"), str(inputs.get("resourceType") or "")
    resource = inputs.get("resource")
    if isinstance(resource, str):
        try:
            resource = json.loads(resource)
        except ValueError:
            raise CallRefused("the resource is not a JSON object") from None
    if not isinstance(resource, dict) or not resource_type.isalpha():
        raise CallRefused("the resource must be a JSON object and resourceType a FHIR resource type")
    if resource.setdefault("resourceType", resource_type) != resource_type:
        raise CallRefused(f"the resource is a {resource.get('resourceType')}, not a {resource_type}")
    base = destination.base_url.rstrip("/")
    if operation == "create":
        method, url = "POST", f"{base}/{resource_type}"
    elif operation == "update" and str(inputs.get("resourceId") or "").strip():
        resource_id = str(inputs["resourceId"]).strip()
        if not resource_id.replace("-", "").replace(".", "").isalnum() or len(resource_id) > 64:
            raise CallRefused(f"the resourceId '{resource_id[:70]}' is not a FHIR id")
        resource["id"] = resource_id
        method, url = "PUT", f"{base}/{resource_type}/{resource_id}"
    else:
        raise CallRefused(f"the operation '{str(operation)[:20]}' is not create, or update with a resourceId")
    headers = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
    return ConnectorRequest(method, url, destination, headers, _encoded(resource), _timeout(app, inputs))


def _texts(value: Any, name: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise CallRefused(f"{name} must be a map of names to texts")
    return {str(key): str(item) for key, item in value.items()}


def _encoded(body: Any) -> bytes | None:
    if body is None:
        return None
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def _results(kind: str, style: str, response: ConnectorResponse) -> dict[str, Any]:
    """The task's local result: Camunda 8's `response` {status, headers, body}; Camunda 7's `response` (the
    body), `statusCode` and `headers`; spiff-arena's {body, mimetype, http_status}; a FHIR call's response also
    says the resource's id and version."""
    content = response.content()
    if kind == "fhir":
        content = _fhir_outcome(response, content)
    if style == "camunda7":
        return {"response": content, "statusCode": response.status, "headers": response.headers}
    if style == "spiff":  # spiff-arena's connector-http, version 2
        return {"response": {"body": content, "mimetype": response.headers.get("content-type", ""),
                             "http_status": response.status}}
    return {"response": {"status": response.status, "headers": response.headers, "body": content}
            if kind == "http" else {"status": response.status, **content}}


def _fhir_outcome(response: ConnectorResponse, body: Any) -> dict[str, Any]:
    """{id, versionId, location, resource}: from the returned resource, else its Location header
    (…/Type/id/_history/version)."""
    resource = body if isinstance(body, dict) else None
    location = response.headers.get("location") or response.headers.get("Location")
    parts = (location or "").rstrip("/").split("/")
    from_location: dict[str, str | None] = {"id": None, "versionId": None}
    if "_history" in parts and parts.index("_history") >= 1:
        at = parts.index("_history")
        from_location = {"id": parts[at - 1], "versionId": parts[at + 1] if at + 1 < len(parts) else None}
    meta = (resource or {}).get("meta") or {}
    return {"id": (resource or {}).get("id") or from_location["id"],
            "versionId": meta.get("versionId") if isinstance(meta, dict) and meta.get("versionId")
            else from_location["versionId"], "location": location, "resource": resource}


def _notify(app: CarePath, task: ExternalTaskView, worker: str) -> None:
    """The notification rows and the completion, in one transaction."""
    inputs = task.variables
    try:
        recipients = _recipients(inputs.get("recipients"))
        title, message = str(inputs.get("title") or "").strip(), str(inputs.get("message") or "")
        if not title:
            raise CallRefused("the notification has no title")
    except CallRefused as refused:
        _fail(app, task, worker, str(refused), retries=0)
        return

    def write(uow: UnitOfWork, row: ExternalTask) -> None:
        notify(uow, "connector", title, recipients, {"title": title, "message": message[:4000],
                                                     "element_id": row.element_id},
               instance_id=row.instance_id, task_id=None)

    _complete(app, task, worker, {"response": {"recipients": recipients}}, also=write)


def _recipients(value: Any) -> list[str]:
    written = value if isinstance(value, list) else str(value or "").replace(";", ",").split(",")
    recipients = [str(item).strip() for item in written if str(item).strip()]
    if not recipients:
        raise CallRefused("the notification has no recipients")
    for recipient in recipients:
        kind, _, name = recipient.partition(":")
        if kind not in RECIPIENT_KINDS or not name:
            raise CallRefused(f"the recipient '{recipient[:80]}' is not group:NAME, user:NAME or role:NAME")
    return recipients


def next_connector_time(app: CarePath) -> datetime | None:
    """When the next connector call this process can make is due (for the scheduler's wake-up): a waiting one's
    retry time or creation, a claimed one's lease end."""
    topics = _deliverable(app)
    due = (ExternalTaskState.AVAILABLE.value, ExternalTaskState.LOCKED.value)
    with app.db.read() as session:
        rows = session.execute(select(ExternalTask.lock_expires_at, ExternalTask.created_at).where(
            ExternalTask.topic.in_(topics), ExternalTask.state.in_(due))
            .order_by(func.coalesce(ExternalTask.lock_expires_at, ExternalTask.created_at)).limit(1)).first()
    return None if rows is None else rows[0] or rows[1]
