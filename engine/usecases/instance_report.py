"""One episode as a self-contained HTML page an auditor can save or print: what it is, its path drawn on
the diagram, each human task with who did it, when, how long it waited and whether it was late, the
quality measures, and the complete history. No scripts and nothing fetched: everything is inline."""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from html import escape
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..application import CarePath
from ..errors import DiagramInvalid
from ..identity import Principal
from ..labels import event_details, event_label, time_words
from ..model import RECORD_VIEWED
from ..persistence.tables import Event, Instance, PathwayVersion
from ..queries import task_timeline
from ..views import TaskTimelineView
from .diagrams import draw_diagram
from .measures import evaluate_instance, read_instance

MAX_TIMELINE = 5000
STYLE = """
body { font-family: Arial, Helvetica, sans-serif; font-size: 13px; color: #222; margin: 24px }
h1 { font-size: 20px } h2 { font-size: 16px; margin-top: 28px }
table { border-collapse: collapse; width: 100% } th, td { border: 1px solid #ccc; padding: 4px 6px;
  text-align: left; vertical-align: top } th { background: #f3f3f3 }
.late { color: #c62828; font-weight: bold } .met { color: #2e7d32 } .not_met { color: #c62828 }
.diagram svg { max-width: 100%; height: auto } dl { display: grid; grid-template-columns: 12em auto }
dt { font-weight: bold } code { font-size: 12px }
@media print { .diagram svg { max-width: 100% } }
"""


def instance_report(app: CarePath, principal: Principal, instance_id: str) -> str:
    with app.db.read() as session:
        instance = read_instance(session, principal, instance_id)
        version = session.get(PathwayVersion, instance.pathway_version_id)
        tasks = task_timeline(session, instance_id, app.now())
        events = list(session.scalars(select(Event).where(Event.instance_id == instance_id,
                                                          Event.type != RECORD_VIEWED)
                                      .order_by(Event.id).limit(MAX_TIMELINE + 1)))
        measures = evaluate_instance(app, session, instance)
        svg = _picture(app, session, version, instance)
    key = version.key if version else instance.pathway_key
    number = version.version if version else 0
    now, zone = app.now(), app.time_context().tz
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>"
             f"{_e(key)} — {_e(instance.business_key or instance.id)}</title><style>{STYLE}</style></head><body>",
             f"<h1>{_e(version.name if version and version.name else key)}</h1>",
             f"<p>Times are in the care setting's time zone, {_e(zone.key)}.</p>",
             "<dl>", *(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in (
                 ("Instance", instance.id), ("Pathway", f"{key} version {number}"),
                 ("Patient", instance.patient_id or "—"), ("Business key", instance.business_key or "—"),
                 ("Status", instance.status), ("Started", f"{_t(instance.created_at, zone)} by {instance.started_by}"),
                 ("Ended", _t(instance.ended_at, zone)),
                 ("Report made", f"{_t(now, zone)} for {principal.name}"))), "</dl>",
             "<h2>Path taken</h2>", f'<div class="diagram">{svg}</div>',
             "<h2>Tasks</h2>", _tasks_table(tasks, zone),
             "<h2>Quality measures</h2>", _measures_table(measures, zone),
             "<h2>History</h2>", _timeline(events, zone), "</body></html>\n"]
    return "".join(parts)


def _picture(app: CarePath, session: Session, version: PathwayVersion | None, instance: Instance) -> str:
    """The path on the diagram; a diagram drawn without a layout still gets its report, without picture."""
    if version is None:
        return "<p>The pathway version is not stored.</p>"
    try:
        return draw_diagram(app, session, version, instance)
    except DiagramInvalid as exc:
        return f"<p>{_e(exc.message)}</p>"


def _tasks_table(tasks: list[TaskTimelineView], zone: tzinfo) -> str:
    if not tasks:
        return "<p>No human tasks.</p>"
    rows = ["<table><tr><th>Task</th><th>State</th><th>Offered to</th><th>Created</th><th>Claimed</th>"
            "<th>Ended</th><th>By</th><th>Waited</th><th>Due</th><th>Late</th></tr>"]
    for task in tasks:
        late = timedelta(seconds=task.late_by_seconds) if task.late_by_seconds else None
        late_cell = f'<span class="late">{_d(late)}</span>' if late else "—"
        claim_cell = _e(f"{_t(task.claimed_at, zone)} by {task.claimed_by}") if task.claimed_by else "—"
        ended = _t(task.completed_at, zone) if task.cancelled_at is None else f"cancelled {_t(task.cancelled_at, zone)}"
        rows.append(
            f'<tr data-task-id="{_e(task.task_id)}" data-element-id="{_e(task.element_id)}">'
            f"<td>{_e(task.name)}</td><td>{_e(task.state)}</td><td>{_e(', '.join(task.offered_to) or 'everyone')}</td>"
            f"<td>{_t(task.created_at, zone)}</td><td>{claim_cell}</td><td>{ended}</td>"
            f"<td>{_e(task.completed_by or task.claimed_by or '—')}</td>"
            f"<td>{_d(timedelta(seconds=task.waited_seconds))}</td><td>{_t(task.due_date, zone)}</td>"
            f"<td>{late_cell}</td></tr>")
    rows.append("</table>")
    return "".join(rows)


def _measures_table(results: list[Any], zone: tzinfo) -> str:
    if not results:
        return "<p>The pathway declares no quality measures.</p>"
    rows = ["<table><tr><th>Measure</th><th>Source</th><th>Status</th><th>Window</th><th>Met</th>"
            "<th>Detail</th></tr>"]
    for r in results:
        rows.append(f'<tr data-measure-id="{_e(r.measure_id)}"><td>{_e(r.name)}</td><td>{_e(r.source)}</td>'
                    f'<td class="{_e(r.status.value)}">{_e(r.status.value.replace("_", " "))}</td>'
                    f"<td>{_t(r.window_opens, zone)} – {_t(r.deadline, zone)}</td><td>{_t(r.met_at, zone)}</td>"
                    f"<td>{_e(r.detail)}</td></tr>")
    rows.append("</table>")
    return "".join(rows)


def _timeline(events: list[Event], zone: tzinfo) -> str:
    shown = events[:MAX_TIMELINE]
    rows = ["<table><tr><th>#</th><th>When</th><th>Who</th><th>What</th><th>Details</th></tr>"]
    for event in shown:
        rows.append(f'<tr data-event-id="{event.id}"><td>{event.id}</td><td>{_t(event.at, zone)}</td>'
                    f"<td>{_e(event.actor)}</td><td title=\"{_e(event.type)}\">{_e(event_label(event.type))}</td>"
                    f"<td>{_e(_summary(event.data, zone))}</td></tr>")
    rows.append("</table>")
    if len(events) > MAX_TIMELINE:
        rows.append(f"<p>Only the first {MAX_TIMELINE} events are shown; the full history is in "
                    "GET /api/instances/{id}/history and the audit export.</p>")
    return "".join(rows)


def _summary(data: dict[str, Any], zone: tzinfo) -> str:
    """An event's data as "Field: value" pairs in words (no Python or JSON notation)."""
    changed, details = event_details(data, zone)
    return "; ".join([*([changed] if changed else []), *(f"{k}: {v}" for k, v in details)])[:600] or "—"


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _t(value: datetime | None, zone: tzinfo) -> str:
    return time_words(value, zone)


def _d(delta: timedelta | None) -> str:
    if delta is None:
        return "—"
    minutes = int(delta.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    return (f"{days} d " if days else "") + f"{hours} h {mins:02d} min"
