"""What every page route of the web app stands on: rendering a page, redirecting, the signed-in user, the
CSRF check of a posted form, and errors answered as HTML pages.

A page route reads like this:

    @router.post("/app/tasks/{task_id}/claim")
    async def claim(request: Request, task_id: TaskId) -> Response:
        user = require_user(request)              # not signed in: redirected to /signin (SignInRequired)
        form = await posted_form(request, user)   # wrong CSRF token: the "form refused" page (FormRefused)
        claim_task(engine_of(request), user.principal, task_id)   # the engine's use case, as the API calls it
        return redirect(f"/app/tasks/{task_id}")

Domain errors raised by a use case (NotFound, Conflict, PermissionDenied, ValidationFailed, ...) become an
error page with the status `api.errors.status_for` gives them (the one mapping, shared with the JSON API);
a request FastAPI itself refuses (a missing form field, a path id out of range) becomes a 422 or 404 page.
Routes that want the error beside a form field catch `ValidationFailed` themselves and render their form.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.datastructures import FormData

from carepath.engine.errors import CarePathError, ValidationFailed

from ..errors import status_for
from .assets import templates
from .cookies import CSRF_FIELD, WebUser, csrf_matches, settings_of, signed_in_user
from .flash import pending_status, status_shown

MAX_FIELD = 20_000  # characters of one form field kept; the use cases' own bounds refuse what they must
SIGN_IN = "/signin"
WORKLIST = "/app/worklist"
WEB_PREFIXES = ("/app/", "/app")
WEB_PATHS = ("/", SIGN_IN, "/signout", "/signin/oidc", "/signin/oidc/callback")


def is_web_path(path: str) -> bool:
    """The web app's own routes (answered with HTML pages, authenticated by the session cookie); the JSON
    API, /docs and the rest answer as they always did."""
    return path in WEB_PATHS or path == "/app" or path.startswith("/app/")


class SignInRequired(Exception):
    """No signed-in session: the page answers a redirect to sign-in, coming back here afterwards."""

    def __init__(self, back_to: str) -> None:
        super().__init__(back_to)
        self.back_to = back_to


class FormRefused(Exception):
    """A posted form without this session's CSRF token: nothing was changed."""

    def __init__(self, user: WebUser | None) -> None:
        super().__init__("form refused")
        self.user = user


def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A page of the web app: never cached (it may show patients), with what base.html needs, the status
    message of the action that led here included (api/web/flash.py)."""
    settings = settings_of(request)
    idle = settings.web_idle_minutes
    warning = min(settings.web_idle_warning_seconds, idle * 30)  # at most half the idle time
    whole_page = request.headers.get("hx-request") != "true"  # a fragment never takes the status message
    said = pending_status(request) if whole_page else None
    response = templates.TemplateResponse(request, template, {"csrf_field": CSRF_FIELD, "idle_minutes": idle,
                                                              "idle_warning_seconds": warning,
                                                              "status_message": said, **context},
                                          status_code=status, headers={"Cache-Control": "no-store"})
    if whole_page:
        status_shown(request, response)
    return response


def redirect(url: str) -> RedirectResponse:
    """See-other: after a POST the browser GETs `url` (reload does not send the form again)."""
    return RedirectResponse(url, status_code=303)


def require_user(request: Request) -> WebUser:
    """The signed-in user of this request, or SignInRequired (answered as a redirect to sign-in)."""
    user = signed_in_user(request)
    if user is None:
        back = request.url.path if request.method == "GET" else WORKLIST
        raise SignInRequired(back)
    return user


async def posted_form(request: Request, user: WebUser | None) -> FormData:
    """The posted form, after its CSRF token is checked against the user's session (FormRefused if not).
    Values are strings cut at MAX_FIELD characters; uploads are kept as they are."""
    form = await request.form()
    if user is None or not csrf_matches(user.csrf_token, form.get(CSRF_FIELD)):
        raise FormRefused(user)
    return form


def text_fields(form: FormData) -> dict[str, str]:
    """A form's text fields, one value each (the last), cut at MAX_FIELD characters."""
    return {key: value[:MAX_FIELD] for key, value in form.multi_items() if isinstance(value, str)}


def refused(request: Request, user: WebUser | None) -> HTMLResponse:
    return page(request, "refused.html", 403, user=user)


def sign_in_redirect(back_to: str) -> RedirectResponse:
    target = SIGN_IN if back_to in ("/", WORKLIST, "") else f"{SIGN_IN}?next={quote(back_to, safe='/')}"
    return redirect(target)


def safe_next(value: str | None) -> str:
    """Where to go after sign-in: only a path of the web app itself (never another site)."""
    if value and value.startswith("/app/") and "//" not in value and "\\" not in value and len(value) <= 500:
        return value
    return WORKLIST


def error_page(request: Request, status: int, title: str, message: str,
               problems: list[str] | None = None) -> HTMLResponse:
    """An error as a page: its status, what went wrong in words, and the way back."""
    user = signed_in_user(request) if status != 401 else None
    return page(request, "error.html", status, user=user, title=title, message=message, problems=problems or [])


TITLES = {400: "Request not understood", 401: "Sign-in needed", 403: "Not allowed", 404: "Not found",
          405: "Not available", 409: "Not possible now", 413: "Too large", 422: "Not accepted"}


def domain_error_page(request: Request, exc: CarePathError) -> HTMLResponse:
    status = status_for(exc)
    problems = [p.message for p in exc.problems] if isinstance(exc, ValidationFailed) else []
    return error_page(request, status, TITLES.get(status, "Error"), exc.message, problems)
