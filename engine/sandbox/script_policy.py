"""What a script task may touch: builtins, guards, and a few pure modules.

Used inside the worker process to build each script's globals, and by the deploy-time check to
report a disallowed import with its line. Modules are handed over as read-only views holding only
the names listed here, so `json.decoder.re.enum.sys` style walks to `sys` and `os` do not exist.
"""

from __future__ import annotations

import builtins
import datetime
import decimal
import json
import math
import operator
import statistics
from collections.abc import Callable, Mapping
from types import MappingProxyType, ModuleType
from typing import Any

from RestrictedPython.Guards import (
    full_write_guard,
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    safe_builtins,
    safer_getattr_raise,
)

_MODULE_NAMES: dict[ModuleType, tuple[str, ...]] = {
    math: tuple(name for name in dir(math) if not name.startswith("_")),
    datetime: ("date", "datetime", "time", "timedelta", "timezone", "MINYEAR", "MAXYEAR"),
    json: ("dumps", "loads", "JSONDecodeError"),
    decimal: ("Decimal", "InvalidOperation", "DivisionByZero",
              *(name for name in dir(decimal) if name.startswith("ROUND_"))),
    statistics: (
        "mean", "fmean", "geometric_mean", "harmonic_mean", "median", "median_low", "median_high",
        "median_grouped", "mode", "multimode", "quantiles", "pstdev", "pvariance", "stdev", "variance",
        "StatisticsError",
    ),
}
ALLOWED_IMPORTS: Mapping[str, frozenset[str]] = MappingProxyType(
    {module.__name__: frozenset(names) for module, names in _MODULE_NAMES.items()})

# Builtins RestrictedPython leaves out because they iterate in C; harmless here, where the worker's
# time and memory limits bound any loop.
_EXTRA_BUILTINS = ("list", "dict", "tuple", "set", "frozenset", "sorted", "reversed", "enumerate", "zip",
                   "min", "max", "sum", "any", "all", "map", "filter")
_INPLACE: dict[str, Callable[[Any, Any], Any]] = {
    "+=": operator.iadd, "-=": operator.isub, "*=": operator.imul, "/=": operator.itruediv,
    "//=": operator.ifloordiv, "%=": operator.imod, "**=": operator.ipow, "<<=": operator.ilshift,
    ">>=": operator.irshift, "&=": operator.iand, "|=": operator.ior, "^=": operator.ixor,
    "@=": operator.imatmul,
}
_MAX_PRINTED = 10_000


def _module_view(module: ModuleType, names: tuple[str, ...]) -> ModuleType:
    view = ModuleType(module.__name__)
    for name in names:
        setattr(view, name, getattr(module, name))
    return view


MODULE_VIEWS: Mapping[str, ModuleType] = MappingProxyType(
    {module.__name__: _module_view(module, names) for module, names in _MODULE_NAMES.items()})


def guarded_import(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (),
                   level: int = 0) -> Any:
    if level != 0 or name not in MODULE_VIEWS:
        allowed = ", ".join(sorted(MODULE_VIEWS))
        raise ImportError(f"import of '{name}' is not allowed; scripts may import {allowed}")
    return MODULE_VIEWS[name]


def guarded_getattr(obj: Any, name: str, *default: Any) -> Any:
    """RestrictedPython's getattr guard (no '_' names, no str.format) that also never yields a module."""
    value = safer_getattr_raise(obj, name, *default)
    if isinstance(value, ModuleType) and value not in MODULE_VIEWS.values():
        raise AttributeError(f"'{name}' is a module and cannot be used from a script")
    return value


def _inplace_var(op: str, target: Any, value: Any) -> Any:
    return _INPLACE[op](target, value)


def _apply(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return function(*args, **kwargs)


class BoundedPrintCollector:
    """`print` in a script writes here; output beyond a few KB is dropped, never sent anywhere."""

    def __init__(self, _getattr_: Any = None) -> None:
        self.parts: list[str] = []
        self.size = 0

    def write(self, text: str) -> None:
        if self.size < _MAX_PRINTED:
            self.parts.append(text[: _MAX_PRINTED - self.size])
            self.size += len(self.parts[-1])

    def flush(self) -> None:
        pass

    def __call__(self) -> str:
        return "".join(self.parts)

    def _call_print(self, *objects: Any, **kwargs: Any) -> None:
        kwargs["file"] = self
        print(*objects, **kwargs)


def _script_builtins() -> dict[str, Any]:
    names = dict(safe_builtins)
    # No class statements: nothing a pathway script needs, and less to reason about.
    names.pop("__build_class__", None)
    names.pop("_getattr_", None)  # the guard lives in the globals
    names.update({name: getattr(builtins, name) for name in _EXTRA_BUILTINS})
    names["__import__"] = guarded_import
    return names


_BUILTINS = MappingProxyType(_script_builtins())


def script_globals() -> dict[str, Any]:
    """Fresh globals for one script run; task data is added on top."""
    return {
        "__builtins__": dict(_BUILTINS),
        "__name__": "script",
        "_getattr_": guarded_getattr,
        "_getitem_": operator.getitem,
        "_getiter_": iter,
        "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
        "_unpack_sequence_": guarded_unpack_sequence,
        "_write_": full_write_guard,
        "_inplacevar_": _inplace_var,
        "_apply_": _apply,
        "_print_": BoundedPrintCollector,
    }
