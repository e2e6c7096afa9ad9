"""FHIR search parameters: how a resource's table of parameters is declared, and how the values of a query
are read. Anything the table does not name, and any value that cannot be read, is refused (400) with the
parameter named; nothing is ignored silently.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from carepath.engine.errors import BadRequest
from carepath.engine.fhir_queries import Bound

MAX_VALUE = 300  # characters in one parameter's value
MAX_VALUES = 20  # comma-separated alternatives in one value
DEFAULT_COUNT = 50
MAX_COUNT = 200  # a larger _count is answered with pages of this many (FHIR lets a server return fewer)
MAX_OFFSET = 10_000
FORMAT = "_format"  # checked by wire.check_format; no search parameter


@dataclass(frozen=True)
class SearchParam:
    """One search parameter as the CapabilityStatement declares it (name, FHIR search type, what it matches)."""

    name: str
    type: str  # FHIR search-param-type: token, reference, date, string, uri, number
    documentation: str
    repeats: bool = False  # may be given more than once; every one must hold (a range: ge and le)


COUNT = SearchParam("_count", "number", f"results per page, 1 or more (default {DEFAULT_COUNT}, at most {MAX_COUNT})")
OFFSET = SearchParam("_offset", "number", "how many results to skip: the paging links carry it")
PAGING = (COUNT, OFFSET)


@dataclass(frozen=True)
class Paging:
    count: int
    offset: int


def read_query(pairs: Sequence[tuple[str, str]], params: Sequence[SearchParam], resource: str) -> dict[str, list[str]]:
    """The query's values by parameter name, refusing unknown names, modifiers, repeats and long values."""
    known = {p.name: p for p in params}
    values: dict[str, list[str]] = {}
    for name, value in pairs:
        if name == FORMAT:
            continue
        param = known.get(name)
        if param is None:
            base = name.split(":", 1)[0]
            if base in known:
                raise BadRequest(f"search parameter '{name}': modifiers are not supported on {resource}")
            raise BadRequest(f"unknown search parameter '{name[:60]}' for {resource}; it supports "
                             f"{', '.join(sorted(known))} (see /fhir/metadata)")
        if name in values and not param.repeats:
            raise BadRequest(f"search parameter '{name}' is given twice; give it once (several values: "
                             "separate them with commas)")
        if len(value) > MAX_VALUE:
            raise BadRequest(f"search parameter '{name}' is longer than {MAX_VALUE} characters")
        values.setdefault(name, []).append(value)
    return values


def one(values: dict[str, list[str]], name: str) -> str | None:
    found = values.get(name)
    return found[0] if found else None


def alternatives(name: str, value: str) -> list[str]:
    """A value's comma-separated alternatives (any may match)."""
    items = [item.strip() for item in value.split(",")]
    if any(not item for item in items) or len(items) > MAX_VALUES:
        raise BadRequest(f"search parameter '{name}': '{value[:60]}' is not a list of up to {MAX_VALUES} values")
    return items


def codes(name: str, value: str, allowed: Sequence[str], system: str | None = None) -> list[str]:
    """Token values that must be codes of one value set (optionally written `system|code`)."""
    found = []
    for item in alternatives(name, value):
        written_system, _, code = item.rpartition("|")
        if written_system and system is not None and written_system != system:
            raise BadRequest(f"search parameter '{name}': system '{written_system[:80]}' is not {system}")
        if code not in allowed:
            raise BadRequest(f"search parameter '{name}': '{code[:60]}' is not one of {', '.join(allowed)}")
        found.append(code)
    return found


def reference(name: str, value: str, resource_type: str) -> str:
    """The id of a reference search value: `Type/id` or a bare id."""
    written_type, _, ref_id = value.rpartition("/")
    if written_type and written_type.rsplit("/", 1)[-1] != resource_type:
        raise BadRequest(f"search parameter '{name}': '{value[:80]}' is not a reference to a {resource_type}")
    if not ref_id:
        raise BadRequest(f"search parameter '{name}': give a {resource_type} id ({resource_type}/ID or ID)")
    return ref_id


def number(name: str, value: str, low: int, high: int | None = None) -> int:
    if not re.fullmatch(r"\d{1,9}", value) or int(value) < low:
        raise BadRequest(f"search parameter '{name}': '{value[:40]}' is not a whole number of {low} or more")
    return min(int(value), high) if high is not None else int(value)


def paging(values: dict[str, list[str]]) -> Paging:
    count = one(values, COUNT.name)
    offset = one(values, OFFSET.name)
    return Paging(number(COUNT.name, count, 1, MAX_COUNT) if count else DEFAULT_COUNT,
                  number(OFFSET.name, offset, 0) if offset else 0)


PREFIXES: tuple[str, ...] = ("eq", "ge", "gt", "le", "lt")
DATE_FORMAT = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2})"
                         r"(T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:\d{2}))?)?)?")


def date_bounds(name: str, value: str, dates_only: bool = False) -> tuple[Bound, ...]:
    """A date search value (`[prefix]YYYY[-MM[-DD[Thh:mm[:ss][Z|+hh:mm]]]]`, UTC for dates) as the bounds an
    instant must meet: the value is the range its precision covers (a day, a month), as FHIR reads it."""
    prefix = value[:2] if value[:2] in PREFIXES else "eq"
    text = value[2:] if value[:2] in PREFIXES else value
    if dates_only and "T" in text:
        raise BadRequest(f"search parameter '{name}': '{text[:40]}' has a time; give a date (YYYY-MM-DD)")
    start, end = _date_range(name, text)
    bounds: dict[str, tuple[Bound, ...]] = {
        "eq": (Bound("ge", start), Bound("lt", end)), "ge": (Bound("ge", start),), "gt": (Bound("ge", end),),
        "lt": (Bound("lt", start),), "le": (Bound("lt", end),)}
    return bounds[prefix]


def _date_range(name: str, text: str) -> tuple[datetime, datetime]:
    match = DATE_FORMAT.fullmatch(text)
    problem = (f"search parameter '{name}': '{text[:40]}' is not a date (YYYY, YYYY-MM, YYYY-MM-DD) or a time "
               "with its offset (YYYY-MM-DDThh:mm:ssZ), after an optional prefix eq, ge, gt, le or lt")
    if match is None:
        raise BadRequest(problem)
    year, month, day, time = match.groups()
    try:
        if time:
            instant = datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
            step = timedelta(seconds=1) if re.match(r"T\d{2}:\d{2}:", time) else timedelta(minutes=1)
            return instant, instant + step
        if day:
            first = datetime.combine(date(int(year), int(month), int(day)), datetime.min.time(), UTC)
            return first, first + timedelta(days=1)
        if month:
            first = datetime(int(year), int(month), 1, tzinfo=UTC)
            following = datetime(int(year) + int(month) // 12, int(month) % 12 + 1, 1, tzinfo=UTC)
            return first, following
        return datetime(int(year), 1, 1, tzinfo=UTC), datetime(int(year) + 1, 1, 1, tzinfo=UTC)
    except ValueError as exc:  # a day that does not exist
        raise BadRequest(problem) from exc
    except OverflowError as exc:
        raise BadRequest(f"search parameter '{name}': '{text[:40]}' reaches beyond the year 9999") from exc
