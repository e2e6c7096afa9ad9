"""The supervisors' screens: the team dashboard (`/app/team`), a group's task list (`/app/team/tasks`) and
the unrouted queue (`/app/team/unrouted`).

Read only: their rows carry small forms posting to the task actions (`POST /app/tasks/{id}/assign`,
`/priority`, `/due-date`, api/web's tasks area) with `back` set to the list they came from. Which forms a
row shows is the task's `actions` (engine/rules.allowed_actions); who sees these screens is
rules.supervised_groups (others get the 403 page); a group the supervisor does not supervise is not found.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from carepath.engine.application import CarePath
from carepath.engine.errors import NotFound
from carepath.engine.identity import Principal, sees_every_task
from carepath.engine.model import OPEN_TASK_STATES
from carepath.engine.queries import TaskFilter, list_tasks
from carepath.engine.rules import sees_unrouted, supervised_groups
from carepath.engine.team_queries import eligible_assignees, team_counts
from carepath.engine.views import TaskView

from . import inbox
from .cookies import engine_of
from .inbox import unread_of
from .pages import page, require_user
from .worklist import due_in_words

router = APIRouter(include_in_schema=False)
router.include_router(inbox.router)

TEAM = "/app/team"
PAGE_ROWS = 50
OpenState = Literal["ready", "in-progress", "on-hold"]
STATES = [(state, state.replace("-", " ").capitalize()) for state in OPEN_TASK_STATES]  # columns and choices
GroupName = Annotated[str, Query(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]+$")]
Offset = Annotated[int, Query(ge=0, le=100_000)]


@dataclass(frozen=True)
class TeamRow:
    """A task of a team list, with what its quick actions need."""

    task: TaskView
    due_exact: str | None  # in the care setting's zone
    due_local: str  # the due date as a datetime-local value (YYYY-MM-DDTHH:MM), "" without one
    due_words: str
    overdue: bool
    assignees: list[str]  # who the assign form offers


@router.get(TEAM)
def dashboard(request: Request) -> Response:
    user = require_user(request)
    engine = engine_of(request)
    groups = supervised_groups(user.principal)
    with engine.db.read() as session:
        counts = team_counts(session, groups, engine.now())
    return page(request, "team.html", user=user, counts=counts, every_group=groups is None,
                unread=unread_of(engine, user.principal), states=STATES, zone=engine.time_context().tz.key)


@router.get(f"{TEAM}/tasks")
def group_tasks(request: Request, group: GroupName, state: OpenState | None = None, overdue: bool = False,
                unassigned: bool = False, offset: Offset = 0) -> Response:
    user = require_user(request)
    engine = engine_of(request)
    groups = supervised_groups(user.principal)
    if groups is not None and group not in groups:
        raise NotFound(f"group '{group}' is not one of the teams you supervise")
    filters = TaskFilter(state=state, open_only=True, group=group, unassigned=unassigned,
                         overdue_at=engine.now() if overdue else None, visible_to=_view_of(user.principal))
    query = {"group": group, "state": state, "overdue": "true" if overdue else None,
             "unassigned": "true" if unassigned else None}
    rows, total = _rows(engine, user.principal, filters, offset)
    return page(request, "team_tasks.html", user=user, group=group, state=state, overdue=overdue,
                unassigned=unassigned, states=STATES, rows=rows, total=total, offset=offset, limit=PAGE_ROWS,
                back=_url(f"{TEAM}/tasks", query, offset), here=_url(f"{TEAM}/tasks", query),
                zone=engine.time_context().tz.key)


@router.get(f"{TEAM}/unrouted")
def unrouted(request: Request, offset: Offset = 0) -> Response:
    """The API's `unrouted=true`: open tasks nobody can pick up (no active member in any of their groups)."""
    user = require_user(request)
    engine = engine_of(request)
    supervised_groups(user.principal)
    filters = TaskFilter(state=None, open_only=True, unrouted=True, visible_to=_view_of(user.principal),
                         sees_unrouted=sees_unrouted(user.principal))
    rows, total = _rows(engine, user.principal, filters, offset)
    return page(request, "team_unrouted.html", user=user, rows=rows, total=total, offset=offset, limit=PAGE_ROWS,
                back=_url(f"{TEAM}/unrouted", {}, offset), here=f"{TEAM}/unrouted",
                zone=engine.time_context().tz.key)


def _view_of(user: Principal) -> tuple[str, frozenset[str]] | None:
    return None if sees_every_task(user) else (user.name, user.groups)


def _rows(engine: CarePath, user: Principal, filters: TaskFilter, offset: int) -> tuple[list[TeamRow], int]:
    """A page of the list, soonest due first, each task with the actions the reader may take and, when
    assigning is one, who it may be given to; and the exact total (the dashboard's numbers link here)."""
    now = engine.now()
    zone = engine.time_context().tz
    with engine.db.read() as session:
        found = list_tasks(session, filters, sort="due", limit=PAGE_ROWS, offset=offset, exact_total=True, now=now,
                           reader=user)
        assignable = [task for task in found.items if "assign" in task.actions]
        assignees = eligible_assignees(session, assignable) if assignable else {}
    rows = [TeamRow(task, _exact(task.due_date, zone), _local(task.due_date, zone),
                    due_in_words(task.due_date, now, zone), task.due_date is not None and task.due_date < now,
                    assignees.get(task.id, []))
            for task in found.items]
    return rows, found.total


def _exact(due: datetime | None, zone: ZoneInfo) -> str | None:
    return due.astimezone(zone).strftime("%a %d %b %Y %H:%M") if due else None


def _local(due: datetime | None, zone: ZoneInfo) -> str:
    return due.astimezone(zone).strftime("%Y-%m-%dT%H:%M") if due else ""


def _url(path: str, query: dict[str, str | None], offset: int = 0) -> str:
    """A list's address with only the filters that are set (the `back` of its rows' forms)."""
    kept = {key: value for key, value in query.items() if value is not None}
    if offset:
        kept["offset"] = str(offset)
    return f"{path}?{urlencode(kept)}" if kept else path
