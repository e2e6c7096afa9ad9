"""Task data as JSON between the server and script workers.

Only JSON crosses the process boundary, never pickle: unpickling bytes from a worker that runs
untrusted code would hand that code the server. Types JSON lacks travel as small tagged objects
and come back as the same Python types:

    datetime, date, time   {"$sandbox": "datetime", "value": "<ISO 8601>"}  (time zones kept as UTC offsets)
    timedelta              {"$sandbox": "timedelta", "value": [days, seconds, microseconds]}
    Decimal, UUID          {"$sandbox": "decimal", "value": "<text>"}
    tuple, set, frozenset  {"$sandbox": "tuple", "items": [...]}
    dict with non-text keys, or a key named "$sandbox"
                           {"$sandbox": "dict", "items": [[key, value], ...]}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

TAG = "$sandbox"
MAX_DEPTH = 100

_SCALARS: tuple[tuple[type, str, Callable[[Any], Any]], ...] = (
    # datetime before date: a datetime is also a date.
    (datetime, "datetime", lambda value: value.isoformat()),
    (date, "date", lambda value: value.isoformat()),
    (time, "time", lambda value: value.isoformat()),
    (timedelta, "timedelta", lambda value: [value.days, value.seconds, value.microseconds]),
    (Decimal, "decimal", str),
    (UUID, "uuid", str),
)
_SCALAR_READERS: dict[str, Callable[[Any], Any]] = {
    "datetime": datetime.fromisoformat,
    "date": date.fromisoformat,
    "time": time.fromisoformat,
    "timedelta": lambda value: timedelta(*value),
    "decimal": Decimal,
    "uuid": UUID,
}
_COLLECTIONS: dict[str, Callable[[list[Any]], Any]] = {"tuple": tuple, "set": set, "frozenset": frozenset}


class UnsupportedValue(ValueError):
    pass


def to_wire(value: Any, depth: int = 0) -> Any:
    """`value` as JSON-compatible data; raises UnsupportedValue for anything else."""
    if depth > MAX_DEPTH:
        raise UnsupportedValue(f"the value is nested more than {MAX_DEPTH} levels deep")
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list):
        return [to_wire(item, depth + 1) for item in value]
    if isinstance(value, Mapping):
        return _mapping_to_wire(value, depth)
    if isinstance(value, tuple | set | frozenset):
        return {TAG: _collection_tag(value), "items": [to_wire(item, depth + 1) for item in value]}
    for kind, name, write in _SCALARS:
        if isinstance(value, kind):
            return {TAG: name, "value": write(value)}
    raise UnsupportedValue(f"a {type(value).__name__} value cannot be passed to or from a script")


def _collection_tag(value: tuple[Any, ...] | set[Any] | frozenset[Any]) -> str:
    if isinstance(value, tuple):
        return "tuple"
    return "frozenset" if isinstance(value, frozenset) else "set"


def _mapping_to_wire(value: Mapping[Any, Any], depth: int) -> Any:
    if TAG not in value and all(isinstance(key, str) for key in value):
        return {key: to_wire(item, depth + 1) for key, item in value.items()}
    pairs = [[to_wire(key, depth + 1), to_wire(item, depth + 1)] for key, item in value.items()]
    return {TAG: "dict", "items": pairs}


def from_wire(value: Any, depth: int = 0) -> Any:
    """The Python value `to_wire` encoded; raises UnsupportedValue on malformed input."""
    if depth > MAX_DEPTH:
        raise UnsupportedValue(f"the value is nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, list):
        return [from_wire(item, depth + 1) for item in value]
    if not isinstance(value, dict):
        return value
    if TAG not in value:
        return {key: from_wire(item, depth + 1) for key, item in value.items()}
    try:
        return _tagged_from_wire(value, depth)
    except (TypeError, ValueError, ArithmeticError, KeyError) as exc:
        raise UnsupportedValue(f"malformed {value.get(TAG)!r} value: {exc}") from None


def _tagged_from_wire(value: dict[str, Any], depth: int) -> Any:
    name = value[TAG]
    if name == "dict":
        return {from_wire(key, depth + 1): from_wire(item, depth + 1) for key, item in value["items"]}
    if name in _COLLECTIONS:
        return _COLLECTIONS[name]([from_wire(item, depth + 1) for item in value["items"]])
    return _SCALAR_READERS[name](value["value"])
