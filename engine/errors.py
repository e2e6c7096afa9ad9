"""Domain errors raised by the engine and mapped to HTTP statuses in one place (api/errors.py).

    CarePathError
    ├── NotFound            the thing asked for does not exist (404)
    ├── Conflict            the request collides with current state (409)
    │   └── InvalidTransition   the action is not allowed in the current status (409)
    ├── PermissionDenied    the user's role does not allow the action (403)
    ├── Unauthenticated     no valid credentials (401)
    ├── ValidationFailed    the input is wrong; carries located problems (422)
    │   └── DiagramInvalid  an uploaded BPMN/DMN package cannot be deployed
    ├── PayloadTooLarge     an upload is larger than allowed (413)
    ├── BadRequest          a query the server does not understand: an unknown or invalid parameter (400)
    └── NotAcceptable       no representation the client accepts (406)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Problem:
    """One located problem in user input, e.g. a BPMN element at a line of an uploaded file."""

    message: str
    file: str | None = None
    line: int | None = None
    element_id: str | None = None
    field: str | None = None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


class CarePathError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(CarePathError):
    pass


class Conflict(CarePathError):
    pass


class InvalidTransition(Conflict):
    pass


class PermissionDenied(CarePathError):
    pass


class Unauthenticated(CarePathError):
    pass


class ValidationFailed(CarePathError):
    def __init__(self, message: str, problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.problems = list(problems or [])


class DiagramInvalid(ValidationFailed):
    """An upload that cannot be deployed: its problems, and the warnings found before it was refused (so a
    lead fixes everything in one round)."""

    def __init__(self, message: str, problems: list[Problem] | None = None,
                 warnings: list[Problem] | None = None) -> None:
        super().__init__(message, problems)
        self.warnings = list(warnings or [])


class PayloadTooLarge(CarePathError):
    pass


class BadRequest(CarePathError):
    """A request naming a parameter the server does not know, or a value it cannot read (e.g. a FHIR search)."""


class NotAcceptable(CarePathError):
    """The client accepts no format the server answers in (e.g. FHIR `_format=xml`)."""
