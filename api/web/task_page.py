"""What the task page shows, read in one transaction: the task as its reader sees it (with the actions the
engine allows them now), its form with the saved draft, its comments, the episode's start and earlier steps,
and the colleagues it may be handed to."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from carepath.engine.application import CarePath
from carepath.engine.directory import DOMAINS
from carepath.engine.episode_start import EpisodeStart, episode_start
from carepath.engine.errors import NotFound
from carepath.engine.identity import Principal, sees_every_task
from carepath.engine.labels import labelled_values
from carepath.engine.model import OPEN_TASK_STATES
from carepath.engine.queries import completed_with, task_comments, task_form, task_timeline, visible_task
from carepath.engine.rules import sees_unrouted
from carepath.engine.team_queries import eligible_assignees
from carepath.engine.usecases.task_forms import task_form_values
from carepath.engine.views import TaskTimelineView, TaskView

from .worklist import due_in_words

# The engine's actions (engine/rules.py) as the page's forms post them: /app/tasks/{id}/<path>.
ACTION_PATHS = {"claim": "claim", "unclaim": "unclaim", "assign": "assign", "delegate": "delegate",
                "resolve": "resolve", "hold": "hold", "resume": "resume", "save_draft": "draft",
                "complete": "complete", "comment": "comment", "set_priority": "priority",
                "set_due_date": "due-date"}


@dataclass(frozen=True)
class TaskPage:
    task: TaskView
    schema: dict[str, Any] | None
    values: dict[str, Any]  # the instance's data for the form's fields, under the saved draft
    comments: list[dict[str, Any]]
    timeline: list[TaskTimelineView]
    episode: EpisodeStart | None
    colleagues: list[str]
    zone: ZoneInfo
    now: datetime
    domain: str | None = None  # the episode's `domain` variable (a need: food, housing, ...), if it names one

    @property
    def due_words(self) -> str:
        return due_in_words(self.task.due_date, self.now, self.zone)

    @property
    def start_data(self) -> list[tuple[str, str]]:
        """The episode's start data in words, each field by its start-form title."""
        return labelled_values(self.episode.data, self.zone, self.episode.titles) if self.episode else []

    def local(self, moment: datetime | None) -> str:
        return moment.astimezone(self.zone).strftime("%a %d %b %Y %H:%M") if moment else ""

    @property
    def due_input(self) -> str:
        """The due date as a datetime-local input shows it, in the care setting's zone."""
        due = self.task.due_date
        return due.astimezone(self.zone).strftime("%Y-%m-%dT%H:%M") if due else ""

    @property
    def open(self) -> bool:
        return self.task.state in OPEN_TASK_STATES

    @property
    def works(self) -> bool:
        """The form is this reader's to fill in now (the engine's allowed actions); else it is shown as text."""
        return self.may("complete") or self.may("save_draft")

    @property
    def ended(self) -> TaskTimelineView | None:
        """This task's step of the timeline once it is completed or cancelled (who, when), else None."""
        if self.open:
            return None
        return next((step for step in self.timeline if step.task_id == self.task.id), None)

    def may(self, action: str) -> bool:
        return action in self.task.actions


def visible_or_404(engine: CarePath, user: Principal, task_id: str) -> TaskView:
    """The task as this user sees it (with their actions), or not found, as the API answers."""
    with engine.db.read() as session:
        view = visible_task(session, task_id, _view_of(user), sees_unrouted(user), engine.now(), user)
    if view is None:
        raise NotFound(f"task {task_id} does not exist")
    return view


def task_schema(engine: CarePath, user: Principal, task_id: str) -> dict[str, Any] | None:
    """The form of a task this user may see (not found otherwise), to read a posted form with."""
    with engine.db.read() as session:
        if visible_task(session, task_id, _view_of(user), sees_unrouted(user), engine.now()) is None:
            raise NotFound(f"task {task_id} does not exist")
        schema, _ = task_form(session, task_id) or (None, {})
    return schema


def read_task_page(engine: CarePath, user: Principal, task_id: str) -> TaskPage:
    now = engine.now()
    with engine.db.read() as session:
        view = visible_task(session, task_id, _view_of(user), sees_unrouted(user), now, user)
        if view is None:
            raise NotFound(f"task {task_id} does not exist")
        schema, data = task_form_values(engine, session, task_id) or (None, {})
        submitted = completed_with(session, task_id) if view.state == "completed" else None
        comments = task_comments(session, task_id)
        timeline = task_timeline(session, view.instance_id, now)
        episode = episode_start(session, view.instance_id)
        # Who the task may be handed to: the same list the team screens offer (engine/team_queries.py).
        colleagues = eligible_assignees(session, [view])[view.id] if {"delegate", "assign"} & set(view.actions) else []
    fields = set((schema or {}).get("properties") or {})
    # Done: what it was completed with (later steps may have changed the episode's data); else what is saved.
    values = submitted if submitted is not None else {**{k: v for k, v in data.items() if k in fields},
                                                      **(view.draft or {})}
    domain: Any = dict(data).get("domain")
    return TaskPage(view, schema, values, comments, timeline, episode, colleagues, engine.time_context().tz, now,
                    domain if isinstance(domain, str) and domain in DOMAINS else None)


def _view_of(user: Principal) -> tuple[str, frozenset[str]] | None:
    return None if sees_every_task(user) else (user.name, user.groups)
