"""Work and size accounting for one expression evaluation.

Step counting stands in for a timeout: every node evaluated costs one step, and operations that
walk whole values in C (comparing lists, joining strings, sorting) cost the value's *weight*. A
container built by the expression weighs the sum of what it holds, counted once per reference, so
`[[x] * 1000] * 1000` is as expensive as a million items even though it shares one inner list.
Containers that come from task data are trusted and weigh their top-level length.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .errors import SandboxLimitExceeded
from .limits import Limits

_CHARS_PER_STEP = 64
_COLLECTIONS = (list, tuple, set, frozenset, dict)
_SCALAR_TEXT = 40  # generous printed size of a number, date or other scalar


class Budget:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.steps = 0
        self._weights: dict[int, int] = {}
        # Built values stay referenced so their ids are not reused during the evaluation.
        self._built: list[Any] = []

    def charge(self, units: int) -> None:
        self.steps += units
        if self.steps > self.limits.max_steps:
            raise SandboxLimitExceeded(f"expression exceeded {self.limits.max_steps} evaluation steps")

    def weight(self, value: Any) -> int:
        if isinstance(value, str | bytes):
            return 1 + len(value) // _CHARS_PER_STEP
        known = self._weights.get(id(value))
        if known is not None:
            return known
        if isinstance(value, _COLLECTIONS) or isinstance(value, Mapping):
            return 1 + len(value)
        return 1

    def charge_for(self, *values: Any) -> None:
        """Charge for an operation that walks all of `values`."""
        self.charge(sum(self.weight(value) for value in values))

    def admit(self, value: Any) -> Any:
        """Check a value the expression just produced against the caps and charge for building it."""
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            self.check_int_bits(value.bit_length())
        elif isinstance(value, str | bytes):
            self.check_length(len(value), "text")
            self.charge(self.weight(value))
        elif isinstance(value, _COLLECTIONS):
            self._admit_collection(value)
        elif isinstance(value, range):
            self.check_length(len(value), "range")
        return value

    def _admit_collection(self, value: Any) -> None:
        self.check_length(len(value), type(value).__name__)
        items = value.items() if isinstance(value, dict) else ((item, None) for item in value)
        total = 1
        for key, item in items:
            total += self.weight(key) + (0 if item is None else self.weight(item))
            if total > self.limits.max_steps:
                break
        self.charge(total)
        self._weights[id(value)] = total
        self._built.append(value)

    def check_length(self, length: int, what: str) -> None:
        if length > self.limits.max_length:
            unit = "characters" if what == "text" else "items"
            raise SandboxLimitExceeded(
                f"the {what} would have {length} {unit}; the limit is {self.limits.max_length}")

    def check_int_bits(self, bits: int) -> None:
        if bits > self.limits.max_int_bits:
            raise SandboxLimitExceeded(
                f"the number would need about {bits} bits; the limit is {self.limits.max_int_bits}")

    def check_text_size(self, value: Any) -> None:
        """Refuse to turn `value` into text if the text could exceed the length cap."""
        if isinstance(value, str):
            return  # str() of a string is the string itself, already within the cap
        pending = [value]
        size = 0
        while pending:
            item = pending.pop()
            self.charge(1)
            own_size, contents = _printed_size(item)
            size += own_size
            if size > self.limits.max_length:
                raise SandboxLimitExceeded(
                    f"the text would be longer than {self.limits.max_length} characters")
            pending.extend(contents)


def _printed_size(item: Any) -> tuple[int, Iterable[Any]]:
    """Printed size of `item` without its contents, and the contents still to measure."""
    if isinstance(item, str | bytes):
        return len(item) * 4 + 3, ()  # repr() may escape every character
    if isinstance(item, int) and not isinstance(item, bool):
        return item.bit_length() // 3 + 2, ()
    if isinstance(item, Mapping):
        return 2 + 4 * len(item), (*item.keys(), *item.values())
    if isinstance(item, _COLLECTIONS):
        return 2 + 2 * len(item), item
    return _SCALAR_TEXT, ()
