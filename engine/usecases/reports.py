"""Deadline compliance: for each quality measure a pathway declares, how many episodes it applied to,
how many met it, the rate, the median time to meet it, and every miss with who held the work.

Computed from the pathways' declared measures and the instances' data and history alone (the same
evaluation as GET /api/instances/{id}/measures, or its final outcome as the history recorded it when
the episode ended), never from which timers fired.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple
from xml.sax.saxutils import escape

from sqlalchemy import Row, String, Text, and_, bindparam, cast, func, or_, select, true, tuple_
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from ..application import CarePath
from ..audit_export import spreadsheet_safe
from ..errors import NotFound
from ..identity import Principal, Role, instance_scope, require_role
from ..measures import (
    FINAL_STATUSES,
    Completion,
    Episode,
    MeasureResult,
    MeasureStatus,
    evaluate,
    measure_from_dict,
)
from ..model import InstanceStatus, audience_key
from ..persistence.tables import Event, Instance, PathwayVersion, Task
from ..queries import audience_has, instances_visible_to
from ..sandbox import evaluate_expression

REPORT_ROLES = (Role.ADMIN, Role.AUDITOR, Role.SUPERVISOR, Role.CLINICAL_LEAD)


@dataclass
class Miss:
    instance_id: str
    patient_id: str | None
    business_key: str | None
    deadline: datetime | None
    detail: str
    held_by: list[str]  # who held the task the measure waited for (assigned, or completed it)
    offered_to: list[str] = field(default_factory=list)  # the groups it was offered to
    task: str | None = None  # that task's element id; None: the episode's work as a whole

    def as_dict(self) -> dict[str, Any]:
        return {"instance_id": self.instance_id, "patient_id": self.patient_id, "business_key": self.business_key,
                "deadline": self.deadline.isoformat() if self.deadline else None, "detail": self.detail,
                "task": self.task, "held_by": self.held_by, "offered_to": self.offered_to}

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
                "misses": [miss.as_dict() for miss in self.misses]}


def compliance_report(app: CarePath, principal: Principal, *, pathway: str | None = None,
                      start: datetime | None = None, end: datetime | None = None,
                      group: str | None = None, use_recorded: bool = True) -> list[MeasureCompliance]:
    """Episodes whose measure clock started in [start, end) (any time when not given), of one pathway
    or all, among those the principal may read. Every measure the pathway's versions declare has a row,
    with no episodes too; a pathway with no declared measures gives no rows, not an error; a pathway
    never deployed is not found.

    A team's report (`group`) counts, for each measure, the episodes where the task the measure waits
    for (`met_by.task`) was offered to the team: a team answers for its own deadlines, not for another
    team's late visit in the same episode. A measure met by a variable, or whose task the episode
    never reached, counts for every team the episode offered work to. A miss names who held that task
    (its assignee, or who completed it) and the groups it was offered to.

    Episodes are read a page at a time, in the order they were started, with only the columns the
    figures need. An ended episode whose history ends with final outcomes for every declared measure
    (`measure_outcomes`, recorded at the end and again as each window still open then closes) is
    counted from that record; every other episode (running, or with an outcome still open or unknown
    when last recorded) is evaluated live from its data and task completions. Both give the same
    figures: a final outcome does not change once the episode's data and history stop changing.
    `use_recorded=False` evaluates every episode live."""
    require_role(principal, *REPORT_ROLES, action="Reading compliance reports")
    with app.db.report_read() as session:
        versions = {v.id: v for v in session.scalars(select(PathwayVersion).where(
            *([PathwayVersion.key == pathway] if pathway else [])))}
        if pathway and not versions:
            raise NotFound(f"pathway '{pathway}' is not deployed")
        declared = {vid: v.measures for vid, v in versions.items() if v.measures}
        if not declared:
            return []
        query = select(Instance.id, Instance.pathway_version_id, Instance.status, Instance.ended_at,
                       Instance.patient_id, Instance.business_key, Instance.created_at).where(
            Instance.pathway_version_id.in_(declared))
        scope = instance_scope(principal)
        if scope is not None:  # a supervisor's report: the episodes they may read, no others' patients
            query = query.where(instances_visible_to(session, *scope))
        if group is not None:
            query = query.where(select(Task.id).where(Task.instance_id == Instance.id, audience_has(
                session.get_bind().dialect.name, [audience_key("group", group)])).exists())
        if start is not None or end is not None:
            query = query.where(_clock_may_start_in(declared.values(), start, end))
        rows: dict[tuple[str, str], MeasureCompliance] = {}
        now = app.now()
        contexts = {vid: app.time_context(versions[vid].time_settings) for vid in declared}
        parsed = {vid: [measure_from_dict(raw) for raw in measures] for vid, measures in declared.items()}
        keys = {vid: versions[vid].key for vid in declared}
        for vid, measures in sorted(declared.items()):  # a row for every declared measure, episodes or not
            for raw in measures:
                rows.setdefault((keys[vid], raw["id"]), MeasureCompliance(keys[vid], raw["id"], raw["name"],
                                                                          raw["source"]))
        waits_for = {vid: [m.met_by_task for m in measures] for vid, measures in parsed.items()}
        measured_tasks = sorted({t for tasks in waits_for.values() for t in tasks if t})
        for page in _pages(session, query):
            recorded = _recorded_outcomes(session, page, declared, now) if use_recorded else {}
            live = [e.id for e in page if e.id not in recorded]
            data = _data(session, live)
            completions = _completions(session, live)
            work = _work(session, [e.id for e in page], measured_tasks) if group is not None else None
            misses: list[Miss] = []
            for episode in page:
                version_id = episode.pathway_version_id
                results: Sequence[MeasureResult | _Outcome] | None = recorded.get(episode.id)
                if results is None:
                    cancelled_at = episode.ended_at if episode.status == InstanceStatus.CANCELLED else None
                    facts = Episode(data.get(episode.id) or {}, completions.get(episode.id, []), cancelled_at)
                    results = [evaluate(measure, facts, now=now, time_context=contexts[version_id],
                                        evaluate_expression=evaluate_expression) for measure in parsed[version_id]]
                for raw, task, result in zip(declared[version_id], waits_for[version_id], results, strict=True):
                    if result.clock_started is not None and not _in_period(result.clock_started, start, end):
                        continue
                    if result.clock_started is None and (start is not None or end is not None):
                        continue  # no clock, no period to place it in
                    if work is not None and not _answers_for(work.get(episode.id, {}), task, group or ""):
                        continue  # the task it waits for was another team's
                    miss = _count(rows[keys[version_id], raw["id"]], result, episode)
                    if miss is not None:
                        miss.task = task
                        misses.append(miss)
            _fill_holders(session, misses)
        return sorted(rows.values(), key=lambda r: (r.pathway, r.measure_id))


class _Work(NamedTuple):
    """An episode's tasks for one element: the groups they were offered to and who held them."""

    groups: frozenset[str]
    holders: frozenset[str]


def _answers_for(work: dict[str, _Work], task: str | None, group: str) -> bool:
    """Whether `group` answers for a measure of an episode (already known to offer it some work): the
    measure's task was offered to it, or there is no such task to tell (met by a variable, not reached)."""
    found = work.get(task) if task else None
    return found is None or group in found.groups


def _work(session: Session, instance_ids: Sequence[str], elements: Sequence[str] | None = None,
          ) -> dict[str, dict[str, _Work]]:
    """{instance: {element: work}} for these episodes' tasks (only `elements`' when given), one read per
    chunk; a task met twice (a loop) merges into one."""
    out: dict[str, dict[str, _Work]] = defaultdict(dict)
    if elements is not None and not elements:
        return out
    dialect = session.get_bind().dialect.name
    for chunk in _chunks(instance_ids):
        query = select(Task.instance_id, Task.element_id, Task.audience, Task.assignee, Task.completed_by).where(
            _among(Task.instance_id, chunk, dialect), *([Task.element_id.in_(elements)] if elements else []))
        for instance_id, element_id, audience, assignee, completed_by in session.connection().execute(query):
            before = out[instance_id].get(element_id, _Work(frozenset(), frozenset()))
            out[instance_id][element_id] = _Work(
                before.groups | _groups_of(audience), before.holders | {n for n in (assignee, completed_by) if n})
    return out


def _groups_of(audience: Sequence[str] | None) -> frozenset[str]:
    return frozenset(key.split(":", 1)[1] for key in audience or () if key.startswith("group:"))


def _fill_holders(session: Session, misses: list[Miss]) -> None:
    """Who held the task each miss waited for, and the groups it was offered to; for a measure met by a
    variable, or a task the episode never reached, the episode's work as a whole."""
    if not misses:
        return
    work = _work(session, sorted({m.instance_id for m in misses}))
    for miss in misses:
        episode = work.get(miss.instance_id, {})
        mine = [episode[miss.task]] if miss.task in episode else list(episode.values())
        if miss.task not in episode:
            miss.task = None
        miss.held_by = sorted(set().union(*(w.holders for w in mine)))
        miss.offered_to = sorted(set().union(*(w.groups for w in mine)))


PAGE = 2000


def _pages(session: Session, query: Any) -> Iterator[Sequence[Row[Any]]]:
    """The query's rows in (created_at, id) order, a page at a time (keyset: each page starts after
    the last row of the one before), so that memory does not grow with the number of episodes."""
    after: tuple[datetime, str] | None = None
    while True:
        paged = query
        if after is not None:
            paged = paged.where(tuple_(Instance.created_at, Instance.id) > tuple_(
                bindparam(None, after[0], type_=Instance.created_at.type), bindparam(None, after[1], type_=String())))
        page = session.connection().execute(paged.order_by(Instance.created_at, Instance.id).limit(PAGE)).all()
        if not page:
            return
        yield page
        if len(page) < PAGE:
            return
        after = (page[-1].created_at, page[-1].id)


# "YYYY-MM-DD…": the form whose first ten characters are the day it names, give or take a day
# for a time and an offset; any other value is evaluated.
_ISO_DAY = "____-__-__%"
_MARGIN = timedelta(days=3)


def _clock_may_start_in(declarations: Any, start: datetime | None, end: datetime | None) -> Any:
    """A condition no episode whose clock starts in [start, end) fails: some declared clock variable
    is missing, not ISO text, or names a day within three days of the period (a date-only value
    starts its day in the care setting's zone, a date-time may carry any offset: both less than a
    day apart from the day written). Only a pre-filter: the period is decided on the evaluation."""
    names = sorted({raw["clock_starts"]["variable"] for measures in declarations for raw in measures})
    conditions = []
    for name in names:
        value = Instance.data[tuple(name.split("."))].as_string()
        day = func.substr(value, 1, 10)
        low, high = _shifted(start, -_MARGIN), _shifted(end, _MARGIN)
        inside = [day >= low.date().isoformat()] if low is not None else []
        if high is not None:
            inside.append(day <= high.date().isoformat())
        conditions.append(or_(value.is_(None), ~value.like(_ISO_DAY), and_(true(), *inside)))
    return or_(*conditions)


def _shifted(moment: datetime | None, by: timedelta) -> datetime | None:
    """moment + by; None (no bound on that side) when there is no moment or it falls off the calendar."""
    try:
        return moment + by if moment is not None else None
    except OverflowError:
        return None


_FINAL = {status.value: status for status in FINAL_STATUSES}


class _Outcome(NamedTuple):
    """What the report reads of a recorded outcome."""

    status: MeasureStatus
    clock_started: datetime | None
    met_at: datetime | None
    deadline: datetime | None
    detail: str


def _recorded_outcomes(session: Session, page: Sequence[Row[Any]], declared: dict[int, list[Any]],
                       now: datetime) -> dict[str, list[_Outcome]]:
    """The ended episodes of a page whose last recorded outcomes are final for every declared measure
    (recorded after the end, not after `now`), as results; the others are left to live evaluation.
    The database picks each episode's last record; only the fields the figures need are read from it
    (measure ids, status, the clock, when met and, for a miss, the deadline and the detail)."""
    ended = {e.id: e for e in page if e.status in (InstanceStatus.COMPLETED, InstanceStatus.CANCELLED)
             and e.ended_at is not None}
    if not ended:
        return {}
    dialect = session.get_bind().dialect.name
    width = max(len(measures) for measures in declared.values())
    latest = select(func.max(Event.id)).where(_among(Event.instance_id, list(ended), dialect),
                                              Event.type == "measure_outcomes").group_by(Event.instance_id)
    out: dict[str, list[_Outcome]] = {}
    absent: tuple[None, ...] = (None,) * 6
    # The JSON as stored, decoded here: cheaper than the driver's per-row decoding.
    for instance_id, at, text in session.connection().execute(
            select(Event.instance_id, Event.at, cast(Event.data, Text)).where(Event.id.in_(latest))):
        episode = ended[instance_id]
        if not episode.ended_at <= at <= now:
            continue
        data = json.loads(text) if text else None
        measures = data.get("measures") if isinstance(data, dict) else None
        if not isinstance(measures, list) or len(measures) > width:
            continue
        recorded = [(m.get("measure_id"), m.get("status"), m.get("clock_started"), m.get("met_at"), m.get("deadline"),
                     m.get("detail")) if isinstance(m, dict) else absent for m in measures]
        recorded += [absent] * (width + 1 - len(recorded))
        results = _results(recorded, [raw["id"] for raw in declared[episode.pathway_version_id]])
        if results is not None:
            out[episode.id] = results
    return out


def _results(recorded: Sequence[Sequence[str | None]], measure_ids: list[str]) -> list[_Outcome] | None:
    """Recorded outcomes (measure id, status, clock started, met at, deadline, detail; as many as the
    widest declaration and one more, absent ones None) back as results, when they are final and name
    exactly the declared measures."""
    count = len(measure_ids)
    if [r[0] for r in recorded[:count]] != measure_ids or any(r[0] is not None for r in recorded[count:]):
        return None
    results = []
    for _, status_text, clock_started, met_at, deadline, detail in recorded[:count]:
        status = _FINAL.get(status_text or "")
        if status is None:
            return None
        met = status is MeasureStatus.MET
        missed = status is MeasureStatus.NOT_MET
        results.append(_Outcome(status, _moment(clock_started), _moment(met_at) if met else None,
                                _moment(deadline) if missed else None, (detail or "") if missed else ""))
    return results


def _among(column: Any, ids: Sequence[str], dialect: str) -> Any:
    """column IN ids: one array parameter on PostgreSQL (a statement psycopg need not split into
    hundreds of parameters), a list elsewhere."""
    if dialect == "postgresql":
        return column == func.any(bindparam(None, list(ids), type_=postgresql.ARRAY(Text())))
    return column.in_(ids)


def _moment(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _data(session: Session, instance_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    dialect = session.get_bind().dialect.name
    for chunk in _chunks(instance_ids):
        out.update((instance_id, data) for instance_id, data in session.connection().execute(
            select(Instance.id, Instance.data).where(_among(Instance.id, chunk, dialect))))
    return out


def _in_period(moment: datetime, start: datetime | None, end: datetime | None) -> bool:
    return (start is None or moment >= start) and (end is None or moment < end)


def _count(row: MeasureCompliance, result: MeasureResult | _Outcome, episode: Row[Any]) -> Miss | None:
    """Counts the result; a miss is returned (and listed) for its holders to be filled in."""
    status = result.status
    if status is MeasureStatus.MET:
        row.met += 1
        row.denominator += 1
        if result.met_at and result.clock_started:
            row.days_to_meet.append((result.met_at - result.clock_started).total_seconds() / 86400)
    elif status is MeasureStatus.NOT_MET:
        row.not_met += 1
        row.denominator += 1
        miss = Miss(episode.id, episode.patient_id, episode.business_key, result.deadline, result.detail, [])
        row.misses.append(miss)
        return miss
    elif status is MeasureStatus.OPEN:
        row.open += 1
    elif status is MeasureStatus.EXCLUDED:
        row.excluded += 1
    elif status is MeasureStatus.NOT_APPLICABLE:
        row.not_applicable += 1
    else:
        row.unknown += 1
    return None


def _completions(session: Session, instance_ids: Sequence[str]) -> dict[str, list[Completion]]:
    out: dict[str, list[Completion]] = defaultdict(list)
    dialect = session.get_bind().dialect.name
    for chunk in _chunks(instance_ids):
        for instance_id, at, data in session.connection().execute(
                select(Event.instance_id, Event.at, Event.data).where(
                    _among(Event.instance_id, chunk, dialect), Event.type == "task_completed").order_by(Event.id)):
            out[instance_id].append(Completion(str(data.get("element_id") or ""), at, data.get("data") or {}))
    return out


def _chunks(ids: Sequence[str], size: int = 500) -> list[Sequence[str]]:
    return [ids[i:i + size] for i in range(0, len(ids), size)]


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
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(MISS_COLUMNS)
    for row in rows:
        for miss in row.misses:
            data = {"pathway": row.pathway, "measure_id": row.measure_id, **miss.as_dict()}
            writer.writerow([spreadsheet_safe(";".join(v) if isinstance(v, list) else "" if v is None else v)
                             for v in (data[c] for c in MISS_COLUMNS)])
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
