"""Failed sign-ins slowed per account and per address, in memory, before anything is written.

After `max_failures` failures of one key (an account name, a client address) within `window`, that key
is refused for `window` whatever the password: the caller answers with the same generic message as a
wrong password, so a locked account does not say it exists. Each process keeps its own counts (a
deployment of n processes allows up to n times as many tries); only the start of a lockout is written
to the history, so a flood of bad attempts adds one entry per key and window, not one per attempt.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Lockout:
    key: str
    failures: int
    until: datetime


class SignInThrottle:
    def __init__(self, max_failures: int = 5, window: timedelta = timedelta(minutes=15),
                 max_keys: int = 100_000) -> None:
        self.max_failures = max_failures
        self.window = window
        self.max_keys = max_keys  # bounded memory under a flood of made-up names: the oldest keys go
        self._failures: OrderedDict[str, deque[datetime]] = OrderedDict()
        self._locked_until: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def refused(self, keys: tuple[str, ...], now: datetime) -> bool:
        with self._lock:
            return any(self._locked_until.get(key, now) > now for key in keys)

    def failed(self, keys: tuple[str, ...], now: datetime) -> list[Lockout]:
        """Count a failure against each key; the lockouts this failure starts."""
        started = []
        with self._lock:
            for key in keys:
                times = self._failures.pop(key, None) or deque()
                while times and times[0] <= now - self.window:
                    times.popleft()
                times.append(now)
                self._failures[key] = times
                if len(times) >= self.max_failures:
                    self._locked_until[key] = now + self.window
                    started.append(Lockout(key, len(times), now + self.window))
                    del self._failures[key]
            while len(self._failures) > self.max_keys:
                self._failures.popitem(last=False)
            for key in [k for k, until in self._locked_until.items() if until <= now]:
                del self._locked_until[key]
        return started

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)
