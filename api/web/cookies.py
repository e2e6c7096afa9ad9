"""The web app's session cookie and its CSRF tokens.

The cookie authenticates the web app's routes only (`/`, `/signin`, `/signout`, `/app/...`); the JSON API
under /api reads bearer tokens and never this cookie, so it cannot be the target of a forged request.
Every form carries a CSRF token in a hidden field: for a signed-in browser an HMAC of its session id
(nothing stored), for the sign-in form the value of a short-lived cookie of its own (double submit).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from fastapi import Request
from fastapi.responses import Response

from carepath.engine.application import CarePath
from carepath.engine.identity import Principal
from carepath.engine.sign_in_throttle import SignInThrottle
from carepath.engine.usecases.access import Client
from carepath.engine.usecases.web_sessions import MAX_SESSION, session_user

from ..settings import Settings

SESSION_COOKIE = "carepath_session"
SIGN_IN_COOKIE = "carepath_sign_in"
CSRF_FIELD = "csrf_token"
SIGN_IN_FORM_SECONDS = 3600


@dataclass(frozen=True)
class WebUser:
    principal: Principal
    session_id: int
    csrf_token: str


def engine_of(request: Request) -> CarePath:
    engine: CarePath = request.app.state.engine
    return engine


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def idle_limit(request: Request) -> timedelta:
    return timedelta(minutes=settings_of(request).web_idle_minutes)


def throttle_of(request: Request) -> SignInThrottle:
    """The throttle's limits (its counts are in the database, shared by every process)."""
    state = request.app.state
    if not hasattr(state, "sign_in_throttle"):
        state.sign_in_throttle = SignInThrottle()
    throttle: SignInThrottle = state.sign_in_throttle
    return throttle


def client_of(request: Request) -> Client:
    return Client(host=request.client.host if request.client else None,
                  user_agent=request.headers.get("user-agent"))


# A request with this header set to 1 does not count as activity for the automatic logoff: a page's own
# automatic refresh must not keep an unattended screen signed in (static/session.js sets it on every htmx
# request that no user event caused, e.g. hx-trigger="every 30s" polling).
BACKGROUND_HEADER = "x-carepath-background"


def is_background(request: Request) -> bool:
    return request.headers.get(BACKGROUND_HEADER) == "1"


def signed_in_user(request: Request, touch: bool = True) -> WebUser | None:
    """The signed-in user; `touch=False` (or the background header) for requests a page makes by itself
    (polling), which are not the user's activity and must not hold off the automatic logoff."""
    token = request.cookies.get(SESSION_COOKIE)
    found = session_user(engine_of(request), token, idle_limit(request), touch and not is_background(request))
    if found is None or token is None:
        return None
    principal, session_id = found
    return WebUser(principal, session_id, session_csrf(token))


def session_csrf(token: str) -> str:
    return hmac.new(token.encode(), b"carepath csrf", hashlib.sha256).hexdigest()


def csrf_matches(expected: str | None, given: object) -> bool:
    return bool(expected) and isinstance(given, str) and hmac.compare_digest(expected or "", given)


def sign_in_csrf(request: Request) -> str:
    """The sign-in form's token: the one its cookie already holds, else a new one (set by `set_cookie`)."""
    current = request.cookies.get(SIGN_IN_COOKIE)
    return current if current and len(current) <= 100 else secrets.token_urlsafe(32)


def is_https(request: Request) -> bool:
    if request.url.scheme == "https":
        return True
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return settings_of(request).web_trust_forwarded_proto and forwarded == "https"


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True, samesite="lax",
                        secure=is_https(request))


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    set_cookie(request, response, SESSION_COOKIE, token, int(MAX_SESSION.total_seconds()))


def clear_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(name, path="/", httponly=True, samesite="lax", secure=is_https(request))
