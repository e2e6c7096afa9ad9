"""Answer models derived from the engine's own dataclasses, so that a field list is written once.

`out_model(CaseTask, types={datetime: UtcInstant})` is the pydantic model of the dataclass's fields, in their
order, each type with `types` put in (inside `| None`, `list[...]` and `tuple[X, ...]` too; a tuple answers as a
list), every field required, with the descriptions given. The engine's dataclass stays the one definition.
"""

from __future__ import annotations

import dataclasses
import types as pytypes
from collections.abc import Collection, Mapping
from typing import Any, Union, get_args, get_origin, get_type_hints

from pydantic import Field, create_model

from .schemas import Out


def out_model(view: type, *, name: str, types: Mapping[Any, Any] | None = None,
              descriptions: Mapping[str, str] | None = None, exclude: Collection[str] = ()) -> type[Out]:
    """The answer model `name` of the dataclass `view` (see the module's docstring)."""
    hints = get_type_hints(view)
    swap, described = dict(types or {}), dict(descriptions or {})
    unknown = (set(described) | set(exclude)) - {f.name for f in dataclasses.fields(view)}
    if unknown:
        raise ValueError(f"{view.__name__} has no field {', '.join(sorted(unknown))}")
    fields: dict[str, Any] = {
        f.name: (_swapped(hints[f.name], swap), Field(description=described.get(f.name)))
        for f in dataclasses.fields(view) if f.name not in exclude}
    return create_model(name, __base__=Out, __module__=__name__, **fields)


def _swapped(annotation: Any, swap: dict[Any, Any]) -> Any:
    if annotation in swap:
        return swap[annotation]
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is None or not args:
        return annotation
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return list[_swapped(args[0], swap)]  # type: ignore[misc]
    inner = tuple(_swapped(arg, swap) for arg in args)
    if origin in (Union, pytypes.UnionType):
        return Union[inner]  # noqa: UP007 (built from a tuple)
    return origin[inner]


def list_of(model: type[Out]) -> Any:
    """`list[model]` for a route's response_model (a derived model is a value to a type checker)."""
    return list[model]  # type: ignore[valid-type]
