"""A task worker's worklist: its quick views and sorts, each one a `TaskFilter` over the task projection,
and the stamp that tells a worklist open in a browser whether anything moved since it was drawn.

The views are the product's own names (the web page's and the saved settings' vocabulary); what each
one selects is decided here, once, so that the page and any later client agree:

- ``mine-and-teams`` (the default): what the user holds and what they or their teams may pick up
  (the API's ``candidate=me``);
- ``mine``: what the user holds; ``teams``: offered to one of the user's groups, whoever holds it;
- ``unassigned``: nobody holds it; ``due-today``: due today in the care setting's zone (earlier today
  included); ``overdue``: past its due date; ``on-hold``: put on hold.

Every view lists open tasks the user may see (admins and auditors: every task).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .identity import Principal, sees_every_task
from .model import RECORD_VIEWED, TaskState
from .persistence.tables import Event
from .queries import TaskFilter

DEFAULT_VIEW = "mine-and-teams"
# View name -> its label for people, in the order a page offers them.
VIEWS: dict[str, str] = {
    "mine-and-teams": "Mine and my teams'",
    "mine": "Mine",
    "teams": "My teams'",
    "unassigned": "Unassigned",
    "due-today": "Due today",
    "overdue": "Overdue",
    "on-hold": "On hold",
}
DEFAULT_SORT = "due"
# Sort name -> (the engine's order in queries.TASK_SORTS, its label).
SORTS: dict[str, tuple[str, str]] = {
    "due": ("due", "Due date, soonest first"),
    "priority": ("priority-due", "Priority, then due date"),
    "age": ("age", "Age, oldest first"),
}
MAX_SEARCH = 255  # the length of a patient id or business key column


def view_filter(view: str, user: Principal, now: datetime, zone: ZoneInfo, search: str | None = None) -> TaskFilter:
    """The tasks of one quick view for this user (`view` is one of VIEWS: KeyError otherwise), narrowed to
    one patient or episode when `search` holds its id or business key."""
    if view not in VIEWS:
        raise KeyError(view)
    visible = None if sees_every_task(user) else (user.name, user.groups)
    base = TaskFilter(state=None, open_only=True, visible_to=visible, patient_or_episode=search or None)
    if view == "mine-and-teams":
        return replace(base, candidate_user=user.name, candidate_groups=user.groups)
    if view == "mine":
        return replace(base, assignee=user.name)
    if view == "teams":
        return replace(base, groups=user.groups)
    if view == "unassigned":
        return replace(base, unassigned=True)
    if view == "due-today":  # midnight to midnight on the care setting's wall clock
        start = datetime.combine(now.astimezone(zone).date(), time(), zone)
        return replace(base, due_from=start.astimezone(UTC), due_before=(start + timedelta(days=1)).astimezone(UTC))
    if view == "overdue":
        return replace(base, overdue_at=now)
    return replace(base, state=TaskState.ON_HOLD.value, open_only=False)


def last_task_change(session: Session) -> int:
    """A number that grows whenever any task is created or changes: the id of the newest history row about
    a task (every task change appends one in its transaction; reads of a record do not count). One walk
    down the history's primary key, stopped at the first match: cheap whatever the number of tasks."""
    newest = select(func.max(Event.id)).where(Event.task_id.is_not(None), Event.type != RECORD_VIEWED)
    return int(session.scalar(newest) or 0)
