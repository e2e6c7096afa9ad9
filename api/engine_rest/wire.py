"""What /engine-rest shares: Camunda 7's error answers and its authentication (basic or bearer).

Camunda clients (Camunda Modeler's deploy and start buttons) read `{"type": ..., "message": ...}` and show
`message`; the status codes are the product's (api/errors.py) except a refused input, which Camunda answers
with 400. A parse or validation refusal of a deploy begins with Camunda's parse-error code, which tells the
modeler to show the problems as a diagram that could not be parsed.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials
from starlette.exceptions import HTTPException
from starlette.responses import Response

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
from ..errors import _describe, status_for
from ..web.cookies import throttle_of

CAMUNDA_VERSION = "7.22.0"  # the REST contract followed (Camunda 7.22's /engine-rest)
PARSE_ERROR = "ENGINE-09005 Could not parse BPMN process. Errors: "
CHALLENGE = 'Basic realm="CarePath engine-rest", Bearer'


def located(problem: Problem) -> str:
    where = [f"resource {problem.file}" if problem.file else "", f"line {problem.line}" if problem.line else "",
             f"element {problem.element_id}" if problem.element_id else ""]
    return " | ".join([problem.message, *[w for w in where if w]])


def camunda_error(exc: CarePathError) -> JSONResponse:
    status = status_for(exc)
    if isinstance(exc, DiagramInvalid):
        problems = "".join(f"\n* {located(p)}" for p in exc.problems) or f"\n* {exc.message}"
        body: dict[str, Any] = {"type": "ParseException", "message": PARSE_ERROR + problems,
                                "details": _parse_details(exc)}
        return JSONResponse(body, status_code=400)
    if isinstance(exc, ValidationFailed):
        status = 400
        details = "; ".join(located(p) for p in exc.problems[:5])
        message = f"{exc.message}: {details}" if details and details not in exc.message else exc.message
        return JSONResponse({"type": "InvalidRequestException", "message": message}, status_code=status)
    kind = {401: "AuthenticationException", 403: "AuthorizationException"}.get(status, "InvalidRequestException")
    headers = {"WWW-Authenticate": CHALLENGE} if status == 401 else None
    return JSONResponse({"type": kind, "message": exc.message}, status_code=status, headers=headers)


def _parse_details(exc: DiagramInvalid) -> dict[str, Any]:
    """Camunda's `details`: per resource, its errors and warnings with line and element ids."""
    details: dict[str, Any] = {}
    for kind, problems in (("errors", exc.problems), ("warnings", exc.warnings)):
        for p in problems:
            entry = details.setdefault(p.file or "", {"errors": [], "warnings": []})
            entry[kind].append({"message": p.message, "line": p.line, "column": None,
                                "mainElementId": p.element_id, "elementIds": [p.element_id] if p.element_id else []})
    return details


class CamundaRoute(APIRoute):
    """A route whose errors (from its dependencies, its body's validation or the domain) are answered in
    Camunda's shape, so the /engine-rest routers need no handler of the application's."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except CarePathError as exc:
                return camunda_error(exc)
            except RequestValidationError as exc:
                message = "; ".join(_describe(e) for e in exc.errors()[:3])
                return JSONResponse({"type": "InvalidRequestException", "message": message}, status_code=400)
            except HTTPException as exc:
                return JSONResponse({"type": "RestException", "message": str(exc.detail)},
                                    status_code=exc.status_code, headers=exc.headers)
        return answer


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
