"""Deadline compliance: for each quality measure a pathway declares, how many episodes it applied to,
how many met it, the rate, the median time to meet it, and every miss with who held the work.

Computed from the pathways' declared measures and the instances' data and history alone (the same
evaluation as GET /api/instances/{id}/measures, or its final outcome as the history recorded it when
the episode ended), never from which timers fired.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Row, String, Text, and_, bindparam, func, or_, select, text, true, tuple_
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from ..application import CarePath
from ..errors import NotFound
from ..identity import Principal, Role, instance_scope, require_role
from ..measures import Completion, Episode, MeasureResult, MeasureStatus, evaluate, measure_from_dict
from ..model import InstanceStatus, audience_key
from ..persistence.tables import Event, Instance, PathwayVersion, Task
from ..queries import audience_has, instances_visible_to
from ..sandbox import evaluate_expression
from .compliance_sql import (
    MissKey,
    Source,
    decode_key,
    encode_key,
    has_current_states,
    has_final_outcomes,
    projected_counts,
    projected_days_to_meet,
    projected_misses,
    recorded_source,
    standing_source,
)
from .outcome_projection import Outcome, final_results

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
    # The lower and upper middle of the days to meet, when the database gave them instead of every value.
    middles: tuple[float, float] | None = None

    @property
    def rate(self) -> float | None:
        return round(self.met / self.denominator, 4) if self.denominator else None

    @property
    def median_days_to_meet(self) -> float | None:
        if self.days_to_meet:
            return round(statistics.median(self.days_to_meet), 2)
        return round((self.middles[0] + self.middles[1]) / 2, 2) if self.middles else None

    def as_dict(self) -> dict[str, Any]:
        return {"pathway": self.pathway, "measure_id": self.measure_id, "name": self.name, "source": self.source,
                "denominator": self.denominator, "met": self.met, "not_met": self.not_met, "rate": self.rate,
                "median_days_to_meet": self.median_days_to_meet, "open": self.open, "excluded": self.excluded,
                "not_applicable": self.not_applicable, "unknown": self.unknown,
                "misses": [miss.as_dict() for miss in self.misses]}


# Misses listed per page: by the API unless asked (a year's 16,552 misses made a 5 MB answer), and on
# the web page (a screenful); the misses CSV has them all.
MISSES_PAGE = 500
MISSES_SCREEN = 100


@dataclass
class CompliancePage:
    """The report with one page of its misses (each in its measure's row, in the report's order): how
    many misses there are in all, and the cursor of the next page (None: this was the last)."""

    rows: list[MeasureCompliance]
    misses_total: int = 0
    misses_next: str | None = None


def compliance_report(app: CarePath, principal: Principal, *, pathway: str | None = None,
                      start: datetime | None = None, end: datetime | None = None,
                      group: str | None = None, use_recorded: bool = True) -> list[MeasureCompliance]:
    """The report with every miss (`compliance_page` without a limit)."""
    return compliance_page(app, principal, pathway=pathway, start=start, end=end, group=group,
                           use_recorded=use_recorded).rows


def compliance_page(app: CarePath, principal: Principal, *, pathway: str | None = None,
                    start: datetime | None = None, end: datetime | None = None, group: str | None = None,
                    use_recorded: bool = True, misses_limit: int | None = None,
                    misses_after: str | None = None) -> CompliancePage:
    """Episodes whose measure clock started in [start, end) (any time when not given), of one pathway
    or all, among those the principal may read. Every measure the pathway's versions declare has a row,
    with no episodes too; a pathway with no declared measures gives no rows, not an error; a pathway
    never deployed is not found.

    A team's report (`group`) counts, for each measure, the episodes where the task the measure waits
    for (`met_by.task`) was offered to the team: a team answers for its own deadlines, not for another
    team's late visit in the same episode. A measure met by a variable, or whose task the episode
    never reached, counts for every team the episode offered work to. A miss names who held that task
    (its assignee, or who completed it) and the groups it was offered to.

    An ended episode whose last recorded outcomes (`measure_outcomes`, recorded at the end and again as
    each window still open then closes) are final for every declared measure is counted by the database
    from their projection; every other episode (running, or with an outcome still open or unknown when
    last recorded) from the projection of its standing (`measure_states`, written with its state: an
    open window counts as missed once the report's "now" has passed its deadline), and only an episode
    with neither (changed since its row was written, or never written) is evaluated live from its data
    and task completions, a page at a time. All give the same figures: an evaluation depends on the
    time only through the deadline it compares with. `use_recorded=False` evaluates every episode live.

    The misses come in the order (pathway, measure, episode start), `misses_limit` of them after the
    miss `misses_after` names (a cursor from `misses_next`); all when no limit is given."""
    require_role(principal, *REPORT_ROLES, action="Reading compliance reports")
    after = decode_key(misses_after) if misses_after else None
    with app.db.report_read() as session:
        versions = {v.id: v for v in session.scalars(select(PathwayVersion).where(
            *([PathwayVersion.key == pathway] if pathway else [])))}
        if pathway and not versions:
            raise NotFound(f"pathway '{pathway}' is not deployed")
        declared = {vid: v.measures for vid, v in versions.items() if v.measures}
        if not declared:
            return CompliancePage([])
        if session.get_bind().dialect.name == "postgresql":
            # The grouped counts' estimated cost sets PostgreSQL compiling them (JIT): seconds spent
            # compiling a query that runs in milliseconds. This transaction's reads only.
            session.execute(text("SET LOCAL jit = off"))
        report = _Report(app, session, declared, {vid: versions[vid] for vid in declared}, start, end, group)
        report.select_episodes(principal)
        misses: list[tuple[MissKey, Miss]] = []
        if use_recorded:
            misses += report.count_projected(after, misses_limit)
        misses += report.evaluate_live(after, use_recorded)
        if use_recorded:
            report.complete_medians()
        return report.page(sorted(misses, key=lambda m: m[0]), misses_limit)


class _Report:
    """One compliance report being counted: its rows, the episodes it covers and how to count them."""

    def __init__(self, app: CarePath, session: Session, declared: dict[int, list[Any]], versions: dict[int, Any],
                 start: datetime | None, end: datetime | None, group: str | None) -> None:
        self.app, self.session, self.declared, self.start, self.end, self.group = (
            app, session, declared, start, end, group)
        self.now = app.now()
        self.dialect = session.get_bind().dialect.name
        self.contexts = {vid: app.time_context(versions[vid].time_settings) for vid in declared}
        self.parsed = {vid: [measure_from_dict(raw) for raw in measures] for vid, measures in declared.items()}
        self.keys = {vid: versions[vid].key for vid in declared}
        self.rows: dict[tuple[str, str], MeasureCompliance] = {}
        for vid, measures in sorted(declared.items()):  # a row for every declared measure, episodes or not
            for raw in measures:
                self.rows.setdefault((self.keys[vid], raw["id"]), MeasureCompliance(
                    self.keys[vid], raw["id"], raw["name"], raw["source"]))
        self.episodes: list[Any] = []
        self.sources: list[Source] = []

    def select_episodes(self, principal: Principal) -> None:
        """The conditions on instances: of a declaring version, readable by the principal, and for a
        team's report, offering the team some work."""
        self.episodes = [Instance.pathway_version_id.in_(self.declared)]
        scope = instance_scope(principal)
        if scope is not None:  # a supervisor's report: the episodes they may read, no others' patients
            self.episodes.append(instances_visible_to(self.session, *scope))
        if self.group is not None:
            self.episodes.append(select(Task.id).where(Task.instance_id == Instance.id, audience_has(
                self.dialect, [audience_key("group", self.group)])).exists())

    def count_projected(self, after: MissKey | None, limit: int | None) -> list[tuple[MissKey, Miss]]:
        """Counts the final recorded outcomes and the projected standing of the other episodes in SQL;
        returns their misses after `after` (one more than `limit`, to tell whether there is a next page)."""
        filters: dict[str, Any] = {"now": self.now, "start": self.start, "end": self.end, "group": self.group,
                                   "dialect": self.dialect}
        self.sources = [recorded_source(self.episodes, self.parsed, **filters),
                        standing_source(self.episodes, self.parsed, **filters)]
        connection = self.session.connection()
        for pathway_key, measure_id, status, count, middles in projected_counts(connection, self.sources,
                                                                                self.dialect):
            row = self.rows.get((pathway_key, measure_id))
            if row is not None:
                _add(row, MeasureStatus(status), count)
                if status == MeasureStatus.MET and middles:
                    row.middles = (middles[0], middles[-1])
        tasks = {(vid, m.id): m.met_by_task for vid, measures in self.parsed.items() for m in measures}
        return [(MissKey(m.pathway_key, m.measure_id, m.created_at, m.instance_id),
                 Miss(m.instance_id, m.patient_id, m.business_key, m.deadline, m.detail, [],
                      task=tasks.get((m.pathway_version_id, m.measure_id))))
                for m in projected_misses(connection, self.sources, after, None if limit is None else limit + 1)]

    def complete_medians(self) -> None:
        """Every projected day to meet into the rows whose median the database could not give alone: on
        a database without percentiles, or where live evaluations added days of their own."""
        if self.dialect == "postgresql" and not any(row.middles and row.days_to_meet for row in self.rows.values()):
            return
        for pathway_key, measure_id, days, count in projected_days_to_meet(self.session.connection(), self.sources):
            row = self.rows.get((pathway_key, measure_id))
            if row is not None and (row.middles is None or row.days_to_meet):
                row.days_to_meet.extend([days] * count)
        for row in self.rows.values():
            row.middles = None if row.days_to_meet else row.middles

    def evaluate_live(self, after: MissKey | None, use_recorded: bool) -> list[tuple[MissKey, Miss]]:
        """Evaluates the episodes not counted from a projection (every episode without `use_recorded`);
        returns their misses after `after`."""
        query = select(Instance.id, Instance.pathway_version_id, Instance.status, Instance.ended_at,
                       Instance.patient_id, Instance.business_key, Instance.created_at).where(*self.episodes)
        if use_recorded:  # the few without current projections: no need to read every episode's data to pick them
            query = query.where(~has_final_outcomes(self.now), ~has_current_states())
        elif self.start is not None or self.end is not None:
            query = query.where(_clock_may_start_in(self.declared.values(), self.start, self.end))
        waits_for = {vid: [m.met_by_task for m in measures] for vid, measures in self.parsed.items()}
        measured_tasks = sorted({t for tasks in waits_for.values() for t in tasks if t})
        misses: list[tuple[MissKey, Miss]] = []
        for page in _pages(self.session, query):
            ids = [e.id for e in page]
            data, completions = _data(self.session, ids), _completions(self.session, ids)
            work = _work(self.session, ids, measured_tasks) if self.group is not None else None
            for episode in page:
                version_id = episode.pathway_version_id
                cancelled_at = episode.ended_at if episode.status == InstanceStatus.CANCELLED else None
                facts = Episode(data.get(episode.id) or {}, completions.get(episode.id, []), cancelled_at)
                for measure, task in zip(self.parsed[version_id], waits_for[version_id], strict=True):
                    result = evaluate(measure, facts, now=self.now, time_context=self.contexts[version_id],
                                      evaluate_expression=evaluate_expression)
                    if not self._counts(result, work, episode.id, task):
                        continue
                    key = MissKey(self.keys[version_id], measure.id, episode.created_at, episode.id)
                    miss = _count(self.rows[key.pathway, key.measure_id], result, episode)
                    if miss is not None and (after is None or key > after):
                        miss.task = task
                        misses.append((key, miss))
        return misses

    def _counts(self, result: MeasureResult, work: dict[str, dict[str, _Work]] | None, instance_id: str,
                task: str | None) -> bool:
        """Whether the report counts this result: its clock in the period, a measure the team answers for."""
        if result.clock_started is None:
            return self.start is None and self.end is None  # no clock, no period to place it in
        if not _in_period(result.clock_started, self.start, self.end):
            return False
        return work is None or _answers_for(work.get(instance_id, {}), task, self.group or "")

    def page(self, misses: list[tuple[MissKey, Miss]], limit: int | None) -> CompliancePage:
        """The rows with the first `limit` misses (who held the work filled in), the total and next cursor."""
        shown = misses if limit is None else misses[:limit]
        _fill_holders(self.session, [miss for _, miss in shown])
        for key, miss in shown:
            self.rows[key.pathway, key.measure_id].misses.append(miss)
        more = limit is not None and len(misses) > limit and bool(shown)  # a page of none: the totals only
        rows = sorted(self.rows.values(), key=lambda r: (r.pathway, r.measure_id))
        return CompliancePage(rows, sum(row.not_met for row in rows), encode_key(shown[-1][0]) if more else None)


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


def _results(recorded: Sequence[Sequence[str | None]], measure_ids: list[str]) -> list[Outcome] | None:
    """Recorded outcomes back as results when final and naming exactly the declared measures
    (outcome_projection.final_results)."""
    return final_results(recorded, measure_ids)


def _among(column: Any, ids: Sequence[str], dialect: str) -> Any:
    """column IN ids: one array parameter on PostgreSQL (a statement psycopg need not split into
    hundreds of parameters), a list elsewhere."""
    if dialect == "postgresql":
        return column == func.any(bindparam(None, list(ids), type_=postgresql.ARRAY(Text())))
    return column.in_(ids)


def _data(session: Session, instance_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    dialect = session.get_bind().dialect.name
    for chunk in _chunks(instance_ids):
        out.update((instance_id, data) for instance_id, data in session.connection().execute(
            select(Instance.id, Instance.data).where(_among(Instance.id, chunk, dialect))))
    return out


def _in_period(moment: datetime, start: datetime | None, end: datetime | None) -> bool:
    return (start is None or moment >= start) and (end is None or moment < end)


def _count(row: MeasureCompliance, result: MeasureResult, episode: Row[Any]) -> Miss | None:
    """Counts the result; a miss is returned, for its holders to be filled in and listed if on the page."""
    _add(row, result.status, 1)
    if result.status is MeasureStatus.MET and result.met_at and result.clock_started:
        row.days_to_meet.append((result.met_at - result.clock_started).total_seconds() / 86400)
    if result.status is MeasureStatus.NOT_MET:
        return Miss(episode.id, episode.patient_id, episode.business_key, result.deadline, result.detail, [])
    return None


_TALLIES = {MeasureStatus.MET: "met", MeasureStatus.NOT_MET: "not_met", MeasureStatus.OPEN: "open",
            MeasureStatus.EXCLUDED: "excluded", MeasureStatus.NOT_APPLICABLE: "not_applicable"}


def _add(row: MeasureCompliance, status: MeasureStatus, count: int) -> None:
    """`count` episodes with this outcome into the row (met and not met are the decided ones)."""
    tally = _TALLIES.get(status, "unknown")
    setattr(row, tally, getattr(row, tally) + count)
    if status in (MeasureStatus.MET, MeasureStatus.NOT_MET):
        row.denominator += count


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
