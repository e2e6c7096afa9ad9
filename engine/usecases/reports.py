"""Deadline compliance: for each quality measure a pathway declares, how many episodes it applied to,
how many met it, the rate, the median time to meet it, and every miss with who held the work.

Computed from the pathways' declared measures and the instances' data and history alone (the same
evaluation as GET /api/instances/{id}/measures), never from which timers fired.
"""

from __future__ import annotations

import csv
import io
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..application import CarePath
from ..identity import Principal, Role, require_role
from ..measures import Completion, Episode, MeasureResult, MeasureStatus, evaluate, measure_from_dict
from ..model import InstanceStatus, audience_key
from ..persistence.tables import Event, Instance, PathwayVersion, Task
from ..queries import audience_has
from ..sandbox import evaluate_expression

REPORT_ROLES = (Role.ADMIN, Role.AUDITOR, Role.SUPERVISOR, Role.CLINICAL_LEAD)


@dataclass
class Miss:
    instance_id: str
    patient_id: str | None
    business_key: str | None
    deadline: datetime | None
    detail: str
    held_by: list[str]


@dataclass
class MeasureCompliance:
    pathway: str
    measure_id: str
    name: str
    source: str
    denominator: int = 0  # met + not met: the episodes whose outcome is decided
    met: int = 0
    not_met: int = 0
    open: int = 0
    excluded: int = 0
    not_applicable: int = 0
    unknown: int = 0
    days_to_meet: list[float] = field(default_factory=list)
    misses: list[Miss] = field(default_factory=list)

    @property
    def rate(self) -> float | None:
        return round(self.met / self.denominator, 4) if self.denominator else None

    @property
    def median_days_to_meet(self) -> float | None:
        return round(statistics.median(self.days_to_meet), 2) if self.days_to_meet else None

    def as_dict(self) -> dict[str, Any]:
        return {"pathway": self.pathway, "measure_id": self.measure_id, "name": self.name, "source": self.source,
                "denominator": self.denominator, "met": self.met, "not_met": self.not_met, "rate": self.rate,
                "median_days_to_meet": self.median_days_to_meet, "open": self.open, "excluded": self.excluded,
                "not_applicable": self.not_applicable, "unknown": self.unknown,
                "misses": [{"instance_id": m.instance_id, "patient_id": m.patient_id,
                            "business_key": m.business_key, "deadline": m.deadline.isoformat() if m.deadline else None,
                            "detail": m.detail, "held_by": m.held_by} for m in self.misses]}


def compliance_report(app: CarePath, principal: Principal, *, pathway: str | None = None,
                      start: datetime | None = None, end: datetime | None = None,
                      group: str | None = None) -> list[MeasureCompliance]:
    """Episodes whose measure clock started in [start, end) (any time when not given), of one pathway
    or all, optionally only those with work offered to `group`. A pathway with no declared measures
    gives no rows, not an error."""
    require_role(principal, *REPORT_ROLES, action="Reading compliance reports")
    with app.db.read() as session:
        versions = {v.id: v for v in session.scalars(select(PathwayVersion).where(
            *([PathwayVersion.key == pathway] if pathway else [])))}
        declared = {vid: v.measures for vid, v in versions.items() if v.measures}
        if not declared:
            return []
        query = select(Instance).where(Instance.pathway_version_id.in_(declared))
        if group is not None:
            query = query.where(select(Task.id).where(Task.instance_id == Instance.id, audience_has(
                session.get_bind().dialect.name, [audience_key("group", group)])).exists())
        instances = list(session.scalars(query.order_by(Instance.created_at, Instance.id)))
        completions = _completions(session, [i.id for i in instances])
        holders = _holders(session, [i.id for i in instances])
        rows: dict[tuple[str, str], MeasureCompliance] = {}
        now = app.now()
        for instance in instances:
            version = versions[instance.pathway_version_id]
            context = app.time_context(version.time_settings)
            cancelled_at = instance.ended_at if instance.status == InstanceStatus.CANCELLED else None
            episode = Episode(instance.data or {}, completions.get(instance.id, []), cancelled_at)
            for raw in declared[version.id]:
                result = evaluate(measure_from_dict(raw), episode, now=now, time_context=context,
                                  evaluate_expression=evaluate_expression)
                if result.clock_started is not None and not _in_period(result.clock_started, start, end):
                    continue
                if result.clock_started is None and (start is not None or end is not None):
                    continue  # no clock, no period to place it in
                row = rows.setdefault((version.key, raw["id"]), MeasureCompliance(
                    version.key, raw["id"], raw["name"], raw["source"]))
                _count(row, result, instance, holders.get(instance.id, []))
        return sorted(rows.values(), key=lambda r: (r.pathway, r.measure_id))


def _in_period(moment: datetime, start: datetime | None, end: datetime | None) -> bool:
    return (start is None or moment >= start) and (end is None or moment < end)


def _count(row: MeasureCompliance, result: MeasureResult, instance: Instance, held_by: list[str]) -> None:
    status = result.status
    if status is MeasureStatus.MET:
        row.met += 1
        row.denominator += 1
        if result.met_at and result.clock_started:
            row.days_to_meet.append((result.met_at - result.clock_started).total_seconds() / 86400)
    elif status is MeasureStatus.NOT_MET:
        row.not_met += 1
        row.denominator += 1
        row.misses.append(Miss(instance.id, instance.patient_id, instance.business_key, result.deadline,
                               result.detail, held_by))
    elif status is MeasureStatus.OPEN:
        row.open += 1
    elif status is MeasureStatus.EXCLUDED:
        row.excluded += 1
    elif status is MeasureStatus.NOT_APPLICABLE:
        row.not_applicable += 1
    else:
        row.unknown += 1


def _completions(session: Session, instance_ids: Sequence[str]) -> dict[str, list[Completion]]:
    out: dict[str, list[Completion]] = defaultdict(list)
    for chunk in _chunks(instance_ids):
        for instance_id, at, data in session.execute(
                select(Event.instance_id, Event.at, Event.data).where(
                    Event.instance_id.in_(chunk), Event.type == "task_completed").order_by(Event.id)):
            out[instance_id].append(Completion(str(data.get("element_id") or ""), at, data.get("data") or {}))
    return out


def _holders(session: Session, instance_ids: Sequence[str]) -> dict[str, list[str]]:
    """Who held the episode's human tasks: assignees and whoever completed them."""
    out: dict[str, set[str]] = defaultdict(set)
    for chunk in _chunks(instance_ids):
        for instance_id, assignee, completed_by in session.execute(
                select(Task.instance_id, Task.assignee, Task.completed_by).where(Task.instance_id.in_(chunk))):
            out[instance_id].update(name for name in (assignee, completed_by) if name)
    return {key: sorted(names) for key, names in out.items()}


def _chunks(ids: Sequence[str], size: int = 500) -> list[Sequence[str]]:
    return [ids[i:i + size] for i in range(0, len(ids), size)]


CSV_COLUMNS = ("pathway", "measure_id", "name", "source", "denominator", "met", "not_met", "rate",
               "median_days_to_meet", "open", "excluded", "not_applicable", "unknown")


def report_csv(rows: Sequence[MeasureCompliance]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        data = row.as_dict()
        writer.writerow(["" if data[c] is None else data[c] for c in CSV_COLUMNS])
    return out.getvalue()


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
