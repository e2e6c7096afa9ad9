"""The worklist page's rows: the API's task query, and due times in words for people."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from carepath.engine.application import CarePath
from carepath.engine.identity import Principal, sees_every_task
from carepath.engine.queries import TaskFilter, list_tasks
from carepath.engine.rules import sees_unrouted
from carepath.engine.views import TaskView

PAGE_ROWS = 100


@dataclass(frozen=True)
class WorklistRow:
    task: TaskView
    due_exact: str | None  # in the care setting's zone
    due_words: str
    overdue: bool


def my_worklist(engine: CarePath, user: Principal) -> tuple[list[WorklistRow], int, bool, str]:
    """What the user holds and what their teams may pick up (the API's `candidate=me`), open in any state,
    soonest due first: the rows, the total, whether it is exact, and the zone the times are in."""
    filters = TaskFilter(state=None, open_only=True, candidate_user=user.name, candidate_groups=user.groups,
                         visible_to=None if sees_every_task(user) else (user.name, user.groups),
                         sees_unrouted=sees_unrouted(user))
    now = engine.now()
    with engine.db.read() as session:
        page = list_tasks(session, filters, sort="due", limit=PAGE_ROWS, now=now)
    zone = engine.time_context().tz
    rows = [WorklistRow(task, _exact(task.due_date, zone), due_in_words(task.due_date, now, zone),
                        task.due_date is not None and task.due_date < now) for task in page.items]
    return rows, page.total, page.total_exact, zone.key


def _exact(due: datetime | None, zone: ZoneInfo) -> str | None:
    return due.astimezone(zone).strftime("%a %d %b %Y %H:%M") if due else None


def due_in_words(due: datetime | None, now: datetime, zone: ZoneInfo) -> str:
    """"overdue 2 h", "due in 40 min", "due today", "due tomorrow", "due in 3 days" (days counted in the
    care setting's zone)."""
    if due is None:
        return "no due date"
    late = now - due
    if late > timedelta(0):
        return f"overdue {_amount(late)}"
    ahead = due - now
    days = (due.astimezone(zone).date() - now.astimezone(zone).date()).days
    if ahead < timedelta(hours=1):
        return f"due in {_amount(ahead)}"
    if days == 0:
        return "due today"
    if days == 1:
        return "due tomorrow"
    return f"due in {days} days"


def _amount(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    if minutes < 60:
        return f"{max(minutes, 1)} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h"
    return f"{minutes // (24 * 60)} days"
