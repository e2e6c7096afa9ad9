"""Evaluating a human task's assignment rules (from the diagram) when it becomes ready.

A value is a literal ("care-coordinator", "alice, bob") or a `${...}` expression over the task's
data, evaluated in the sandbox (`${patient.pcp_team}`); a list result names several. An instance
variable `lane_owners` ({"Lane name": ["user", ...]}) routes a lane to people at run time, as
spiff-arena allows. A rule that cannot be evaluated is reported, and the task falls back to its lane.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..calendars import TimeContext

DATE_KEYS = ("due_date", "follow_up_date")

DEFAULT_PRIORITY = 50
_EXPRESSION = re.compile(r"^\s*[$#]\{(?P<expr>.*)\}\s*$", re.DOTALL)


@dataclass(frozen=True)
class Assignment:
    assignee: str | None = None
    candidate_users: tuple[str, ...] = ()
    candidate_groups: tuple[str, ...] = ()
    priority: int = DEFAULT_PRIORITY
    errors: tuple[str, ...] = field(default_factory=tuple)
    due_date: datetime | None = None
    follow_up_date: datetime | None = None


def assignment_for(task: Any, rule: dict[str, Any] | None, now: datetime | None = None,
                   time_context: TimeContext | None = None) -> Assignment:
    rule = rule or {}
    errors: list[str] = []

    def values(key: str) -> list[str]:
        raw = rule.get(key)
        if not raw:
            return []
        try:
            return _as_names(_value(task, raw))
        except Exception as exc:  # a bad expression must not stop the pathway: the lane still routes it
            errors.append(f"{key} '{raw}' could not be evaluated: {exc}")
            return []

    assignees = values("assignee")
    users = values("candidate_users") + _lane_owners(task)
    priority = _priority(values("priority"), errors)
    due, follow_up = _dates(task, rule, now, time_context or TimeContext.utc_weekdays(), errors)
    return Assignment(assignee=assignees[0] if assignees else None, candidate_users=tuple(dict.fromkeys(users)),
                      candidate_groups=tuple(dict.fromkeys(values("candidate_groups"))), priority=priority,
                      errors=tuple(errors), due_date=due, follow_up_date=follow_up)


def _dates(task: Any, rule: dict[str, Any], now: datetime | None, context: TimeContext,
           errors: list[str]) -> tuple[datetime | None, datetime | None]:
    """The task's due and follow-up dates, worked out once, when the task first becomes ready, and kept
    with the task (so "P2BD" counts from the task's creation however often the instance is saved)."""
    if not any(rule.get(key) for key in DATE_KEYS):
        return None, None
    stored = task._get_internal_data("carepath_dates")
    if stored is None:
        if now is None:
            return None, None
        stored = {}
        for key in DATE_KEYS:
            raw = rule.get(key)
            if not raw:
                continue
            try:
                stored[key] = context.resolve(_value(task, raw), now=now, variables=task.data).isoformat()
            except Exception as exc:  # a bad date must not stop the pathway: the task simply has none
                errors.append(f"{key} '{raw}' could not be worked out: {exc}")
        task._set_internal_data(carepath_dates=stored)
    return tuple(datetime.fromisoformat(stored[k]) if stored.get(k) else None  # type: ignore[return-value]
                 for k in DATE_KEYS)


def is_expression(raw: str) -> bool:
    return _EXPRESSION.match(raw) is not None


def _value(task: Any, raw: str) -> Any:
    match = _EXPRESSION.match(raw)
    if match is None:
        return raw
    return task.workflow.script_engine.environment.evaluate(match.group("expr").strip(), task.data)


def _as_names(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple | set):
        return [str(v).strip() for v in value if str(v).strip()]
    return [part.strip() for part in str(value).split(",") if part.strip()]


def _lane_owners(task: Any) -> list[str]:
    owners = task.data.get("lane_owners")
    lane = getattr(task.task_spec, "lane", None)
    if not isinstance(owners, dict) or lane is None:
        return []
    return _as_names(owners.get(lane))


def _priority(values: list[str], errors: list[str]) -> int:
    if not values:
        return DEFAULT_PRIORITY
    try:
        return max(0, min(100, int(float(values[0]))))
    except ValueError:
        errors.append(f"priority '{values[0]}' is not a number from 0 to 100")
        return DEFAULT_PRIORITY
