"""The FHIR wire format: `application/fhir+json` only (the `_format` parameter and the Accept header are
checked), and every error answered as an OperationOutcome whose HTTP status comes from `api.errors.status_for`,
the one mapping of domain errors to statuses.

The handlers wrap the ones already installed (api/errors.py, api/web/errors.py): a path under /fhir gets an
OperationOutcome, every other path the answer it had before.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from carepath.engine.errors import CarePathError, NotAcceptable

from ..errors import Answer, install_path_answers, path_answer_or, status_for

PREFIX = "/fhir"
MEDIA_TYPE = "application/fhir+json"
FHIR_VERSION = "4.0.1"
FORMATS = ("json", "application/json", "application/fhir+json")  # what `_format` may say
ACCEPTED = ("application/fhir+json", "application/json", "application/*", "*/*")
# OperationOutcome.issue.code (FHIR value set issue-type) for each HTTP status an error is answered with.
ISSUE_TYPES = {400: "invalid", 401: "login", 403: "forbidden", 404: "not-found", 405: "not-supported",
               406: "not-supported", 409: "conflict", 413: "too-long", 422: "invalid"}



class FhirResponse(JSONResponse):
    media_type = MEDIA_TYPE


def is_fhir_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def check_format(request: Request) -> None:
    """Refuses (406) a `_format` or an Accept header that asks for anything but JSON."""
    asked = request.query_params.get("_format")
    if asked is not None and asked.strip().lower() not in FORMATS:
        raise NotAcceptable(f"_format={asked[:50]} is not served: this server answers FHIR JSON only "
                            "(_format=json or application/fhir+json)")
    accept = request.headers.get("accept")
    if accept and not any(kind.split(";")[0].strip().lower() in ACCEPTED for kind in accept.split(",")):
        raise NotAcceptable(f"Accept: {accept[:100]} is not served: this server answers {MEDIA_TYPE} only")


def outcome(status: int, message: str, headers: Mapping[str, str] | None = None) -> FhirResponse:
    body: dict[str, Any] = {"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": ISSUE_TYPES.get(status, "processing"), "diagnostics": message}]}
    return FhirResponse(body, status_code=status, headers=headers)


def domain_outcome(exc: CarePathError) -> FhirResponse:
    status = status_for(exc)
    return outcome(status, exc.message, {"WWW-Authenticate": "Bearer"} if status == 401 else None)


def http_outcome(request: Request, exc: HTTPException) -> FhirResponse:
    if exc.status_code == 404:
        message = f"there is no {request.url.path} on this FHIR server (see {PREFIX}/metadata)"
    elif exc.status_code == 405:
        message = (f"{request.url.path} does not answer {request.method}: this FHIR server answers GET (read, "
                   "search), POST on its notification and QuestionnaireResponse endpoints, and PUT and PATCH of "
                   "referral Tasks (see /fhir/metadata)")
    else:
        message = str(exc.detail)
    return outcome(exc.status_code, message, exc.headers)


def invalid_outcome(exc: RequestValidationError) -> FhirResponse:
    problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()[:3])
    return outcome(400, f"the request is not valid: {problems}")


def answer(request: Request, exc: Exception) -> FhirResponse:
    if isinstance(exc, CarePathError):
        return domain_outcome(exc)
    if isinstance(exc, RequestValidationError):
        return invalid_outcome(exc)
    assert isinstance(exc, HTTPException)
    return http_outcome(request, exc)


def install_fhir_error_handlers(app: FastAPI) -> None:
    """Call after the other error handlers are installed: /fhir paths answer OperationOutcomes."""
    install_path_answers(app, is_fhir_path, answer)


def fhir_or(respond: Answer) -> Answer:
    """For `api.guards.ErrorResponses` (errors raised by the middleware before a route): an OperationOutcome
    under /fhir, `respond`'s answer elsewhere."""
    return path_answer_or(is_fhir_path, answer, respond)
