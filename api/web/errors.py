"""Errors on the web app's routes answer as HTML pages; everywhere else (the JSON API, /docs) as before.

Registered after `api.errors.install_error_handlers`, these handlers take the same exception classes and
hand anything outside the web app's paths (`pages.is_web_path`) to the JSON handlers unchanged. The status
of a domain error comes from `api.errors.status_for`, the one mapping both share.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from carepath.engine.errors import CarePathError

from .. import errors as api_errors
from .pages import (
    TITLES,
    FormRefused,
    SignInRequired,
    domain_error_page,
    error_page,
    is_web_path,
    refused,
    sign_in_redirect,
)


def _field_of(error: dict[str, object]) -> str:
    location = [str(p) for p in error.get("loc", ()) or ()]  # type: ignore[attr-defined]
    return location[-1] if location else "the form"


async def _domain(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CarePathError)
    if is_web_path(request.url.path):
        return domain_error_page(request, exc)
    return api_errors.domain_error(exc)


async def _invalid(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if not is_web_path(request.url.path):
        return api_errors.request_invalid(exc)
    problems = [f"{_field_of(e)}: {e.get('msg')}" for e in exc.errors()]
    path_problem = any((e.get("loc") or ("",))[0] == "path" for e in exc.errors())
    if path_problem:  # an id out of range or not a number: nothing by that id
        return error_page(request, 404, TITLES[404], f"there is nothing at {request.url.path}")
    if request.method == "GET":  # a link or an address typed by hand, not a form
        return error_page(request, 422, TITLES[422], "this address has a value that is not valid", problems)
    return error_page(request, 422, TITLES[422], "the form was not complete or not valid; nothing was changed",
                      problems)


async def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if not is_web_path(request.url.path):
        return api_errors.http_error(request, exc)
    message = {404: f"there is no page at {request.url.path}",
               405: f"{request.url.path} does not answer {request.method}"}.get(exc.status_code, str(exc.detail))
    if exc.status_code == 405 and request.method == "GET":  # e.g. Enter in the address bar after a form was sent
        message = ("this address is where a form is sent, not a page to open: go back to the page the form was "
                   "on")
    return error_page(request, exc.status_code, TITLES.get(exc.status_code, "Error"), message)


async def _sign_in_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInRequired)
    return sign_in_redirect(exc.back_to)


async def _form_refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, FormRefused)
    return refused(request, exc.user)


def error_response(request: Request, exc: Exception) -> Response:
    """For `api.guards.ErrorResponses` (errors raised by the middleware: a body too large, a NUL in a query
    value): a page on the web app's paths, the JSON error elsewhere."""
    if is_web_path(request.url.path):
        if isinstance(exc, CarePathError):
            return domain_error_page(request, exc)
        assert isinstance(exc, HTTPException)
        return error_page(request, exc.status_code, TITLES.get(exc.status_code, "Error"), str(exc.detail))
    return api_errors.error_response(request, exc)


def install_web_error_handlers(app: FastAPI) -> None:
    """Call after `api.errors.install_error_handlers`: these replace its handlers with ones that answer web
    paths with pages and give every other path to it."""
    app.add_exception_handler(CarePathError, _domain)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(SignInRequired, _sign_in_required)
    app.add_exception_handler(FormRefused, _form_refused)
