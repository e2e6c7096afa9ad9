"""Counting the compliance report's live evaluations (to tell which episodes it counted from projections)."""

from __future__ import annotations

from typing import Any

from carepath.engine import measures as measures_module


class CountingEvaluations:
    """Stands in for the report's `evaluate`, counting its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return measures_module.evaluate(*args, **kwargs)
