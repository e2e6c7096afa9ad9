"""The compliance report's charts as geometry for inline SVG (drawn by templates/compliance.html without
JavaScript and without style attributes: colours come from classes in static/audit.css). Each bar also says
its numbers in words, and the page has the same figures as a table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from carepath.engine.usecases.reports import MeasureCompliance

WIDTH = 400  # of the longest bar, in the chart's own units
ROW = 60  # height of one measure's row
CHART_WIDTH = 820  # the bar, then its numbers in words
MAX_LABEL = 100  # characters of a measure's name and pathway above its bar (the table has them whole)
OUTCOMES = (("met", "met"), ("not_met", "not met"), ("open", "open"), ("excluded", "excluded"),
            ("not_applicable", "not applicable"), ("unknown", "unknown"))


@dataclass(frozen=True)
class Segment:
    outcome: str  # a class name: bar-met, bar-not_met, ...
    x: float
    width: float


@dataclass(frozen=True)
class Bar:
    label: str
    y: int
    rate_width: float  # the met rate's bar
    rate_words: str
    segments: list[Segment]  # every episode by its outcome
    outcome_words: str


@dataclass(frozen=True)
class Chart:
    bars: list[Bar]
    width: int = CHART_WIDTH
    bar_width: int = WIDTH

    @property
    def height(self) -> int:
        return max(len(self.bars), 1) * ROW


def chart_of(rows: Sequence[MeasureCompliance]) -> Chart:
    return Chart([_bar(row, index * ROW) for index, row in enumerate(rows)])


def _bar(row: MeasureCompliance, y: int) -> Bar:
    rate = row.rate
    rate_words = (f"{rate * 100:.0f} % met ({row.met} of {row.denominator})" if rate is not None
                  else "no decided episode yet")
    counts = [(outcome, words, getattr(row, outcome)) for outcome, words in OUTCOMES]
    total = sum(count for _, _, count in counts)
    segments, x = [], 0.0
    for outcome, _, count in counts:
        if count:
            width = WIDTH * count / total
            segments.append(Segment(outcome, round(x, 2), round(width, 2)))
            x += width
    words = ", ".join(f"{count} {name}" for _, name, count in counts if count) or "no episode"
    label = f"{row.name} ({row.pathway})"
    label = label if len(label) <= MAX_LABEL else label[:MAX_LABEL - 1] + "…"
    return Bar(label, y, round(WIDTH * (rate or 0), 2), rate_words, segments, words)
