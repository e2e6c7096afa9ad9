"""Query and path parameters shared by the routes, bounded so that no value reaches the database (or a
date conversion) that it cannot hold: a bad one is a `422` naming the parameter, never a `500`.

- `offset` (every paged list): 0 to 2^62. Beyond that SQLite's and PostgreSQL's 64-bit LIMIT/OFFSET
  arithmetic (offset + page) could overflow; no list has that many rows.
- version numbers and other integer ids in paths: 1 to 2^31 - 1, the range of their INTEGER columns.
- instants (`from`, `to`, `due_before`): ISO 8601 with a UTC offset, converted to UTC while the request is
  validated; one that is not a time in UTC (`0001-01-01T00:00:00+14:00` is in year 0 there) is refused.
- periods (`from`, `to` of the audit trail and the compliance report): an instant as above, or a date alone,
  which the route turns into that day's bounds in the pathway's time zone (`usecases/periods.py`).
- path parameters: no NUL character (`no_nul_in_path`, every route's first dependency).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import Path, Query, Request
from pydantic import AfterValidator, PlainValidator, WithJsonSchema

from carepath.engine.bounds import nul_refused
from carepath.engine.clock import to_utc

MAX_OFFSET = 2**62
MAX_INT_ID = 2**31 - 1
INSTANT = "ISO 8601 with a UTC offset, e.g. 2026-11-30T17:00:00Z"


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else to_utc(value)


Instant = Annotated[datetime | None, AfterValidator(_utc)]

INSTANT_OR_DAY = f"{INSTANT}, or a date (2026-11-30: that whole day in the pathway's time zone)"
DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _instant_or_day(value: Any) -> datetime | date | None:
    """A period's end as given: a date, or an instant with an offset converted to UTC (the date is converted
    by the route, which knows the pathway and so the time zone)."""
    if value is None or isinstance(value, date):
        return _utc(value) if isinstance(value, datetime) else value
    text = str(value).strip()
    try:
        if DAY.fullmatch(text):
            return date.fromisoformat(text)
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"is not {INSTANT_OR_DAY}") from None
    if parsed.tzinfo is None:
        raise ValueError("needs a UTC offset (2026-11-30T17:00:00Z), or is a date alone (2026-11-30: that whole "
                         "day in the pathway's time zone)")
    return _utc(parsed)


InstantOrDay = Annotated[datetime | date | None, PlainValidator(_instant_or_day),
                         WithJsonSchema({"anyOf": [{"type": "string", "format": "date-time"},
                                                   {"type": "string", "format": "date"}]})]
OffsetParam = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="rows to skip (at most 2^62)")]
VersionPath = Annotated[int, Path(ge=1, le=MAX_INT_ID, description="the version number (1, 2, ...)")]
IdPath = Annotated[int, Path(ge=1, le=MAX_INT_ID)]


async def no_nul_in_path(request: Request) -> None:
    """Every route's first dependency: a NUL character in a path parameter (an id, a name) is a 422 naming
    it, before it reaches PostgreSQL, which refuses it in text (query and body: api/guards.py)."""
    for name, value in request.path_params.items():
        if isinstance(value, str) and "\x00" in value:
            raise nul_refused(name)
