"""Quality measures a pathway declares (HEDIS FUM, TCM's 2-business-day contact, ...): what starts the
clock, what meets the measure, and the window, evaluated on an instance's data and history.

A pathway's measures are the one source of truth for compliance: its timers remind and escalate
before a window closes, but whether the measure was met is decided here, from the declaration, so a
report never depends on which timer happened to fire. Declarations live in the pathway's sidecar
file (`<pathway>.pathway.json`, key `measures`) and are checked at deploy.

A declaration:

    {"id": "fum-7", "name": "Follow-up within 7 days after the ED visit (mental illness)",
     "source": "NCQA HEDIS FUM", "applies_when": "measure == 'FUM'",
     "clock_starts": {"variable": "ed_visit_date", "event": "ED visit (date of service)"},
     "met_by": {"variable": "follow_up_visit_date", "event": "follow-up visit with a mental health provider"},
     "deadline": "P7D after ed_visit_date end of day", "same_day_counts": true,
     "semantics": "the visit date through 7 days after it, inclusive (8 days counting the visit day)"}

`met_by` names either an instance variable holding the date (or date-time) of the meeting event, or a
human task (`{"task": "<element id>", "when": "<condition on the completion's data>"}`) whose first
completion that satisfies the condition meets it. `deadline` uses the product's deadline grammar
(`P7D after <variable> end of day`, `P2BD after <variable> end of day`), so business days, holidays
and the care setting's time zone count as they do for due dates. The window opens at the start of the
day the clock starts (or of the next day when `same_day_counts` is false) and closes at the deadline.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

from .calendars import END_OF_DAY, DeadlineError, TimeContext, deadline_syntax_problem, is_relative_date
from .labels import DATE_FORMAT, TIME_FORMAT

_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_KEYS = {"id", "name", "source", "applies_when", "clock_starts", "met_by", "deadline", "same_day_counts",
         "semantics", "notes"}


class MeasureStatus(StrEnum):
    MET = "met"
    NOT_MET = "not_met"
    OPEN = "open"  # the window has not closed and nothing has met it yet
    NOT_APPLICABLE = "not_applicable"  # applies_when is false for this episode
    EXCLUDED = "excluded"  # the episode was cancelled (e.g. readmission) before the window closed
    UNKNOWN = "unknown"  # the data the clock starts from is missing or not a date


FINAL_STATUSES = frozenset({MeasureStatus.MET, MeasureStatus.NOT_MET, MeasureStatus.NOT_APPLICABLE,
                            MeasureStatus.EXCLUDED})


@dataclass(frozen=True)
class Measure:
    id: str
    name: str
    source: str
    clock_variable: str
    clock_event: str
    deadline: str
    met_by_variable: str | None = None
    met_by_task: str | None = None
    met_when: str | None = None
    met_event: str = ""
    applies_when: str | None = None
    same_day_counts: bool = True
    semantics: str = ""

    def as_dict(self) -> dict[str, Any]:
        met_by: dict[str, Any] = {"event": self.met_event}
        if self.met_by_variable:
            met_by["variable"] = self.met_by_variable
        if self.met_by_task:
            met_by["task"] = self.met_by_task
            if self.met_when:
                met_by["when"] = self.met_when
        out: dict[str, Any] = {"id": self.id, "name": self.name, "source": self.source,
                               "clock_starts": {"variable": self.clock_variable, "event": self.clock_event},
                               "met_by": met_by, "deadline": self.deadline, "same_day_counts": self.same_day_counts,
                               "semantics": self.semantics}
        if self.applies_when:
            out["applies_when"] = self.applies_when
        return out


@dataclass(frozen=True)
class Completion:
    """One completion of a human task, as the history records it."""

    element_id: str
    at: datetime
    data: Mapping[str, Any]


@dataclass(frozen=True)
class MeasureResult:
    measure_id: str
    name: str
    source: str
    status: MeasureStatus
    detail: str
    clock_started: datetime | None = None
    window_opens: datetime | None = None
    deadline: datetime | None = None
    met_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {"measure_id": self.measure_id, "name": self.name, "source": self.source,
                "status": self.status.value, "detail": self.detail, "clock_started": iso(self.clock_started),
                "window_opens": iso(self.window_opens), "deadline": iso(self.deadline), "met_at": iso(self.met_at)}


def parse_measures(raw: Any, *, check_expression: Callable[[str], None],
                   task_ids: Sequence[str] | None = None) -> tuple[list[Measure], list[str]]:
    """Declarations from a sidecar's `measures` value; (measures, problems). Each problem names the
    measure (by id or position) and the field."""
    if raw is None:
        return [], []
    if not isinstance(raw, list):
        return [], ['"measures" must be a list of measure declarations']
    measures: list[Measure] = []
    problems: list[str] = []
    seen: set[str] = set()
    for position, item in enumerate(raw, start=1):
        where = f"measure {position}"
        if not isinstance(item, dict):
            problems.append(f"{where} must be a JSON object")
            continue
        if isinstance(item.get("id"), str):
            where = f"measure '{item['id']}'"
        found = _parse_one(item, where, check_expression, task_ids)
        if isinstance(found, Measure):
            if found.id in seen:
                problems.append(f"{where}: the id is used twice; each measure needs its own id")
            seen.add(found.id)
            measures.append(found)
        else:
            problems.extend(found)
    return measures, problems


def _parse_one(item: dict[str, Any], where: str, check_expression: Callable[[str], None],
               task_ids: Sequence[str] | None) -> Measure | list[str]:
    problems: list[str] = []
    unknown = sorted(set(item) - _KEYS)
    if unknown:
        problems.append(f"{where}: unknown field(s) {', '.join(unknown)}; a measure has {', '.join(sorted(_KEYS))}")

    def text(key: str, required: bool = True) -> str:
        value = item.get(key)
        if value is None and not required:
            return ""
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{where}: \"{key}\" must be a non-empty text")
            return ""
        return value.strip()

    measure_id = text("id")
    if measure_id and not _ID.match(measure_id):
        problems.append(f"{where}: id '{measure_id}' must be lowercase letters, digits, '-', '_' or '.'")
    name, source, deadline = text("name"), text("source"), text("deadline")
    semantics = text("semantics", required=False)
    clock = item.get("clock_starts")
    clock_variable = clock_event = ""
    if not isinstance(clock, dict) or not isinstance(clock.get("variable"), str):
        problems.append(f"{where}: \"clock_starts\" must be {{\"variable\": \"<instance variable with the date>\", "
                        "\"event\": \"<what happened>\"}")
    else:
        clock_variable, clock_event = clock["variable"].strip(), str(clock.get("event") or "").strip()
        if not _VARIABLE.match(clock_variable):
            problems.append(f"{where}: clock_starts.variable '{clock_variable}' is not a variable name")
    if deadline:
        problem = deadline_syntax_problem(deadline)
        if problem:
            problems.append(f"{where}: deadline {problem}")
        elif not is_relative_date(deadline) or clock_variable and f"after {clock_variable}" not in deadline:
            problems.append(f"{where}: deadline '{deadline}' must count from the clock's start, e.g. "
                            f"'P7D after {clock_variable or '<variable>'} end of day'")
    met = item.get("met_by")
    met_variable = met_task = met_when = None
    met_event = ""
    if not isinstance(met, dict) or ("variable" in met) == ("task" in met):
        problems.append(f"{where}: \"met_by\" must name either a \"variable\" holding the date it was met or a "
                        "\"task\" whose completion meets it (with an optional \"when\" condition)")
    else:
        met_event = str(met.get("event") or "").strip()
        if "variable" in met:
            met_variable = str(met["variable"]).strip()
            if not _VARIABLE.match(met_variable):
                problems.append(f"{where}: met_by.variable '{met_variable}' is not a variable name")
        else:
            met_task = str(met["task"]).strip()
            if task_ids is not None and met_task not in task_ids:
                problems.append(f"{where}: met_by.task '{met_task}' is not a user task of the pathway")
            if met.get("when") is not None:
                met_when = str(met["when"]).strip()
                problems.extend(_expression_problem(where, "met_by.when", met_when, check_expression))
    applies_when = item.get("applies_when")
    if applies_when is not None:
        applies_when = str(applies_when).strip()
        problems.extend(_expression_problem(where, "applies_when", applies_when, check_expression))
    same_day = item.get("same_day_counts", True)
    if not isinstance(same_day, bool):
        problems.append(f"{where}: \"same_day_counts\" must be true or false")
    if problems:
        return problems
    return Measure(id=measure_id, name=name, source=source, clock_variable=clock_variable, clock_event=clock_event,
                   deadline=deadline, met_by_variable=met_variable, met_by_task=met_task, met_when=met_when,
                   met_event=met_event, applies_when=applies_when or None, same_day_counts=bool(same_day),
                   semantics=semantics)


def _expression_problem(where: str, field: str, source: str, check: Callable[[str], None]) -> list[str]:
    try:
        check(source)
    except Exception as exc:  # the sandbox's own error names what is wrong
        return [f"{where}: {field} '{source[:120]}' cannot run: {getattr(exc, 'message', None) or exc}"]
    return []


def measure_from_dict(raw: dict[str, Any]) -> Measure:
    """A stored declaration (already checked at deploy) back as a Measure."""
    met = raw["met_by"]
    return Measure(id=raw["id"], name=raw["name"], source=raw["source"], clock_variable=raw["clock_starts"]["variable"],
                   clock_event=raw["clock_starts"].get("event", ""), deadline=raw["deadline"],
                   met_by_variable=met.get("variable"), met_by_task=met.get("task"), met_when=met.get("when"),
                   met_event=met.get("event", ""), applies_when=raw.get("applies_when"),
                   same_day_counts=raw.get("same_day_counts", True), semantics=raw.get("semantics", ""))


@dataclass(frozen=True)
class Episode:
    """What an evaluation reads of one instance."""

    data: Mapping[str, Any]
    completions: Sequence[Completion]
    cancelled_at: datetime | None  # the episode was cancelled (not completed) at this time


def evaluate(measure: Measure, episode: Episode, *, now: datetime, time_context: TimeContext,
             evaluate_expression: Callable[[str, Mapping[str, Any]], Any]) -> MeasureResult:
    def result(status: MeasureStatus, detail: str, **times: datetime | None) -> MeasureResult:
        return MeasureResult(measure.id, measure.name, measure.source, status, detail, **times)

    data = episode.data
    if measure.applies_when:
        try:
            applies = bool(evaluate_expression(measure.applies_when, data))
        except Exception as exc:
            return result(MeasureStatus.UNKNOWN, f"applies_when could not be evaluated: {exc}")
        if not applies:
            return result(MeasureStatus.NOT_APPLICABLE, "does not apply: this episode is not one the measure counts")
    tz = time_context.tz
    try:
        started, _ = _moment(_lookup(data, measure.clock_variable), tz)
        deadline = time_context.resolve(measure.deadline, now=now, variables=data)
    except (DeadlineError, LookupError, TypeError, ValueError) as exc:
        return result(MeasureStatus.UNKNOWN, f"the clock cannot start: {exc}")
    first_day = started.astimezone(tz).date() + timedelta(days=0 if measure.same_day_counts else 1)
    opens = datetime.combine(first_day, time(), tzinfo=tz).astimezone(UTC)
    times = {"clock_started": started.astimezone(UTC), "window_opens": opens, "deadline": deadline}
    evidence = _evidence(measure, episode, tz, evaluate_expression)
    if isinstance(evidence, str):
        return result(MeasureStatus.UNKNOWN, evidence, **times)
    last_day = deadline.astimezone(tz).date()
    ends_with_day = deadline.astimezone(tz).time() >= END_OF_DAY  # "… end of day": the whole last day counts
    for met_at, date_only in evidence:
        day = met_at.astimezone(tz).date()
        if date_only or ends_with_day:
            in_window = first_day <= day <= last_day and (date_only or met_at >= opens)
        else:
            in_window = opens <= met_at <= deadline
        if in_window:
            return result(MeasureStatus.MET, f"{measure.met_event or 'met'} on {_when(met_at, date_only, tz)}",
                          met_at=met_at.astimezone(UTC), **times)
    late = [e for e in evidence if e[0].astimezone(tz).date() > last_day
            or (not e[1] and not ends_with_day and e[0] > deadline)]
    if late:
        met_at, date_only = late[0]
        return result(MeasureStatus.NOT_MET, f"{measure.met_event or 'met'} on {_when(met_at, date_only, tz)}, after "
                      f"the window closed at {_when(deadline, False, tz)}", met_at=met_at.astimezone(UTC), **times)
    if episode.cancelled_at is not None and episode.cancelled_at <= deadline:
        return result(MeasureStatus.EXCLUDED, "the episode was cancelled before the window closed", **times)
    if now > deadline:
        early = " (only before the window opened)" if evidence else ""
        return result(MeasureStatus.NOT_MET, f"nothing met it before the window closed at "
                      f"{_when(deadline, False, tz)}{early}", **times)
    return result(MeasureStatus.OPEN, f"open until {_when(deadline, False, tz)}", **times)


def _evidence(measure: Measure, episode: Episode, tz: Any,
              evaluate_expression: Callable[[str, Mapping[str, Any]], Any]) -> list[tuple[datetime, bool]] | str:
    """When the meeting event happened, earliest first: (aware moment, whether only its date is known)."""
    if measure.met_by_variable:
        try:
            value = _lookup(episode.data, measure.met_by_variable)
        except LookupError:
            return []
        if value in (None, ""):
            return []
        try:
            return [_moment(value, tz)]
        except (TypeError, ValueError) as exc:
            return f"{measure.met_by_variable} is not a date: {exc}"
    found = []
    for completion in sorted(episode.completions, key=lambda c: c.at):
        if completion.element_id != measure.met_by_task:
            continue
        if measure.met_when:
            try:
                if not evaluate_expression(measure.met_when, {**episode.data, **completion.data}):
                    continue
            except Exception:  # the completion lacks a field the condition reads: it does not count
                continue
        found.append((completion.at, False))
    return found


def _lookup(data: Mapping[str, Any], dotted: str) -> Any:
    value: Any = data
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            raise LookupError(f"the instance has no variable '{dotted}'")
        value = value[part]
    return value


def _moment(value: Any, tz: Any) -> tuple[datetime, bool]:
    """A date or date-time value; a date is the start of that day in the care setting's zone."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=tz)), False
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=tz), True
    if not isinstance(value, str):
        raise TypeError(f"{type(value).__name__} {value!r} is not a date")
    text = value.strip()
    if len(text) == 10:
        return datetime.combine(date.fromisoformat(text), time(), tzinfo=tz), True
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (moment if moment.tzinfo else moment.replace(tzinfo=tz)), False


def _when(moment: datetime, date_only: bool, tz: Any) -> str:
    """As people read it, in the pathway's zone (the pages name it): "19 Feb 2026 10:00", "16 Feb 2026"."""
    return moment.astimezone(tz).strftime(DATE_FORMAT if date_only else TIME_FORMAT)
