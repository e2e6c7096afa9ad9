"""The web app's pages: `/` → sign-in or the worklist, `/signin`, `/signout`, `/app/sessions` (the worklist:
worklist_routes.py).

Server-rendered (Jinja2, autoescaped), working without JavaScript. Authenticated by the session cookie
(web/cookies.py), never by a bearer token; every POST checks its form's CSRF token first.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import Response

from carepath.engine.errors import NotFound, Unauthenticated
from carepath.engine.usecases.web_sessions import end_session, list_sessions, sign_in, sign_out

from .cookies import (
    CSRF_FIELD,
    SESSION_COOKIE,
    SIGN_IN_COOKIE,
    SIGN_IN_FORM_SECONDS,
    WebUser,
    clear_cookie,
    client_of,
    csrf_matches,
    engine_of,
    idle_limit,
    set_cookie,
    set_session_cookie,
    settings_of,
    sign_in_csrf,
    signed_in_user,
    throttle_of,
)
from .flash import redirect_saying
from .pages import SIGN_IN, WORKLIST, page, posted_form, redirect, refused, require_user, safe_next, text_fields
from .search_values import local_time

router = APIRouter(include_in_schema=False)


async def _form(request: Request) -> dict[str, str]:
    return text_fields(await request.form())


@router.get("/")
def home(request: Request) -> Response:
    return redirect(WORKLIST if signed_in_user(request) else SIGN_IN)


@router.get(SIGN_IN)
def sign_in_form(request: Request, next: str | None = None) -> Response:
    if signed_in_user(request):
        return redirect(safe_next(next))
    return _sign_in_page(request, 200, back_to=safe_next(next))


def _sign_in_page(request: Request, status: int, error: str | None = None, name: str = "",
                  back_to: str = WORKLIST) -> Response:
    token = sign_in_csrf(request)
    settings = settings_of(request)
    provider = settings.oidc_provider_name if settings.oidc_web_sign_in() else None
    response = page(request, "signin.html", status, user=None, error=error, name=name, csrf=token,
                    back_to=back_to, oidc_provider=provider)
    set_cookie(request, response, SIGN_IN_COOKIE, token, SIGN_IN_FORM_SECONDS)
    return response


@router.post(SIGN_IN)
async def sign_in_submit(request: Request) -> Response:
    form = await _form(request)
    if not csrf_matches(request.cookies.get(SIGN_IN_COOKIE), form.get(CSRF_FIELD)):
        return refused(request, None)
    name = form.get("username", "")
    back_to = safe_next(form.get("next"))
    try:
        signed = sign_in(engine_of(request), throttle_of(request), name, form.get("password", ""),
                         client_of(request))
    except Unauthenticated as failed:
        return _sign_in_page(request, 401, str(failed), name.strip()[:200], back_to)
    response = redirect(back_to)
    set_session_cookie(request, response, signed.token)
    clear_cookie(request, response, SIGN_IN_COOKIE)
    return response


@router.post("/signout")
async def sign_out_submit(request: Request) -> Response:
    user = signed_in_user(request)
    form = await _form(request)
    if user is not None:
        if not csrf_matches(user.csrf_token, form.get(CSRF_FIELD)):
            return refused(request, user)
        sign_out(engine_of(request), user.principal, user.session_id)
    response = redirect(SIGN_IN)
    clear_cookie(request, response, SESSION_COOKIE)
    return response


@router.get("/app/sessions")
def sessions(request: Request) -> Response:
    user = require_user(request)
    return _sessions_page(request, user, 200)


def _sessions_page(request: Request, user: WebUser, status: int, error: str | None = None) -> Response:
    engine = engine_of(request)
    rows = list_sessions(engine, user.principal, idle_limit(request))
    zone = engine.time_context().tz
    return page(request, "sessions.html", status, user=user, sessions=rows, error=error, zone=zone.key,
                when=local_time(zone))


@router.post("/app/sessions/{session_id}/end")
async def end_session_submit(request: Request,
                             session_id: Annotated[int, PathParam(ge=1, le=2**31 - 1)]) -> Response:
    user = require_user(request)
    await posted_form(request, user)
    try:
        end_session(engine_of(request), user.principal, session_id)
    except NotFound as missing:
        return _sessions_page(request, user, 404, str(missing))
    if session_id == user.session_id:
        response = redirect(SIGN_IN)
        clear_cookie(request, response, SESSION_COOKIE)
        return response
    return redirect_saying(request, "/app/sessions", "The session was ended.")
