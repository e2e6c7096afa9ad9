"""FastAPI dependencies: the engine and the authenticated user."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from carepath.engine.application import CarePath
from carepath.engine.identity import Principal
from carepath.engine.usecases.users import authenticate

# auto_error off: a missing token is answered by the domain's Unauthenticated (401, one format).
bearer = HTTPBearer(auto_error=False, description="API token from `carepath user add` or `user token`")


def get_engine(request: Request) -> CarePath:
    engine: CarePath = request.app.state.engine
    return engine


def current_principal(request: Request, engine: Annotated[CarePath, Depends(get_engine)],
                      credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
    principal = authenticate(engine, credentials.credentials.strip() if credentials else None)
    request.state.user = principal.name
    return principal


EngineDep = Annotated[CarePath, Depends(get_engine)]
CurrentUser = Annotated[Principal, Depends(current_principal)]
