"""What Camunda 7's REST API shares across its operations: authentication, variables and error answers.

Workers written for Camunda (camunda-external-task-client-python3, camunda-external-task-client-js) call
`{base}/external-task/...` with HTTP basic credentials or a bearer token; CarePath answers that contract under
/engine-rest (api/routes/camunda_external_tasks.py). Basic credentials are a user name and one of that user's
API tokens; never anonymous. Errors answer `{"type": ..., "message": ...}`, with the status api/errors.py gives
the domain error.
"""

from __future__ import annotations

import base64
import binascii
import inspect
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from carepath.engine.application import CarePath
from carepath.engine.errors import CarePathError, Unauthenticated, ValidationFailed
from carepath.engine.identity import Principal
from carepath.engine.usecases.users import authenticate

from .deps import get_engine
from .errors import status_for

PREFIX = "/engine-rest"
# Camunda's exception type names by status, as its REST API writes them.
_TYPES = {400: "InvalidRequestException", 401: "AuthenticationException", 403: "AuthorizationException",
          404: "InvalidRequestException", 422: "InvalidRequestException"}
_REALM = {"WWW-Authenticate": 'Basic realm="CarePath engine-rest"'}


def camunda_principal(request: Request, engine: Annotated[CarePath, Depends(get_engine)]) -> Principal:
    """Basic `user:API token`, or `Bearer <API token>`; anything else is 401."""
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        principal = authenticate(engine, credentials.strip())
    elif scheme.lower() == "basic":
        user, secret = _basic(credentials)
        principal = authenticate(engine, secret)
        if principal.name != user:
            raise Unauthenticated("the user name and the API token do not belong together")
    else:
        raise Unauthenticated("send HTTP basic credentials (user name and API token) or a bearer token")
    request.state.user = principal.name
    return principal


CamundaUser = Annotated[Principal, Depends(camunda_principal)]


def _basic(credentials: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthenticated("the basic credentials are not base64 of 'user:token'") from None
    user, colon, secret = decoded.partition(":")
    if not colon or not user or not secret:
        raise Unauthenticated("the basic credentials must be 'user name:API token'")
    return user, secret


# -- variables: {"name": {"value": ..., "type": "Integer"}} --------------------------------------------------

def variables_in(typed: Any, field: str = "variables") -> dict[str, Any]:
    """Camunda's typed variables to plain values; Json (and Object in JSON) values are read as JSON."""
    if typed is None:
        return {}
    if not isinstance(typed, dict):
        raise ValidationFailed(f"{field} must be an object of name -> {{value, type}}")
    plain: dict[str, Any] = {}
    for name, variable in typed.items():
        if not isinstance(variable, dict) or "value" not in variable:
            raise ValidationFailed(f"{field}.{name} must be an object with a 'value' (and a 'type')")
        plain[name] = _value_in(variable, f"{field}.{name}")
    return plain


def _value_in(variable: dict[str, Any], where: str) -> Any:
    value, kind = variable["value"], str(variable.get("type") or "").lower()
    if kind in ("json", "object") and isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise ValidationFailed(f"{where}: the value is not JSON") from None
    return value


def variables_out(plain: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: _value_out(value) for name, value in plain.items()}


def _value_out(value: Any) -> dict[str, Any]:
    if value is None:
        return {"value": None, "type": "Null", "valueInfo": {}}
    if isinstance(value, bool):
        return {"value": value, "type": "Boolean", "valueInfo": {}}
    if isinstance(value, int):
        return {"value": value, "type": "Integer" if -2**31 <= value < 2**31 else "Long", "valueInfo": {}}
    if isinstance(value, float):
        return {"value": value, "type": "Double", "valueInfo": {}}
    if isinstance(value, str):
        return {"value": value, "type": "String", "valueInfo": {}}
    return {"value": json.dumps(value), "type": "Json", "valueInfo": {}}


# -- errors ----------------------------------------------------------------------------------------------

def camunda_error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"type": _TYPES.get(status, "RestException"), "message": message},
                        status_code=400 if status == 422 else status, headers=headers)


def _answer(exc: Exception) -> JSONResponse:
    if isinstance(exc, CarePathError):
        status = status_for(exc)
        return camunda_error(status, exc.message, _REALM if status == 401 else None)
    if isinstance(exc, RequestValidationError):
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ())[1:])}: {e.get('msg')}"
                             for e in exc.errors()[:3])
        return camunda_error(400, f"the request is not valid: {problems}")
    assert isinstance(exc, HTTPException)
    return camunda_error(exc.status_code, str(exc.detail), dict(exc.headers) if exc.headers else None)


Handler = Callable[[Request, Exception], Response | Awaitable[Response]]


def install_camunda_error_handlers(app: FastAPI) -> None:
    """Call after the product's handlers are installed: paths under /engine-rest answer Camunda's errors."""
    for error_class in (CarePathError, RequestValidationError, HTTPException):
        app.add_exception_handler(error_class, _on_camunda_paths(app.exception_handlers[error_class]))


def _on_camunda_paths(previous: Handler) -> Handler:
    async def handle(request: Request, exc: Exception) -> Response:
        if request.url.path == PREFIX or request.url.path.startswith(PREFIX + "/"):
            return _answer(exc)
        answered = previous(request, exc)
        return await answered if inspect.isawaitable(answered) else answered
    return handle
