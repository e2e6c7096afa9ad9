"""Latency summaries and progress lines on stderr."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (0.0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(0, min(len(sorted_values) - 1, round(fraction * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


def latency_summary(seconds: Sequence[float]) -> dict[str, Any]:
    """Count and p50/p95/p99/max in milliseconds."""
    ordered = sorted(seconds)
    return {
        "count": len(ordered),
        "p50_ms": round(percentile(ordered, 0.50) * 1000, 2),
        "p95_ms": round(percentile(ordered, 0.95) * 1000, 2),
        "p99_ms": round(percentile(ordered, 0.99) * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2) if ordered else 0.0,
    }


class Progress:
    """Throttled progress lines for long phases: `phase: 1200/10000 (12%)`."""

    def __init__(self, phase: str, total: int, every_s: float = 2.0) -> None:
        self.phase = phase
        self.total = total
        self.every_s = every_s
        self._last = 0.0

    def update(self, done: int) -> None:
        now = time.monotonic()
        if now - self._last < self.every_s and done < self.total:
            return
        self._last = now
        share = f" ({100 * done // self.total}%)" if self.total else ""
        note(f"{self.phase}: {done}/{self.total}{share}")


def note(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)
