"""FastAPI dependencies: the engine and the authenticated user."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from carepath.engine.application import CarePath
from carepath.engine.errors import PermissionDenied
from carepath.engine.identity import Principal, acts_only_as_integration
from carepath.engine.usecases.access import Client
from carepath.engine.usecases.break_glass import with_break_glass
from carepath.engine.usecases.token_principals import principal_of_token
from carepath.engine.usecases.users import provider_principal

from .oidc import OidcVerifier, looks_like_jwt

# auto_error off: a missing token is answered by the domain's Unauthenticated (401, one format).
bearer = HTTPBearer(auto_error=False, description="API token from `carepath user add` or `user token`")


def get_engine(request: Request) -> CarePath:
    engine: CarePath = request.app.state.engine
    return engine


def current_principal(request: Request, engine: Annotated[CarePath, Depends(get_engine)],
                      credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
    token = credentials.credentials.strip() if credentials else None
    verifier: OidcVerifier | None = request.app.state.oidc
    if token and verifier is not None and looks_like_jwt(token):
        principal = provider_principal(engine, verifier.principal(token), "oidc",
                                       request.app.state.settings.oidc_roles_from_provider)
        request.state.user = principal.name
        return with_break_glass(engine, principal)
    principal = principal_of_token(engine, token)
    request.state.user = principal.name
    return principal


def current_user(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    """The caller of every route but the few an integration account may call (`SendingUser`)."""
    if acts_only_as_integration(principal):
        raise PermissionDenied(f"user '{principal.name}' is an integration account: it may start pathways, "
                               "send messages, merge or unmerge patients, work external tasks and update its "
                               "organization's referrals, and nothing else")
    return principal


def access_client(request: Request) -> Client:
    """Where a request came from, for the record of who read what (behind a proxy, run uvicorn with
    --proxy-headers so the host is the client's)."""
    return Client(host=request.client.host if request.client else None,
                  user_agent=request.headers.get("user-agent"))


EngineDep = Annotated[CarePath, Depends(get_engine)]
CurrentUser = Annotated[Principal, Depends(current_user)]
# integration accounts too: start, message, merge, external tasks, and their organization's referrals
SendingUser = Annotated[Principal, Depends(current_principal)]
ClientDep = Annotated[Client, Depends(access_client)]
