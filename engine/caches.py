"""Per-process caches: restored specs per pathway version, deserialized workflows per instance.

A cached workflow is *taken* out of the cache for the length of a transaction and put back only
after commit, under the instance's new lock version, so a rollback can never leave a half-changed
workflow behind for the next request.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class LRUCache(Generic[K, V]):
    def __init__(self, max_items: int) -> None:
        self.max_items = max_items
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        if self.max_items <= 0:
            return
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)

    def take(self, key: K) -> V | None:
        with self._lock:
            return self._items.pop(key, None)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._items

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


class ExpiringCache(Generic[K, V]):
    """A bounded LRU whose entries each stop being served at their own instant (on the engine's clock).
    `clear` also voids what lookups begun before it would put: a value read from the database before a
    change committed is not kept after the change cleared the cache."""

    def __init__(self, max_items: int) -> None:
        self._items: LRUCache[K, tuple[datetime, V]] = LRUCache(max_items)
        self._lock = threading.Lock()
        self.generation = 0  # bumped by clear; `put` takes the one read before the lookup

    def get(self, key: K, now: datetime) -> V | None:
        entry = self._items.get(key)
        if entry is None:
            return None
        if entry[0] <= now:
            self._items.take(key)
            return None
        return entry[1]

    def put(self, key: K, value: V, until: datetime, generation: int) -> None:
        with self._lock:
            if generation == self.generation:
                self._items.put(key, (until, value))

    def clear(self) -> None:
        with self._lock:
            self.generation += 1
            self._items.clear()
