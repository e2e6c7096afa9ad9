"""Evaluating a human task's assignment rules (from the diagram) when it becomes ready.

A value is a literal ("care-coordinator", "alice, bob") or a `${...}` expression over the task's
data, evaluated in the sandbox (`${patient.pcp_team}`); a list result names several. An instance
variable `lane_owners` ({"Lane name": ["user", ...]}) routes a lane to people at run time, as
spiff-arena allows. A rule that cannot be evaluated is reported, and the task falls back to its lane.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

DEFAULT_PRIORITY = 50
_EXPRESSION = re.compile(r"^\s*[$#]\{(?P<expr>.*)\}\s*$", re.DOTALL)


@dataclass(frozen=True)
class Assignment:
    assignee: str | None = None
    candidate_users: tuple[str, ...] = ()
    candidate_groups: tuple[str, ...] = ()
    priority: int = DEFAULT_PRIORITY
    errors: tuple[str, ...] = field(default_factory=tuple)


def assignment_for(task: Any, rule: dict[str, Any] | None) -> Assignment:
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
    return Assignment(assignee=assignees[0] if assignees else None, candidate_users=tuple(dict.fromkeys(users)),
                      candidate_groups=tuple(dict.fromkeys(values("candidate_groups"))), priority=priority,
                      errors=tuple(errors))


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
