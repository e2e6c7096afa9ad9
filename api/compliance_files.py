"""The deadline compliance report as files: CSV (one line per measure, or per miss, streamed) and an SVG
bar chart. The figures come from engine/usecases/reports.py; this is how the API and the web app write them."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from xml.sax.saxutils import escape

from carepath.engine.audit_export import spreadsheet_safe
from carepath.engine.usecases.reports import MeasureCompliance

CSV_COLUMNS = ("pathway", "measure_id", "name", "source", "denominator", "met", "not_met", "rate",
               "median_days_to_meet", "open", "excluded", "not_applicable", "unknown")


MISS_COLUMNS = ("pathway", "measure_id", "instance_id", "patient_id", "business_key", "deadline", "detail", "task",
                "held_by", "offered_to")


def report_csv(rows: Sequence[MeasureCompliance]) -> str:
    """One line per measure."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        data = row.as_dict()
        writer.writerow(["" if data[c] is None else spreadsheet_safe(data[c]) for c in CSV_COLUMNS])
    return out.getvalue()


def misses_csv(rows: Sequence[MeasureCompliance]) -> str:
    """One line per miss (names separated by ';')."""
    return "".join(misses_csv_lines(rows))


def misses_csv_lines(rows: Sequence[MeasureCompliance], batch: int = 500) -> Iterator[str]:
    """misses_csv a few hundred lines at a time, for a streamed answer."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(MISS_COLUMNS)
    written = 0
    for row in rows:
        for miss in row.misses:
            data = {"pathway": row.pathway, "measure_id": row.measure_id, **miss.as_dict()}
            writer.writerow([spreadsheet_safe(";".join(v) if isinstance(v, list) else "" if v is None else v)
                             for v in (data[c] for c in MISS_COLUMNS)])
            written += 1
            if written % batch == 0:
                yield out.getvalue()
                out.seek(0)
                out.truncate()
    yield out.getvalue()


def report_svg(rows: Sequence[MeasureCompliance]) -> str:
    """A horizontal bar per measure: its rate (met of decided), with the counts beside it."""
    bar, left, top, line = 360, 260, 30, 28
    height = top + line * max(len(rows), 1) + 20
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + bar + 200}" height="{height}" role="img">',
             "<title>Deadline compliance</title>",
             '<style>text{font-family:Arial,Helvetica,sans-serif;font-size:12px}.met{fill:#2e7d32}'
             '.track{fill:#eee}</style>']
    if not rows:
        parts.append(f'<text x="10" y="{top}">No declared measures in this report.</text>')
    for n, row in enumerate(rows):
        y = top + n * line
        rate = row.rate
        label = f"{row.pathway} · {row.measure_id}"
        figure = (f"{rate * 100:.1f} % ({row.met} of {row.denominator})" if rate is not None
                  else f"no decided episodes ({row.open} open)")
        parts.append(f'<g data-measure-id="{escape(row.measure_id)}">'
                     f'<text x="10" y="{y + 14}">{escape(label)}</text>'
                     f'<rect class="track" x="{left}" y="{y}" width="{bar}" height="18"/>'
                     f'<rect class="met" x="{left}" y="{y}" width="{round(bar * (rate or 0), 1)}" height="18"/>'
                     f'<text x="{left + bar + 8}" y="{y + 14}">{escape(figure)}</text></g>')
    parts.append("</svg>\n")
    return "".join(parts)
