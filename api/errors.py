"""Domain errors -> HTTP status codes, in one place (`status_for`), and the product's JSON error answers.

Paths with a wire format of their own render the same statuses and messages in it: /fhir OperationOutcomes
(api/fhir/wire.py), /engine-rest Camunda's `{"type", "message"}` (api/engine_rest/wire.py), the web app's
pages (api/web/errors.py). Each wraps the handlers installed here for its paths only (`install_path_answers`).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from carepath.engine.errors import (
    BadRequest,
    CarePathError,
    Conflict,
    DiagramInvalid,
    NotAcceptable,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    Unauthenticated,
    ValidationFailed,
)

STATUS_BY_ERROR: list[tuple[type[CarePathError], int]] = [
    (NotFound, 404),
    (Conflict, 409),
    (PermissionDenied, 403),
    (Unauthenticated, 401),
    (ValidationFailed, 422),
    (PayloadTooLarge, 413),
    (BadRequest, 400),
    (NotAcceptable, 406),
]


def status_for(exc: CarePathError) -> int:
    for error_class, status in STATUS_BY_ERROR:
        if isinstance(exc, error_class):
            return status
    return 400


def domain_error(exc: CarePathError) -> JSONResponse:
    status = status_for(exc)
    body: dict[str, object] = {"error": type(exc).__name__, "message": exc.message}
    if isinstance(exc, ValidationFailed):
        body["errors"] = [p.as_dict() for p in exc.problems]
    if isinstance(exc, DiagramInvalid) and exc.warnings:
        body["warnings"] = [p.as_dict() for p in exc.warnings]
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


def _describe(error: Any) -> str:
    location = [str(p) for p in error.get("loc", ()) or ()]
    if error.get("type") == "json_invalid":
        return "the request body is not valid JSON"
    where = ".".join(location[1:] if location[:1] == ["body"] and len(location) > 1 else location)
    return f"{where}: {error.get('msg')}"


REQUEST_PARTS = ("query", "path", "body", "header", "cookie")


def _field(error: Any) -> str | None:
    """The parameter (or body field) at fault, as the domain's problems name it: `offset`, `from`,
    `version`, `data.name`."""
    location = [str(p) for p in error.get("loc", ()) or ()]
    return ".".join(location[1:]) if len(location) > 1 and location[0] in REQUEST_PARTS else None


def invalid_message(exc: RequestValidationError) -> str:
    """What a refused request says: its first three problems."""
    return "the request is not valid: " + "; ".join(_describe(e) for e in exc.errors()[:3])


def request_invalid(exc: RequestValidationError) -> JSONResponse:
    errors = [{"message": _describe(e), "location": list(e.get("loc", ())), "field": _field(e)} for e in exc.errors()]
    return JSONResponse({"error": "ValidationFailed", "message": invalid_message(exc), "errors": errors},
                        status_code=422)


# HTTP errors Starlette and FastAPI raise themselves (no route, wrong method, a body too large or not
# parsable), named as the domain's errors are.
HTTP_ERROR_NAMES = {400: "BadRequest", 404: "NotFound", 405: "MethodNotAllowed", 413: "PayloadTooLarge"}


def http_message(request: Request, exc: HTTPException) -> str:
    if exc.status_code == 404 and exc.detail == "Not Found":
        return f"there is no {request.url.path} in this API (see /docs)"
    if exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "other methods")
        return f"{request.url.path} does not answer {request.method}; it answers {allowed}"
    return str(exc.detail)


def http_error(request: Request, exc: HTTPException) -> JSONResponse:
    return JSONResponse({"error": HTTP_ERROR_NAMES.get(exc.status_code, "HTTPError"),
                         "message": http_message(request, exc)}, status_code=exc.status_code, headers=exc.headers)


def error_response(request: Request, exc: Exception) -> JSONResponse:
    """The answer to a domain or HTTP error raised outside a route (by the middleware in api/guards.py)."""
    return domain_error(exc) if isinstance(exc, CarePathError) else http_error(request, cast(HTTPException, exc))


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CarePathError)
    return domain_error(exc)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return http_error(request, exc)


async def _request_invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return request_invalid(exc)


def install_error_handlers(app: FastAPI) -> None:
    """Errors inside routes; anything else (an unexpected exception, an error of the middleware) is
    answered by `api.guards.ErrorResponses` with `error_response` or a 500 carrying an error id."""
    app.add_exception_handler(CarePathError, _domain_error)
    app.add_exception_handler(RequestValidationError, _request_invalid)
    app.add_exception_handler(HTTPException, _http_error)


Answer = Callable[[Request, Exception], Response]
Handler = Callable[[Request, Any], Response | Awaitable[Response]]


def install_path_answers(app: FastAPI, on_path: Callable[[str], bool], answer: Answer) -> None:
    """A wire format of its own for some paths (/fhir, /engine-rest): their domain, request and HTTP errors
    are answered by `answer`, every other path's as before. Call after the handlers it wraps are installed."""
    for error_class in (CarePathError, RequestValidationError, HTTPException):
        app.add_exception_handler(error_class, _on_paths(on_path, answer, app.exception_handlers[error_class]))


def _on_paths(on_path: Callable[[str], bool], answer: Answer, previous: Handler) -> Handler:
    async def handle(request: Request, exc: Exception) -> Response:
        if on_path(request.url.path):
            return answer(request, exc)
        answered = previous(request, exc)
        return await answered if inspect.isawaitable(answered) else answered
    return handle


def path_answer_or(on_path: Callable[[str], bool], answer: Answer, respond: Answer) -> Answer:
    """For `api.guards.ErrorResponses` (errors raised by the middleware before a route): `answer` on the
    paths `on_path` accepts, `respond`'s answer elsewhere."""
    def choose(request: Request, exc: Exception) -> Response:
        return (answer if on_path(request.url.path) else respond)(request, exc)
    return choose
