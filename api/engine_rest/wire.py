"""What /engine-rest shares: Camunda 7's error answers and its authentication (basic or bearer).

Camunda clients (Camunda Modeler's deploy and start buttons, external task workers) read `{"type": ...,
"message": ...}` and show `message`: every error under /engine-rest (a route's, a dependency's, the
middleware's) is answered so, with the status and message the product gives it (api/errors.py), except a
refused input, which Camunda answers with 400. The handlers wrap the product's for /engine-rest paths only.
A parse or validation refusal of a deploy begins with Camunda's parse-error code, which tells the modeler to
show the problems as a diagram that could not be parsed.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from starlette.exceptions import HTTPException

from carepath.engine.errors import (
    CarePathError,
    DiagramInvalid,
    PermissionDenied,
    Problem,
    Unauthenticated,
    ValidationFailed,
)
from carepath.engine.identity import Principal, acts_only_as_integration
from carepath.engine.usecases.basic_credentials import basic_principal
from carepath.engine.usecases.break_glass import with_break_glass

from ..deps import EngineDep, access_client, current_principal
from ..errors import Answer, http_message, install_path_answers, invalid_message, path_answer_or, status_for
from ..web.cookies import throttle_of

PREFIX = "/engine-rest"
CAMUNDA_VERSION = "7.22.0"  # the REST contract followed (Camunda 7.22's /engine-rest)
# Camunda's exception type names by status, as its REST API writes them; any other status: RestException.
CAMUNDA_TYPES = {400: "InvalidRequestException", 401: "AuthenticationException", 403: "AuthorizationException",
                 404: "InvalidRequestException", 422: "InvalidRequestException"}
PARSE_ERROR = "ENGINE-09005 Could not parse BPMN process. Errors: "
CHALLENGE = 'Basic realm="CarePath engine-rest", Bearer'


def located(problem: Problem) -> str:
    where = [f"resource {problem.file}" if problem.file else "", f"line {problem.line}" if problem.line else "",
             f"element {problem.element_id}" if problem.element_id else ""]
    return " | ".join([problem.message, *[w for w in where if w]])


def is_engine_rest_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def camunda_error(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """Camunda's error answer; a refused input (422) is its 400."""
    return JSONResponse({"type": CAMUNDA_TYPES.get(status, "RestException"), "message": message},
                        status_code=400 if status == 422 else status, headers=headers)


def domain_error(exc: CarePathError) -> JSONResponse:
    if isinstance(exc, DiagramInvalid):
        problems = "".join(f"\n* {located(p)}" for p in exc.problems) or f"\n* {exc.message}"
        body: dict[str, Any] = {"type": "ParseException", "message": PARSE_ERROR + problems,
                                "details": _parse_details(exc)}
        return JSONResponse(body, status_code=400)
    message = exc.message
    if isinstance(exc, ValidationFailed):
        details = "; ".join(located(p) for p in exc.problems[:5])
        message = f"{exc.message}: {details}" if details and details not in exc.message else exc.message
    status = status_for(exc)
    return camunda_error(status, message, {"WWW-Authenticate": CHALLENGE} if status == 401 else None)


def answer(request: Request, exc: Exception) -> JSONResponse:
    """A domain, request or HTTP error in Camunda's shape, with the status and message the product gives it."""
    if isinstance(exc, CarePathError):
        return domain_error(exc)
    if isinstance(exc, RequestValidationError):
        return camunda_error(400, invalid_message(exc))
    assert isinstance(exc, HTTPException)
    return camunda_error(exc.status_code, http_message(request, exc), exc.headers)


def _parse_details(exc: DiagramInvalid) -> dict[str, Any]:
    """Camunda's `details`: per resource, its errors and warnings with line and element ids."""
    details: dict[str, Any] = {}
    for kind, problems in (("errors", exc.problems), ("warnings", exc.warnings)):
        for p in problems:
            entry = details.setdefault(p.file or "", {"errors": [], "warnings": []})
            entry[kind].append({"message": p.message, "line": p.line, "column": None,
                                "mainElementId": p.element_id, "elementIds": [p.element_id] if p.element_id else []})
    return details


def install_camunda_error_handlers(app: FastAPI) -> None:
    """Call after the product's handlers are installed: paths under /engine-rest answer Camunda's errors."""
    install_path_answers(app, is_engine_rest_path, answer)


def camunda_or(respond: Answer) -> Answer:
    """For `api.guards.ErrorResponses`: Camunda's answer under /engine-rest, `respond`'s elsewhere."""
    return path_answer_or(is_engine_rest_path, answer, respond)


def _basic(value: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthenticated("the basic credentials are not base64 of 'user:secret'") from None
    name, colon, secret = decoded.partition(":")
    if not colon:
        raise Unauthenticated("the basic credentials are not base64 of 'user:secret'")
    return name, secret


def rest_principal(request: Request, engine: EngineDep) -> Principal:
    """The caller by HTTP basic credentials (user name and API token or password) or a bearer token (an API
    token or, when configured, the identity provider's); never anonymous."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return current_principal(request, engine, HTTPAuthorizationCredentials(scheme="Bearer", credentials=value))
    if scheme.lower() != "basic":
        raise Unauthenticated("send credentials: HTTP basic (user name and API token or password) or a bearer token")
    name, secret = _basic(value)
    principal = basic_principal(engine, throttle_of(request), name, secret, access_client(request))
    request.state.user = principal.name
    return with_break_glass(engine, principal)


def rest_user(principal: Annotated[Principal, Depends(rest_principal)]) -> Principal:
    """As `deps.current_user`: the editor's buttons are for people; a system starts pathways through /api."""
    if acts_only_as_integration(principal):
        raise PermissionDenied(f"user '{principal.name}' is an integration account: it may start pathways, "
                               "send messages and merge or unmerge patients, and nothing else")
    return principal


RestUser = Annotated[Principal, Depends(rest_user)]
