"""The functions an expression may call; each checks sizes before doing work in C.

Every implementation takes the evaluation's `Budget` first. Functions that would walk an unknown
iterable only accept the sized built-in containers, so nothing can loop without being counted.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from .budget import Budget
from .errors import SandboxLimitExceeded, SandboxViolation

_MISSING: Any = object()
_SUMMABLE = (int, float, Decimal, timedelta)
_MAX_DATE_TEXT = 200


@dataclass(frozen=True, eq=False)
class SafeFunction:
    name: str
    impl: Callable[..., Any]
    # Class-level helpers reachable as attributes, e.g. datetime.fromisoformat.
    class_methods: Mapping[str, SafeFunction] = field(default_factory=dict)

    def __call__(self, budget: Budget, *args: Any, **kwargs: Any) -> Any:
        return self.impl(budget, *args, **kwargs)

    def __repr__(self) -> str:
        return f"<function {self.name}>"


def collection_argument(budget: Budget, value: Any, function: str) -> Collection[Any]:
    """`value` if it is a sized built-in container within the length cap; charged for a full walk."""
    if not isinstance(value, list | tuple | str | set | frozenset | range | Mapping):
        raise SandboxViolation(
            f"{function}() needs a list, tuple, set, dict, range or text, not a {type(value).__name__}")
    budget.check_length(len(value), type(value).__name__)
    budget.charge_for(value)
    return value


def _extreme(pick: Callable[..., Any]) -> Callable[..., Any]:
    def impl(budget: Budget, *args: Any, default: Any = _MISSING) -> Any:
        items = collection_argument(budget, args[0], pick.__name__) if len(args) == 1 else args
        return pick(items) if default is _MISSING else pick(items, default=default)

    return impl


def _sum(budget: Budget, items: Any, start: Any = 0) -> Any:
    if not isinstance(start, _SUMMABLE):
        raise SandboxViolation("sum() only adds numbers, decimals and durations")
    return sum(collection_argument(budget, items, "sum"), start)


def _check_decimal_to_int(budget: Budget, value: Any) -> None:
    if isinstance(value, Decimal) and value.is_finite():
        # Decimal('1e999999') is tiny, the int it becomes is not (and takes seconds to build).
        budget.check_int_bits(math.ceil(max(value.adjusted(), 0) * 3.33))  # 3.33 bits per digit


def _int(budget: Budget, value: Any = 0, *base: int) -> int:
    _check_decimal_to_int(budget, value)
    return int(value, *base)


def _round(budget: Budget, value: Any, ndigits: int | None = None) -> Any:
    if ndigits is None:
        _check_decimal_to_int(budget, value)
        return round(value)
    return round(value, ndigits)


def _str(budget: Budget, value: Any = "") -> str:
    budget.check_text_size(value)
    return str(value)


def _sorted(budget: Budget, items: Any, *, reverse: bool = False) -> list[Any]:
    items = collection_argument(budget, items, "sorted")
    budget.charge_for(*([items] * max(1, len(items).bit_length())))  # n log n comparisons
    return sorted(items, reverse=reverse)


def _converter(kind: Callable[..., Any]) -> Callable[..., Any]:
    def impl(budget: Budget, items: Any = ()) -> Any:
        return kind(collection_argument(budget, items, kind.__name__))

    return impl


def _dict(budget: Budget, *args: Any, **kwargs: Any) -> dict[Any, Any]:
    if args and not isinstance(args[0], Mapping):
        collection_argument(budget, args[0], "dict")
    return dict(*args, **kwargs)


def _range(budget: Budget, *args: int) -> range:
    span = range(*args)
    try:
        length = len(span)
    except OverflowError:
        raise SandboxLimitExceeded("the range is too large") from None
    budget.check_length(length, "range")
    return span


def _pairwise(kind: Callable[..., Any]) -> Callable[..., Any]:
    def impl(budget: Budget, *iterables: Any, **kwargs: Any) -> list[Any]:
        for iterable in iterables:
            collection_argument(budget, iterable, kind.__name__)
        return list(kind(*iterables, **kwargs))

    return impl


def _plain(function: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a function whose work is bounded by its (already admitted) arguments."""

    def impl(budget: Budget, *args: Any, **kwargs: Any) -> Any:
        return function(*args, **kwargs)

    return impl


def _strptime(budget: Budget, text: str, pattern: str) -> datetime:
    if len(pattern) > _MAX_DATE_TEXT or len(text) > _MAX_DATE_TEXT:
        raise SandboxLimitExceeded(f"datetime.strptime() takes at most {_MAX_DATE_TEXT} characters")
    return datetime.strptime(text, pattern)


VARIABLE_FUNCTION = "variable"


def _variable_outside_call(budget: Budget, *args: Any, **kwargs: Any) -> Any:
    raise SandboxViolation(f"{VARIABLE_FUNCTION}() reads the data; call it by name, as {VARIABLE_FUNCTION}('x')")


def _named(name: str, impl: Callable[..., Any]) -> Callable[..., Any]:
    # Python names the function in argument errors: "min() got an unexpected keyword argument 'key'".
    # Each implementation here is used for exactly one name, so renaming it in place is safe.
    impl.__qualname__ = impl.__name__ = name
    return impl


def _function(name: str, impl: Callable[..., Any], **class_methods: Callable[..., Any]) -> SafeFunction:
    helpers = {key: SafeFunction(f"{name}.{key}", _named(f"{name}.{key}", value))
               for key, value in class_methods.items()}
    return SafeFunction(name, _named(name, impl), helpers)


SAFE_FUNCTIONS: Mapping[str, SafeFunction] = {
    function.name: function
    for function in (
        # variable('x'): the variable's value, or None when it is not set (evaluated in Evaluator._call).
        _function(VARIABLE_FUNCTION, _variable_outside_call),
        _function("len", _plain(len)),
        _function("min", _extreme(min)),
        _function("max", _extreme(max)),
        _function("sum", _sum),
        _function("abs", _plain(abs)),
        _function("round", _round),
        _function("int", _int),
        _function("float", _plain(float)),
        _function("str", _str),
        _function("bool", _plain(bool)),
        _function("sorted", _sorted),
        _function("any", _converter(any)),
        _function("all", _converter(all)),
        _function("list", _converter(list)),
        _function("tuple", _converter(tuple)),
        _function("set", _converter(set)),
        _function("dict", _dict),
        _function("range", _range),
        _function("enumerate", _pairwise(enumerate)),
        _function("zip", _pairwise(zip)),
        _function("reversed", _pairwise(reversed)),
        _function("Decimal", _plain(Decimal)),
        _function("timedelta", _plain(timedelta)),
        _function("date", _plain(date), fromisoformat=_plain(date.fromisoformat)),
        _function(
            "datetime", _plain(datetime), fromisoformat=_plain(datetime.fromisoformat),
            combine=_plain(datetime.combine), strptime=_strptime),
    )
}

CLASS_METHOD_NAMES = frozenset(name for fn in SAFE_FUNCTIONS.values() for name in fn.class_methods)
