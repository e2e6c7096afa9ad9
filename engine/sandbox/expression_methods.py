"""Methods and read-only fields an expression may use on values, by value type.

Methods are looked up on the built-in base type (`str.lower`, not the value's own attribute), so
a subclass in task data cannot swap in different behaviour. String methods that could build huge
text (`replace`, `join`, padding) predict the result length first. `str.format` and `format_map`
are absent on purpose: their field syntax (`{0.__class__}`) reads attributes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime, time, timedelta
from typing import Any

from .budget import Budget
from .errors import SandboxLimitExceeded
from .expression_functions import collection_argument

Method = Callable[..., Any]

_MAX_DATE_FORMAT = 200


def _unbound(owner: type, name: str) -> Method:
    function = getattr(owner, name)

    def impl(budget: Budget, value: Any, *args: Any, **kwargs: Any) -> Any:
        return function(value, *args, **kwargs)

    return impl


def _replace(budget: Budget, text: str, old: str, new: str, count: int = -1) -> str:
    found = text.count(old) if old else len(text) + 1
    if count >= 0:
        found = min(found, count)
    budget.check_length(len(text) + found * (len(new) - len(old)), "text")
    return text.replace(old, new, count)


def _join(budget: Budget, separator: str, items: Any) -> str:
    items = collection_argument(budget, items, "join")
    length = sum(len(item) for item in items if isinstance(item, str))
    budget.check_length(length + len(separator) * max(0, len(items) - 1), "text")
    return separator.join(items)


def _padding(name: str) -> Method:
    function = getattr(str, name)

    def impl(budget: Budget, text: str, width: int, *fill: str) -> str:
        budget.check_length(width, "text")
        return function(text, width, *fill)

    return impl


def _strftime(budget: Budget, value: date | time, pattern: str) -> str:
    if len(pattern) > _MAX_DATE_FORMAT:
        raise SandboxLimitExceeded(f"a date format may be at most {_MAX_DATE_FORMAT} characters long")
    return value.strftime(pattern)


def _listing(name: str) -> Method:
    def impl(budget: Budget, mapping: Mapping[Any, Any]) -> list[Any]:
        budget.check_length(len(mapping), "dict")
        return list(getattr(mapping, name)())

    return impl


def _get(budget: Budget, mapping: Mapping[Any, Any], key: Any, default: Any = None) -> Any:
    return mapping.get(key, default)


def _table(owner: type, names: str, **special: Method) -> dict[str, Method]:
    table = {name: _unbound(owner, name) for name in names.split()}
    table.update(special)
    return table


_STR_METHODS = _table(
    str,
    "lower upper strip lstrip rstrip startswith endswith split rsplit splitlines title capitalize"
    " casefold count find rfind index rindex isdigit isalpha isalnum isspace isnumeric isdecimal"
    " islower isupper removeprefix removesuffix partition rpartition",
    replace=_replace, join=_join, zfill=_padding("zfill"), ljust=_padding("ljust"),
    rjust=_padding("rjust"), center=_padding("center"),
)
_DATE_METHODS = _table(date, "isoformat weekday isoweekday replace isocalendar", strftime=_strftime)
_DATETIME_METHODS = _table(datetime, "isoformat weekday isoweekday replace isocalendar date time",
                           strftime=_strftime)
_TIME_METHODS = _table(time, "isoformat replace", strftime=_strftime)
_TIMEDELTA_METHODS = _table(timedelta, "total_seconds")
_LIST_METHODS = _table(list, "count index")
_TUPLE_METHODS = _table(tuple, "count index")
_MAPPING_METHODS: dict[str, Method] = {
    "get": _get, "keys": _listing("keys"), "values": _listing("values"), "items": _listing("items"),
}

# datetime before date: a datetime is also a date.
_METHODS_BY_TYPE: tuple[tuple[type, dict[str, Method]], ...] = (
    (str, _STR_METHODS), (datetime, _DATETIME_METHODS), (date, _DATE_METHODS), (time, _TIME_METHODS),
    (timedelta, _TIMEDELTA_METHODS), (list, _LIST_METHODS), (tuple, _TUPLE_METHODS),
    (Mapping, _MAPPING_METHODS),
)
_FIELDS_BY_TYPE: tuple[tuple[type, frozenset[str]], ...] = (
    (datetime, frozenset("year month day hour minute second microsecond".split())),
    (date, frozenset("year month day".split())),
    (time, frozenset("hour minute second microsecond".split())),
    (timedelta, frozenset("days seconds microseconds".split())),
)

MAPPING_METHOD_NAMES = frozenset(_MAPPING_METHODS)
METHOD_NAMES = frozenset(name for _, table in _METHODS_BY_TYPE for name in table)
FIELD_NAMES = frozenset(name for _, names in _FIELDS_BY_TYPE for name in names)


def method_for(value: Any, name: str) -> Method | None:
    for owner, table in _METHODS_BY_TYPE:
        if isinstance(value, owner):
            return table.get(name)
    return None


def has_field(value: Any, name: str) -> bool:
    for owner, names in _FIELDS_BY_TYPE:
        if isinstance(value, owner):
            return name in names
    return False
