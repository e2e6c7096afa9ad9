"""What Camunda 7's REST API shares across its operations: authentication and variables.

Workers written for Camunda (camunda-external-task-client-python3, camunda-external-task-client-js) call
`{base}/external-task/...` with HTTP basic credentials or a bearer token; CarePath answers that contract under
/engine-rest (api/routes/camunda_external_tasks.py). Basic credentials are a user name and one of that user's
API tokens; never anonymous. Errors answer `{"type": ..., "message": ...}` (api/engine_rest/wire.py).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Any

from fastapi import Depends, Request

from carepath.engine.application import CarePath
from carepath.engine.errors import Unauthenticated, ValidationFailed
from carepath.engine.identity import Principal
from carepath.engine.usecases.users import authenticate

from .deps import get_engine


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
