"""The task page `/app/tasks/{task_id}` and every change to a task from the web app.

Each action is a small form posting to `/app/tasks/{task_id}/<action>`; the route checks the CSRF token and
calls the SAME engine use case as the JSON API route (api/routes/tasks.py), so the rules (who may do what
from which state) are the engine's only. The page offers exactly the task view's `actions`. An optional
hidden `back` field (a path under /app/) says where to go after success; by default the task page.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, Response

from carepath.engine.bounds import MAX_COMMENT_CHARS
from carepath.engine.errors import CarePathError, Conflict, NotFound, ValidationFailed
from carepath.engine.forms import form_problems
from carepath.engine.usecases import tasks as task_cases
from carepath.engine.usecases.access import record_access
from carepath.engine.usecases.instances import get_instance_view
from carepath.engine.usecases.patient_records import patient_of_instance
from carepath.engine.usecases.worklist_settings import worklist_choice
from carepath.engine.views import TaskView

from ..errors import status_for
from .cookies import WebUser, client_of, engine_of
from .flash import redirect_saying
from .forms import Posted, field_errors, form_fields, typed_values
from .pages import page, posted_form, redirect, require_user, safe_next, text_fields
from .resource_search import with_chosen_services
from .task_page import ACTION_PATHS, read_task_page, task_schema, visible_or_404
from .worklist import worklist_page

router = APIRouter(include_in_schema=False)
TaskId = Annotated[str, PathParam(min_length=1, max_length=100)]


def task_url(task_id: str) -> str:
    return f"/app/tasks/{task_id}"


@router.get("/app/tasks/{task_id}")
def task_page(request: Request, task_id: TaskId) -> Response:
    user = require_user(request)
    return _render(request, user, task_id)


def _render(request: Request, user: WebUser, task_id: str, status: int = 200, posted: Posted | None = None,
            errors: dict[str, str] | None = None, others: list[str] | None = None,
            action_errors: dict[str, str] | None = None, action_fields: dict[str, str] | None = None,
            action_values: dict[str, dict[str, str]] | None = None) -> HTMLResponse:
    """The task page, recording one read of the patient's record per page drawn."""
    engine = engine_of(request)
    view = read_task_page(engine, user.principal, task_id)
    record_access(engine, user.principal, "task", view.task.instance_id, task_id, client_of(request))
    fields = form_fields(view.schema, view.values, view.zone, errors, posted.raw if posted else None)
    if posted is not None:  # a refused form shows every field as the user left it, ticks included
        fields = [_kept(f, posted) for f in fields]
    fields = with_chosen_services(engine, fields, view.domain)  # a directory service's id: the service, under its field
    return page(request, "task.html", status, user=user, view=view, task=view.task, fields=fields,
                patient=patient_of_instance(engine, view.task.instance_id),
                others=others or [], action_errors=action_errors or {}, action_fields=action_fields or {},
                action_values=action_values or {}, paths=ACTION_PATHS, max_comment=MAX_COMMENT_CHARS)


def _kept(field: Any, posted: Posted) -> Any:
    if field.widget == "checkbox":
        return replace(field, value="true" if posted.values.get(field.name) else "")
    return field


async def _form(request: Request, user: WebUser) -> dict[str, str]:
    return text_fields(await posted_form(request, user))


def _back(form: dict[str, str], task_id: str, default: str | None = None) -> str:
    return safe_next(form["back"]) if form.get("back") else default or task_url(task_id)


def _text(field: str) -> Callable[[dict[str, str]], tuple[Any, ...]]:
    return lambda form: (form.get(field, ""),)


def _whole(form: dict[str, str]) -> tuple[Any, ...]:
    try:
        return (int(form.get("priority", "").strip()),)
    except ValueError:
        raise ValidationFailed("priority must be a whole number from 0 to 100") from None


def _due(form: dict[str, str]) -> tuple[Any, ...]:
    """A datetime-local value (naive: the use case reads it in the pathway's zone) or none, and the reason."""
    return (form.get("due", "").strip() or None, form.get("reason", ""))


# path -> (the engine's action, its use case (the API route's), the use case's arguments after the task id
# read from the posted form). The task form's own two, draft and complete, follow below.
SMALL_ACTIONS: dict[str, tuple[str, Callable[..., object], Callable[[dict[str, str]], tuple[Any, ...]]]] = {
    "claim": ("claim", task_cases.claim_task, lambda form: ()),
    "unclaim": ("unclaim", task_cases.unclaim_task, lambda form: ()),
    "resolve": ("resolve", task_cases.resolve_task, lambda form: ()),
    "hold": ("hold", task_cases.hold_task, _text("reason")),
    "resume": ("resume", task_cases.resume_task, _text("reason")),
    "delegate": ("delegate", task_cases.delegate_task, _text("to")),
    "assign": ("assign", task_cases.assign_task, _text("assignee")),
    "comment": ("comment", task_cases.comment_on_task, _text("text")),
    "priority": ("set_priority", task_cases.set_priority, _whole),
    "due-date": ("set_due_date", task_cases.set_due_date, _due),
}


def _due_said(task: TaskView, zone: ZoneInfo) -> str:
    if task.due_date is None:
        return f"'{task.name}' has no due date now."
    return f"Due date of '{task.name}' moved to {task.due_date.astimezone(zone).strftime('%d %b %H:%M')}."


# What the status line says after each action (api/web/flash.py), from the task as the use case left it.
SAID: dict[str, Callable[[Any, ZoneInfo], str]] = {
    "claim": lambda task, zone: f"You claimed '{task.name}'.",
    "unclaim": lambda task, zone: f"Released '{task.name}': it is open to the team again.",
    "resolve": lambda task, zone: f"Resolved '{task.name}': it is back with {task.assignee}.",
    "hold": lambda task, zone: f"'{task.name}' is on hold.",
    "resume": lambda task, zone: f"'{task.name}' is resumed.",
    "delegate": lambda task, zone: f"Delegated '{task.name}' to {task.assignee}.",
    "assign": lambda task, zone: f"Assigned '{task.name}' to {task.assignee}.",
    "comment": lambda comment, zone: "Your comment was added.",
    "priority": lambda task, zone: f"Priority of '{task.name}' set to {task.priority}.",
    "due-date": _due_said,
}


# The field a refusal is shown at when the use case does not name one.
FIRST_FIELD = {"hold": "reason", "resume": "reason", "delegate": "to", "assign": "assignee", "comment": "text",
               "priority": "priority", "due-date": "due"}


def _message(exc: ValidationFailed) -> str:
    return "; ".join(p.message for p in exc.problems) or exc.message


@router.post("/app/tasks/{task_id}/draft")
async def draft(request: Request, task_id: TaskId) -> Response:
    """Keep what is typed so far (a history entry each time). htmx (the form's change, or 30 s after a
    change: static/tasks.js) gets a status line; without JavaScript the page again."""
    user = require_user(request)
    form = await _form(request, user)
    engine = engine_of(request)
    posted = typed_values(task_schema(engine, user.principal, task_id), form, engine.time_context().tz)
    by_htmx = request.headers.get("hx-request") == "true"
    try:
        task_cases.save_draft(engine, user.principal, task_id, posted.values)
    except CarePathError as refused:
        if not by_htmx:
            raise
        # Said in the status line (a 4xx is not swapped in): e.g. completed a moment ago, or claimed by another.
        return page(request, "_draft_status.html", user=user, refused=refused.message)
    at = engine.now().astimezone(engine.time_context().tz).strftime("%H:%M")
    if by_htmx:
        return page(request, "_draft_status.html", user=user, at=at, errors=posted.errors)
    if posted.errors:
        return _render(request, user, task_id, 422, posted, posted.errors,
                       ["The draft was saved without the fields marked below."])
    return redirect_saying(request, _back(form, task_id), "Draft saved.")


@router.post("/app/tasks/{task_id}/complete")
async def complete(request: Request, task_id: TaskId) -> Response:
    """Complete with the form's values: the engine checks them (each problem shown at its field, everything
    typed kept); done, the page that offers the next task."""
    user = require_user(request)
    form = await _form(request, user)
    engine = engine_of(request)
    schema = task_schema(engine, user.principal, task_id)
    posted = typed_values(schema, form, engine.time_context().tz)
    names = set((schema or {}).get("properties") or {})
    if posted.errors:  # not of their type: said at their fields, with the engine's word on the others
        problems = ValidationFailed("", form_problems(schema, posted.values))
        at_fields, others = field_errors(problems, names - set(posted.errors))
        return _render(request, user, task_id, 422, posted, {**at_fields, **posted.errors},
                       [m for m in others if m])
    try:
        task_cases.complete_task(engine, user.principal, task_id, posted.values)
    except ValidationFailed as refused:
        at_fields, others = field_errors(refused, names)
        return _render(request, user, task_id, 422, posted, at_fields, others)
    except Conflict as refused:  # e.g. claimed by another meanwhile: keep what was typed
        return _render(request, user, task_id, status_for(refused), posted, {}, [refused.message])
    if form.get("back"):
        return redirect_saying(request, _back(form, task_id), "The task was completed.")
    return redirect(f"{task_url(task_id)}/done")


@router.get("/app/tasks/{task_id}/done")
def done(request: Request, task_id: TaskId) -> Response:
    """The task is done: where the episode stands now, and the next task one keystroke away."""
    user = require_user(request)
    engine = engine_of(request)
    task = visible_or_404(engine, user.principal, task_id)
    if task.state != "completed":
        return redirect(task_url(task_id))
    try:
        episode = get_instance_view(engine, task.instance_id, user.principal)
    except NotFound:
        episode = None
    if episode is not None:
        record_access(engine, user.principal, "instance", task.instance_id, client=client_of(request))
    # The next task: the first row of the user's worklist, in the view and sort they chose there.
    listing = worklist_page(engine, user.principal, worklist_choice(engine, user.principal))
    return page(request, "task_done.html", user=user, task=task, episode=episode,
                next_task=listing.rows[0].task if listing.rows else None)


# Last: the paths above (draft, complete) match before this one.
@router.post("/app/tasks/{task_id}/{action}")
async def small_action(request: Request, task_id: TaskId, action: str) -> Response:
    """A small action form: the use case, then back; a refused value is shown beside the action's field."""
    user = require_user(request)
    if action not in SMALL_ACTIONS:
        raise NotFound(f"there is no task action '{action[:50]}'")
    rule, use_case, arguments = SMALL_ACTIONS[action]
    form = await _form(request, user)
    engine = engine_of(request)
    try:
        done = use_case(engine, user.principal, task_id, *arguments(form))
    except ValidationFailed as refused:  # said beside the field at fault, what was typed kept
        at = next((p.field for p in refused.problems if p.field), None) or FIRST_FIELD.get(action, "")
        return _render(request, user, task_id, 422, action_errors={rule: _message(refused)},
                       action_fields={rule: at}, action_values={rule: form})
    return redirect_saying(request, _back(form, task_id), SAID[action](done, engine.time_context().tz))
