"""Domain errors -> HTTP status codes, in one place."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from carepath.engine.errors import (
    CarePathError,
    Conflict,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    Unauthenticated,
    ValidationFailed,
)

log = logging.getLogger("carepath.api")

STATUS_BY_ERROR: list[tuple[type[CarePathError], int]] = [
    (NotFound, 404),
    (Conflict, 409),
    (PermissionDenied, 403),
    (Unauthenticated, 401),
    (ValidationFailed, 422),
    (PayloadTooLarge, 413),
]


def status_for(exc: CarePathError) -> int:
    for error_class, status in STATUS_BY_ERROR:
        if isinstance(exc, error_class):
            return status
    return 400


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CarePathError)
    status = status_for(exc)
    body: dict[str, object] = {"error": type(exc).__name__, "message": exc.message}
    if isinstance(exc, ValidationFailed):
        body["errors"] = [p.as_dict() for p in exc.problems]
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


async def _request_invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    described = [(_describe(e), e) for e in exc.errors()]
    errors = [{"message": text, "location": list(e.get("loc", ())), "field": _field(e)} for text, e in described]
    message = "the request is not valid: " + "; ".join(text for text, _ in described[:3])
    return JSONResponse({"error": "ValidationFailed", "message": message, "errors": errors}, status_code=422)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return JSONResponse({"error": "InternalError", "message": "an unexpected error occurred; it was logged"},
                        status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(CarePathError, _domain_error)
    app.add_exception_handler(RequestValidationError, _request_invalid)
    app.add_exception_handler(Exception, _unexpected)
