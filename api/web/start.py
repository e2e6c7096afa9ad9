"""Starting an episode by hand: `/app/pathways/{key}/start`, the pathway's start form.

The form is the pathway's declared start data (engine/definitions/_start_data.py: a start event's form or
the sidecar's `start_data`), drawn by the same renderer as a task's form (api/web/forms.py), with the
episode's patient id and business key above it. The start goes through the API's use case
(`start_instance`): the same roles, the same check of the data, each problem shown at its field.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, Response

from carepath.engine.application import CarePath
from carepath.engine.errors import NotFound, ValidationFailed
from carepath.engine.forms import form_problems, intake_declaration
from carepath.engine.queries import pathway_versions
from carepath.engine.rules import INSTANCE_RULES, check_role
from carepath.engine.usecases.instances import start_instance
from carepath.engine.views import PathwayVersionView

from .cookies import WebUser, engine_of
from .forms import FormField, Posted, field_errors, form_fields, typed_values
from .pages import page, posted_form, redirect, require_user, text_fields

router = APIRouter(include_in_schema=False)
PathwayKey = Annotated[str, PathParam(min_length=1, max_length=255)]
EPISODE_FIELDS = ("patient_id", "business_key")
INTAKE_HINT = "Can be left empty: it can be collected later by the intake task."


def startable(engine: CarePath, key: str) -> PathwayVersionView:
    """The version a start without a version number runs: the latest one not retired."""
    with engine.db.read() as session:
        live = [v for v in pathway_versions(session, key) if not v.retired]
    if not live:
        raise NotFound(f"pathway '{key}' is not deployed")
    return live[-1]


@router.get("/app/pathways/{key}/start")
def start_form(request: Request, key: PathwayKey) -> Response:
    user = require_user(request)
    check_role(INSTANCE_RULES["start"], user.principal)
    return _render(request, user, startable(engine_of(request), key))


def _render(request: Request, user: WebUser, pathway: PathwayVersionView, status: int = 200,
            posted: Posted | None = None, episode: dict[str, str] | None = None,
            errors: dict[str, str] | None = None, others: list[str] | None = None) -> HTMLResponse:
    zone = engine_of(request).time_context().tz
    errors = errors or {}
    fields = _marked_for_intake(pathway, form_fields(pathway.start_data, {}, zone, errors,
                                                     posted.raw if posted else None))
    episode = episode or {}
    keys = [FormField("episode-patient_id", "Patient id", "text", episode.get("patient_id", ""),
                      "The patient's identifier in your records.", error=errors.get("episode-patient_id")),
            FormField("episode-business_key", "Episode key", "text", episode.get("business_key", ""),
                      "What identifies this episode, e.g. the encounter number; one running episode per key.",
                      required=True, error=errors.get("episode-business_key"))]
    return page(request, "start.html", status, user=user, pathway=pathway, keys=keys, fields=fields,
                others=others or [])


@router.post("/app/pathways/{key}/start")
async def start_submit(request: Request, key: PathwayKey) -> Response:
    user = require_user(request)
    form = text_fields(await posted_form(request, user))
    engine = engine_of(request)
    pathway = startable(engine, key)
    episode = {name: form.get(f"episode-{name}", "").strip() for name in EPISODE_FIELDS}
    posted = typed_values(pathway.start_data, form, engine.time_context().tz)
    names = set((pathway.start_data or {}).get("properties") or {})
    if posted.errors:
        problems = ValidationFailed("", form_problems(pathway.start_data, posted.values))
        at_fields, others = field_errors(problems, names - set(posted.errors))
        return _render(request, user, pathway, 422, posted, episode, {**at_fields, **posted.errors},
                       [m for m in others if m])
    try:
        view = start_instance(engine, user.principal, key, business_key=episode["business_key"],
                              patient_id=episode["patient_id"] or None, data=posted.values,
                              version=pathway.version)
    except ValidationFailed as refused:  # with every start data problem too, not only the first refusal's
        every = ValidationFailed(refused.message, [*refused.problems,
                                                   *form_problems(pathway.start_data, posted.values)])
        return _render(request, user, pathway, 422, posted, episode, *_located(every, names))
    return redirect(f"/app/episodes/{view.id}")


def _marked_for_intake(pathway: PathwayVersionView, fields: list[FormField]) -> list[FormField]:
    """The fields the pathway's intake task collects (its sidecar's "intake") may be left empty: say so."""
    later = set((intake_declaration(pathway.start_data) or {}).get("fields") or [])
    return [replace(f, hint=" ".join(filter(None, [f.hint, INTAKE_HINT]))) if f.name in later else f for f in fields]


def _located(refused: ValidationFailed, names: set[str]) -> tuple[dict[str, str], list[str]]:
    """The engine's problems at the start data's fields, or at the episode's own."""
    at_fields, others = field_errors(refused, names | set(EPISODE_FIELDS))
    for name in EPISODE_FIELDS:
        if name in at_fields and name not in names:
            at_fields["episode-" + name] = at_fields.pop(name)
    return at_fields, others


