"""The worklist's rows: one quick view of the task projection (engine/worklist.py), due times in words for
people, and the fingerprint that tells a polling page whether what it shows has changed."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from carepath.engine.application import CarePath
from carepath.engine.identity import Principal
from carepath.engine.queries import list_tasks
from carepath.engine.usecases.worklist_settings import WorklistChoice, saved_choice
from carepath.engine.views import TaskView
from carepath.engine.worklist import SORTS, last_task_change, view_filter

PAGE_ROWS = 50
MAX_PAGE = 20  # 1,000 rows deep: further than anyone pages; a search finds the rest
STATES = {"ready": "Ready", "in-progress": "In progress", "on-hold": "On hold"}


@dataclass(frozen=True)
class WorklistRow:
    task: TaskView
    due_exact: str | None  # in the care setting's zone
    due_utc: str | None  # for <time datetime>, to the minute
    due_words: str
    overdue: bool
    state: str
    holder: str


@dataclass(frozen=True)
class WorklistPage:
    choice: WorklistChoice
    rows: list[WorklistRow]
    total: int
    exact: bool
    page: int
    has_next: bool
    zone: str
    drawn_at: str  # the time of day in the care setting's zone
    cursor: str  # "<last task change>.<fingerprint of these rows>"

    @property
    def first(self) -> int:
        return (self.page - 1) * PAGE_ROWS + 1


def worklist_page(engine: CarePath, user: Principal, choice: WorklistChoice | None, page: int = 1) -> WorklistPage:
    """One page of the chosen view (None: the user's saved choice, read with the rows), and its cursor."""
    now, zone = engine.now(), engine.time_context().tz
    offset = (page - 1) * PAGE_ROWS
    with engine.db.read() as session:
        choice = choice or saved_choice(session, user)
        filters = view_filter(choice.view, user, now, zone, choice.search)
        stamp = last_task_change(session)  # read first: the rows are at least as new as it
        found = list_tasks(session, filters, sort=SORTS[choice.sort][0], limit=PAGE_ROWS, offset=offset, now=now)
    rows = [_row(task, now, zone) for task in found.items]
    has_next = (not found.total_exact or found.total > offset + len(rows)) and page < MAX_PAGE
    cursor = f"{stamp}.{fingerprint(rows, found.total, found.total_exact)}"
    return WorklistPage(choice, rows, found.total, found.total_exact, page, has_next, zone.key,
                        now.astimezone(zone).strftime("%H:%M"), cursor)


def current_stamp(engine: CarePath) -> int:
    with engine.db.read() as session:
        return last_task_change(session)


def fingerprint(rows: list[WorklistRow], total: int, exact: bool) -> str:
    """What the rows show, in 16 hex digits: equal fingerprints draw the same table (the due times in words
    aside, which move with the clock and are redrawn with the next change or visit)."""
    digest = hashlib.blake2b(digest_size=8)
    digest.update(f"{total}{exact}".encode())
    for row in rows:
        t = row.task
        digest.update(repr((t.id, t.state, t.assignee, t.priority, t.due_date, t.name, t.candidate_groups,
                             t.patient)).encode())
    return digest.hexdigest()


def _row(task: TaskView, now: datetime, zone: ZoneInfo) -> WorklistRow:
    holder = task.assignee or (f"open to {', '.join(task.candidate_groups)}" if task.candidate_groups
                               else "open, not held")
    due_utc = task.due_date.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ") if task.due_date else None
    return WorklistRow(task, _exact(task.due_date, zone), due_utc, due_in_words(task.due_date, now, zone),
                       task.due_date is not None and task.due_date < now, STATES.get(task.state, task.state), holder)


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
