"""Time is passed in: the engine never reads the wall clock itself.

A `Clock` is any zero-argument callable returning an aware UTC datetime. The API wires the
system clock in at start-up; tests pass a `ManualClock` and move it through days in milliseconds.
While the engine runs a workflow it publishes the clock through a context variable, so that
SpiffWorkflow callbacks deep inside the library (timer events) read the product's time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]

_current_clock: ContextVar[Clock] = ContextVar("carepath_clock")


class ManualClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
        if self._now.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")

    def __call__(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        self._now = self._now + (delta or timedelta(**kwargs))
        return self._now

    def set(self, when: datetime) -> None:
        self._now = when


@contextmanager
def engine_clock(clock: Clock) -> Iterator[None]:
    token = _current_clock.set(clock)
    try:
        yield
    finally:
        _current_clock.reset(token)


def engine_now() -> datetime:
    """The current time of the clock the engine was given; an error if none was."""
    try:
        clock = _current_clock.get()
    except LookupError:
        raise RuntimeError("engine code ran outside engine_clock(): no clock was passed in") from None
    return clock().astimezone(UTC)


def to_utc(value: datetime) -> datetime:
    """`value` in UTC, for an instant given from outside (a filter, a window). ValueError, saying why,
    when it has no UTC offset or is not a time in UTC (year 1 at +14:00 is still year 0 there)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("needs a UTC offset, e.g. 2026-11-30T17:00:00Z")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is outside the years 1 to 9999 once converted to UTC") from None
