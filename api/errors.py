"""Domain errors -> HTTP status codes, in one place."""

from __future__ import annotations

from typing import Any, cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
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


def request_invalid(exc: RequestValidationError) -> JSONResponse:
    described = [(_describe(e), e) for e in exc.errors()]
    errors = [{"message": text, "location": list(e.get("loc", ())), "field": _field(e)} for text, e in described]
    message = "the request is not valid: " + "; ".join(text for text, _ in described[:3])
    return JSONResponse({"error": "ValidationFailed", "message": message, "errors": errors}, status_code=422)


# HTTP errors Starlette and FastAPI raise themselves (no route, wrong method, a body too large or not
# parsable), named as the domain's errors are.
HTTP_ERROR_NAMES = {400: "BadRequest", 404: "NotFound", 405: "MethodNotAllowed", 413: "PayloadTooLarge"}


def http_error(request: Request, exc: HTTPException) -> JSONResponse:
    message = str(exc.detail)
    if exc.status_code == 404 and exc.detail == "Not Found":
        message = f"there is no {request.url.path} in this API (see /docs)"
    elif exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "other methods")
        message = f"{request.url.path} does not answer {request.method}; it answers {allowed}"
    return JSONResponse({"error": HTTP_ERROR_NAMES.get(exc.status_code, "HTTPError"), "message": message},
                        status_code=exc.status_code, headers=exc.headers)


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
