"""The web app's pages: `/` → sign-in or the worklist, `/signin`, `/signout`, `/app/...`.

Server-rendered (Jinja2, autoescaped), working without JavaScript. Authenticated by the session cookie
(web/cookies.py), never by a bearer token; every POST checks its form's CSRF token first.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from carepath.engine.errors import NotFound, Unauthenticated
from carepath.engine.usecases.web_sessions import end_session, list_sessions, sign_in, sign_out

from .assets import templates
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
from .worklist import my_worklist

router = APIRouter(include_in_schema=False)
WORKLIST = "/app/worklist"
SIGN_IN = "/signin"
MAX_FIELD = 2000  # characters of a form field kept; longer is refused by the use case's own bounds


def _page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    idle = settings_of(request).web_idle_minutes
    return templates.TemplateResponse(request, template, {"csrf_field": CSRF_FIELD, "idle_minutes": idle, **context},
                                      status_code=status, headers={"Cache-Control": "no-store"})


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _refused(request: Request, user: WebUser | None) -> HTMLResponse:
    return _page(request, "refused.html", 403, user=user)


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {key: value[:MAX_FIELD] for key, value in form.items() if isinstance(value, str)}


@router.get("/")
def home(request: Request) -> Response:
    return _redirect(WORKLIST if signed_in_user(request) else SIGN_IN)


@router.get(SIGN_IN)
def sign_in_form(request: Request) -> Response:
    if signed_in_user(request):
        return _redirect(WORKLIST)
    return _sign_in_page(request, 200)


def _sign_in_page(request: Request, status: int, error: str | None = None, name: str = "") -> Response:
    token = sign_in_csrf(request)
    response = _page(request, "signin.html", status, user=None, error=error, name=name, csrf=token)
    set_cookie(request, response, SIGN_IN_COOKIE, token, SIGN_IN_FORM_SECONDS)
    return response


@router.post(SIGN_IN)
async def sign_in_submit(request: Request) -> Response:
    form = await _form(request)
    if not csrf_matches(request.cookies.get(SIGN_IN_COOKIE), form.get(CSRF_FIELD)):
        return _refused(request, None)
    name = form.get("username", "")
    try:
        signed = sign_in(engine_of(request), throttle_of(request), name, form.get("password", ""),
                         client_of(request))
    except Unauthenticated as refused:
        return _sign_in_page(request, 401, str(refused), name.strip()[:200])
    response = _redirect(WORKLIST)
    set_session_cookie(request, response, signed.token)
    clear_cookie(request, response, SIGN_IN_COOKIE)
    return response


@router.post("/signout")
async def sign_out_submit(request: Request) -> Response:
    user = signed_in_user(request)
    form = await _form(request)
    if user is not None:
        if not csrf_matches(user.csrf_token, form.get(CSRF_FIELD)):
            return _refused(request, user)
        sign_out(engine_of(request), user.principal, user.session_id)
    response = _redirect(SIGN_IN)
    clear_cookie(request, response, SESSION_COOKIE)
    return response


@router.get(WORKLIST)
def worklist(request: Request) -> Response:
    user = signed_in_user(request)
    if user is None:
        return _redirect(SIGN_IN)
    rows, total, exact, zone = my_worklist(engine_of(request), user.principal)
    return _page(request, "worklist.html", user=user, rows=rows, total=total, exact=exact, zone=zone)


@router.get("/app/sessions")
def sessions(request: Request) -> Response:
    user = signed_in_user(request)
    if user is None:
        return _redirect(SIGN_IN)
    return _sessions_page(request, user, 200)


def _sessions_page(request: Request, user: WebUser, status: int, error: str | None = None) -> Response:
    rows = list_sessions(engine_of(request), user.principal, idle_limit(request))
    return _page(request, "sessions.html", status, user=user, sessions=rows, error=error)


@router.post("/app/sessions/{session_id}/end")
async def end_session_submit(request: Request,
                             session_id: Annotated[int, PathParam(ge=1, le=2**31 - 1)]) -> Response:
    user = signed_in_user(request)
    if user is None:
        return _redirect(SIGN_IN)
    form = await _form(request)
    if not csrf_matches(user.csrf_token, form.get(CSRF_FIELD)):
        return _refused(request, user)
    try:
        end_session(engine_of(request), user.principal, session_id)
    except NotFound as missing:
        return _sessions_page(request, user, 404, str(missing))
    if session_id == user.session_id:
        response = _redirect(SIGN_IN)
        clear_cookie(request, response, SESSION_COOKIE)
        return response
    return _redirect("/app/sessions")
