"""`/signin/oidc` and its callback: signing in to the web app through the OpenID Connect provider.

The flow's secrets (state, nonce, PKCE verifier) and where to go afterwards live in an HttpOnly cookie
scoped to /signin/oidc for ten minutes; the callback checks them (api/oidc_signin.py), and the user the
ID token names gets the same database session as a password sign-in (`sign_in_from_provider`, recorded
as `signed_in` with method oidc). Every failure is a page with its status (400, 401, 403, 404, 502).
"""

from __future__ import annotations

import base64
import json
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from carepath.engine.errors import Unauthenticated, ValidationFailed
from carepath.engine.usecases.web_sessions import sign_in_from_provider

from ..oidc_signin import FLOW_SECONDS, Flow, OidcSignIn, SignInFailed
from .cookies import client_of, engine_of, is_https, set_session_cookie, settings_of
from .pages import error_page, redirect, safe_next

router = APIRouter(include_in_schema=False)
START, CALLBACK = "/signin/oidc", "/signin/oidc/callback"
FLOW_COOKIE = "carepath_oidc"
MAX_COOKIE = 4000
Param = Annotated[str | None, Query(max_length=2000)]
TITLES = {400: "Sign-in not completed", 401: "Sign-in refused", 403: "Sign-in refused", 404: "Not available",
          502: "Identity provider unavailable"}


def oidc_sign_in_of(request: Request) -> OidcSignIn | None:
    found: OidcSignIn | None = getattr(request.app.state, "oidc_sign_in", None)
    return found


def _redirect_uri(request: Request) -> str:
    configured = settings_of(request).oidc_redirect_uri
    if configured:
        return configured
    url = request.url_for("oidc_callback")
    return str(url.replace(scheme="https") if is_https(request) else url)


def _now(request: Request) -> float:
    return engine_of(request).now().timestamp()


@router.get(START)
def start(request: Request, next: Param = None) -> Response:
    flows = oidc_sign_in_of(request)
    if flows is None:
        return _failed(request, SignInFailed(404, "Sign-in through an identity provider is not set up here."))
    try:
        url, flow = flows.start(_redirect_uri(request), safe_next(next), _now(request))
    except SignInFailed as failed:
        return _failed(request, failed)
    response = RedirectResponse(url, status_code=302)
    encoded = base64.urlsafe_b64encode(json.dumps(flow.as_dict()).encode()).decode()
    response.set_cookie(FLOW_COOKIE, encoded, max_age=FLOW_SECONDS, path=START, httponly=True, samesite="lax",
                        secure=is_https(request))
    return response


@router.get(CALLBACK, name="oidc_callback")
def callback(request: Request, state: Param = None, code: Param = None, error: Param = None,
             error_description: Param = None) -> Response:
    flows = oidc_sign_in_of(request)
    try:
        if flows is None:
            raise SignInFailed(404, "Sign-in through an identity provider is not set up here.")
        flow = _flow(request)
        if error:
            detail = f": {error_description[:300]}" if error_description else ""
            raise SignInFailed(403, f"The identity provider did not sign you in ({error[:100]}{detail}).")
        if not state or not code:
            raise SignInFailed(400, "The identity provider's answer lacks its state or code: start again.")
        principal = flows.finish(flow, state, code, _redirect_uri(request), _now(request))
        try:
            signed = sign_in_from_provider(engine_of(request), principal, client_of(request), "oidc",
                                           settings_of(request).oidc_roles_from_provider)
        except (Unauthenticated, ValidationFailed) as refused:
            raise SignInFailed(403, f"You cannot sign in to CarePath: {refused.message}") from None
    except SignInFailed as failed:
        return _failed(request, failed)
    response = redirect(flow.back_to)
    set_session_cookie(request, response, signed.token)
    _forget_flow(request, response)
    return response


def _flow(request: Request) -> Flow:
    raw = request.cookies.get(FLOW_COOKIE)
    if not raw or len(raw) > MAX_COOKIE:
        raise SignInFailed(400, "No sign-in through the identity provider is under way in this browser (it may "
                                "have expired): start again.")
    try:
        data = json.loads(base64.urlsafe_b64decode(raw.encode()))
    except ValueError:
        data = None
    flow = Flow.from_dict(data)
    return Flow(flow.state, flow.nonce, flow.verifier, safe_next(flow.back_to), flow.started)


def _forget_flow(request: Request, response: Response) -> None:
    response.delete_cookie(FLOW_COOKIE, path=START, httponly=True, samesite="lax", secure=is_https(request))


def _failed(request: Request, failed: SignInFailed) -> Response:
    response = error_page(request, failed.status, TITLES.get(failed.status, "Sign-in not completed"),
                          failed.message)
    _forget_flow(request, response)
    return response
