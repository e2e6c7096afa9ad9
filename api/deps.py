"""FastAPI dependencies: the engine and the authenticated user."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from carepath.engine.application import CarePath
from carepath.engine.identity import Principal
from carepath.engine.usecases.users import authenticate


def get_engine(request: Request) -> CarePath:
    engine: CarePath = request.app.state.engine
    return engine


def current_principal(request: Request, engine: Annotated[CarePath, Depends(get_engine)]) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    principal = authenticate(engine, token.strip() if scheme.lower() == "bearer" else None)
    request.state.user = principal.name
    return principal


EngineDep = Annotated[CarePath, Depends(get_engine)]
CurrentUser = Annotated[Principal, Depends(current_principal)]
