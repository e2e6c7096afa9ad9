"""Bounds on the JSON values that enter the engine, and a safe way to show the ones already stored.

Every use case that takes JSON from outside (start data, completions, drafts, retry data, messages,
comments) calls `check_json` at its entry, so an entry point added later inherits the bound by calling
it too: a value nested deeper than `EngineConfig.max_json_depth`, larger than `max_json_bytes` once
encoded, or holding a NUL character (which PostgreSQL's text and jsonb refuse) is a `ValidationFailed`
naming the limit and the field, and nothing is stored.

Rows stored before the bound existed can hold deeper values (a message nested 900 levels was once
accepted); JSON encoders and pydantic recurse and fail on them. `shown` returns a copy cut at
`SHOWN_DEPTH` levels, with a placeholder where a deeper value was, for every read that presents stored
data (instance view, history, audit list and export). Both walk the value with an explicit stack, so
neither can itself fail on depth.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from .errors import Problem, ValidationFailed

# The longest comment on a task, in characters: the one number the use case, the API's schema and the web
# form's hint and counter all read.
MAX_COMMENT_CHARS = 4000
DEFAULT_MAX_DEPTH = 32
DEFAULT_MAX_BYTES = 256 * 1024
# Deeper than any accepted value (the configured depth may not exceed it) and well inside what
# pydantic (about 255 levels) and Python's recursion limit can encode.
SHOWN_DEPTH = 64
NOT_SHOWN = f"[nested deeper than {SHOWN_DEPTH} levels: not shown]"


def check_json(app: Any, value: Any, what: str) -> None:
    """ValidationFailed naming `what` if `value` breaks the engine's JSON bounds (`app.config`)."""
    if value is None:
        return
    max_depth, max_bytes = app.config.max_json_depth, app.config.max_json_bytes
    for item, depth, where in _nodes(value, (what,)):
        if depth > max_depth and isinstance(item, dict | list | tuple):
            _refuse(f"{what} is nested deeper than {max_depth} levels", what)
        if isinstance(item, str) and "\x00" in item:
            raise nul_refused(_name(where))
    size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str).encode())
    if size > max_bytes:
        _refuse(f"{what} is larger than {_kib(max_bytes)} once encoded ({_kib(size)})", what)


def nul_field(value: Any) -> str | None:
    """The path (`a.b.0`) of the first string or key in `value` holding a NUL character, else None."""
    return next((_name(where) for item, _, where in _nodes(value, ())
                 if isinstance(item, str) and "\x00" in item), None)


Path = tuple[Any, ...]  # (parent path, key), nested, so that a path is only spelt out when it is named


def nul_refused(field: str) -> ValidationFailed:
    message = f"{field} contains a NUL character (\\u0000), which cannot be stored"
    return ValidationFailed(message, [Problem(message, field=field)])


def _nodes(value: Any, where: Path) -> Iterator[tuple[Any, int, Path]]:
    """Every value and key inside `value` with its depth (the value itself is 1) and path, walked with an
    explicit stack so that no depth can exhaust Python's."""
    stack: list[tuple[Any, int, Path]] = [(value, 1, where)]
    while stack:
        item, depth, path = stack.pop()
        yield item, depth, path
        if isinstance(item, dict | list | tuple):
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in pairs:
                if isinstance(key, str):
                    yield key, depth + 1, (path, key)
                stack.append((child, depth + 1, (path, key)))


def _name(path: Path) -> str:
    keys: list[str] = []
    while len(path) == 2:
        path, key = path
        keys.append(str(key))
    keys.extend(str(p) for p in path)
    return ".".join(reversed(keys)).replace("\x00", "\\u0000")


def shown(value: Any) -> Any:
    """A copy of a stored JSON value that any encoder can write: containers deeper than SHOWN_DEPTH
    levels are replaced by a placeholder. Values within the bound come back equal."""
    if not _deeper_than(value, SHOWN_DEPTH):
        return value
    root: list[Any] = [None]
    stack: list[tuple[Any, int, Any, Any]] = [(value, 1, root, 0)]
    while stack:
        item, depth, parent, slot = stack.pop()
        if not isinstance(item, dict | list):
            parent[slot] = item
        elif depth > SHOWN_DEPTH:
            parent[slot] = NOT_SHOWN
        else:
            copy: Any = dict.fromkeys(item) if isinstance(item, dict) else [None] * len(item)
            parent[slot] = copy
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            stack.extend((child, depth + 1, copy, key) for key, child in pairs)
    return root[0]


def _deeper_than(value: Any, limit: int) -> bool:
    return any(depth > limit and isinstance(item, dict | list) for item, depth, _ in _nodes(value, ()))


def _kib(size: int) -> str:
    return f"{size // 1024} KiB" if size >= 1024 else f"{size} bytes"


def _refuse(message: str, field: str) -> None:
    raise ValidationFailed(message, [Problem(message, field=field)])
