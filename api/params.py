"""Query and path parameters shared by the routes, bounded so that no value reaches the database (or a
date conversion) that it cannot hold: a bad one is a `422` naming the parameter, never a `500`.

- `offset` (every paged list): 0 to 2^62. Beyond that SQLite's and PostgreSQL's 64-bit LIMIT/OFFSET
  arithmetic (offset + page) could overflow; no list has that many rows.
- version numbers and other integer ids in paths: 1 to 2^31 - 1, the range of their INTEGER columns.
- instants (`from`, `to`, `due_before`): ISO 8601 with a UTC offset, converted to UTC while the request is
  validated; one that is not a time in UTC (`0001-01-01T00:00:00+14:00` is in year 0 there) is refused.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Path, Query, Request
from pydantic import AfterValidator

from carepath.engine.bounds import nul_refused
from carepath.engine.clock import to_utc

MAX_OFFSET = 2**62
MAX_INT_ID = 2**31 - 1
INSTANT = "ISO 8601 with a UTC offset, e.g. 2026-11-30T17:00:00Z"


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else to_utc(value)


Instant = Annotated[datetime | None, AfterValidator(_utc)]
OffsetParam = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="rows to skip (at most 2^62)")]
VersionPath = Annotated[int, Path(ge=1, le=MAX_INT_ID, description="the version number (1, 2, ...)")]
IdPath = Annotated[int, Path(ge=1, le=MAX_INT_ID)]


def no_nul_in_path(request: Request) -> None:
    """Every route's first dependency: a NUL character in a path parameter (an id, a name) is a 422 naming
    it, before it reaches PostgreSQL, which refuses it in text (query and body: api/guards.py)."""
    for name, value in request.path_params.items():
        if isinstance(value, str) and "\x00" in value:
            raise nul_refused(name)
