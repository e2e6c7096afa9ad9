"""Inbound FHIR (docs/fhir.md, "Encounter notifications"): EHRs and HIEs that notify in FHIR instead of HL7
v2 post to one of three endpoints, with the bearer token of an integration account:

- POST /fhir/Encounter: an Encounter;
- POST /fhir/$process-message: a Da Vinci Unsolicited Notifications message Bundle;
- POST /fhir/$subscription-notification: a Subscriptions R5 Backport rest-hook notification (the endpoint a
  Subscription's channel names); handshakes and heartbeats are answered 200 and not stored.

Each is checked and committed to the inbox (engine/usecases/inbox.receive_fhir) before the answer, 202
Accepted with an OperationOutcome naming the inbox message; the inbox's processing (the same Router as ADT)
routes it through the pathways' triggers, at once after the answer and in the scheduler's sweep.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, BackgroundTasks, Depends, Request

from carepath.engine.application import CarePath
from carepath.engine.errors import BadRequest
from carepath.engine.interop import fhir_inbound
from carepath.engine.usecases.inbox import process_inbox, receive_fhir

from ..deps import EngineDep, SendingUser
from .wire import MEDIA_TYPE, PREFIX, FhirResponse, check_format

router = APIRouter(prefix=PREFIX, tags=["fhir"], dependencies=[Depends(check_format)],
                   default_response_class=FhirResponse, include_in_schema=False)

BODY_TYPES = (MEDIA_TYPE, "application/json")
# The endpoints and the shape each takes (fhir_inbound.SHAPES).
ENDPOINTS = {"/Encounter": "Encounter", "/$process-message": "message",
             "/$subscription-notification": "history"}


def information(text: str, status: int) -> FhirResponse:
    body: dict[str, Any] = {"resourceType": "OperationOutcome", "issue": [
        {"severity": "information", "code": "informational", "diagnostics": text}]}
    return FhirResponse(body, status_code=status)


def check_content_type(request: Request) -> None:
    """A body in another format than JSON is refused (400) naming its Content-Type."""
    given = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if given and given not in BODY_TYPES:
        raise BadRequest(f"Content-Type {given[:80]} is not taken: post {MEDIA_TYPE} (FHIR JSON)")


def _process(engine: CarePath) -> None:
    process_inbox(engine)


def _add_route(path: str, expected: str) -> None:
    async def post(request: Request, engine: EngineDep, user: SendingUser, later: BackgroundTasks) -> FhirResponse:
        check_content_type(request)
        payload = await request.body()
        peer = request.client.host if request.client else ""
        received = receive_fhir(engine, user, payload, expected=expected, peer=peer)
        if isinstance(received, fhir_inbound.Ping):
            return information(f"subscription {received.kind} acknowledged", 200)
        later.add_task(_process, engine)
        said = "already received (a resend): stored once" if received.duplicate else "accepted"
        return information(f"{said} as inbox message {received.id}; it is routed like an ADT message", 202)

    router.add_api_route(path, post, methods=["POST"], name=f"fhir_inbound_{expected}")


for endpoint, shape in ENDPOINTS.items():
    _add_route(endpoint, shape)
