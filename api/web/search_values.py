"""Search forms' values as the auditor's pages read them from the query string: a field left empty is no
filter; a value that is not what the field holds is a `ValidationFailed` naming the field (the 422 page).
Lengths are bounded by the routes' `Query(max_length=...)` before anything here runs."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import Query

from carepath.engine.errors import Problem, ValidationFailed

from ..params import DAY, MAX_OFFSET

MAX_TEXT = 200  # characters of an id, a business key, a user or a group name typed into a search form
PAGE_ROWS = 50
TextQuery = Annotated[str | None, Query(max_length=MAX_TEXT)]
OffsetQuery = Annotated[int, Query(ge=0, le=MAX_OFFSET)]


def text_value(value: str | None) -> str | None:
    """The value without surrounding spaces; None when left empty."""
    stripped = (value or "").strip()
    return stripped or None


def day_value(field: str, value: str | None) -> date | None:
    """A date as a date input sends it (YYYY-MM-DD); None when left empty."""
    text = text_value(value)
    if text is None:
        return None
    try:
        if DAY.fullmatch(text):
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise _refused(field, f"{field} must be a date written YYYY-MM-DD, like 2026-11-30")


def choice_value(field: str, value: str | None, allowed: Iterable[str]) -> str | None:
    """One of `allowed`; None when left empty."""
    text = text_value(value)
    known = sorted(allowed)
    if text is None or text in known:
        return text
    raise _refused(field, f"{field} must be one of {', '.join(known)}")


def field_errors(refused: ValidationFailed) -> dict[str, str]:
    """The problems of a refused search by field, for the form shown again (a problem of no field: `form`)."""
    problems = refused.problems or [Problem(refused.message)]
    return {problem.field or "form": problem.message for problem in problems}


def _refused(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, [Problem(message, field=field)])


@dataclass(frozen=True)
class Paging:
    """Where a paged list stands, and the links to the pages before and after (the same filters)."""

    offset: int
    shown: int
    total: int
    exact: bool
    query: dict[str, str]
    path: str

    @property
    def first(self) -> int:
        return self.offset + 1 if self.shown else 0

    @property
    def last(self) -> int:
        return self.offset + self.shown

    def link(self, offset: int) -> str:
        return with_query(self.path, {**self.query, "offset": str(offset)})

    @property
    def previous(self) -> str | None:
        return self.link(max(self.offset - PAGE_ROWS, 0)) if self.offset > 0 else None

    @property
    def next(self) -> str | None:
        more = self.last < self.total or not self.exact
        return self.link(self.offset + PAGE_ROWS) if more and self.shown == PAGE_ROWS else None


def with_query(path: str, values: dict[str, str]) -> str:
    return f"{path}?{urlencode(values)}" if values else path


def kept_query(values: dict[str, str | None]) -> dict[str, str]:
    """The filters to carry into the next page's link: the ones given."""
    return {key: value for key, value in values.items() if value}


def local_time(zone: ZoneInfo) -> Callable[[datetime | None], str]:
    """A formatter of instants in the care setting's zone, for the templates."""
    def shown(value: datetime | None) -> str:
        return value.astimezone(zone).strftime("%d %b %Y %H:%M") if value else "—"
    return shown
