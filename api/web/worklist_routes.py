"""/app/worklist: the task worker's worklist page, its saved choice, and the fragment it polls.

- `GET /app/worklist[?view=&sort=&page=]`: the page; a view or sort given is checked, saved for the user
  (engine/usecases/worklist_settings.py) and shown; a bad one answers 422 with the saved view and a message.
- `POST /app/worklist/search` (`q`, or `clear`): the patient id or business key searched, saved; the term
  never enters an address (see docs/ui.md). `POST /app/worklist/reset`: back to the default.
- `GET /app/worklist/rows?view=&sort=&page=&cursor=`: the results again when anything they show moved;
  204 when no task changed anywhere since the cursor (one indexed lookup). Not the user's activity: it
  does not hold off the automatic logoff.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Request, Response
from fastapi import Query as QueryParam

from carepath.engine.errors import Problem, ValidationFailed
from carepath.engine.usecases.worklist_settings import (
    WorklistChoice,
    checked_choice,
    reset_worklist_choice,
    save_worklist_choice,
    worklist_choice,
)
from carepath.engine.worklist import MAX_SEARCH, SORTS, VIEWS

from .assets import templates
from .cookies import WebUser, engine_of, settings_of, signed_in_user
from .pages import SIGN_IN, WORKLIST, page, posted_form, redirect, require_user, text_fields
from .worklist import MAX_PAGE, current_stamp, worklist_page

router = APIRouter(include_in_schema=False)
Choice = Annotated[str | None, QueryParam(max_length=40)]
PageNumber = Annotated[int, QueryParam(ge=1, le=MAX_PAGE)]
CURSOR = re.compile(r"(\d{1,19})\.([0-9a-f]{16})(\.v)?")


@router.get(WORKLIST)
def worklist(request: Request, view: Choice = None, sort: Choice = None,
             q: Annotated[str | None, QueryParam(max_length=MAX_SEARCH)] = None, page: PageNumber = 1) -> Response:
    user = require_user(request)
    if view is None and sort is None and q is None:  # the commonest: the saved choice, read with the rows
        return _worklist_page(request, user, None, page)
    engine = engine_of(request)
    saved = worklist_choice(engine, user.principal)
    try:
        chosen = checked_choice(view or saved.view, sort or saved.sort, saved.search if q is None else q)
    except ValidationFailed as refused:
        return _worklist_page(request, user, saved, 1, 422, refused.problems)
    if chosen != saved:
        save_worklist_choice(engine, user.principal, chosen)
    if q is not None:  # a search given in a link: saved, and taken out of the address
        return redirect(f"{WORKLIST}?view={chosen.view}&sort={chosen.sort}")
    return _worklist_page(request, user, chosen, page)


@router.post(f"{WORKLIST}/search")
async def search(request: Request) -> Response:
    user = require_user(request)
    form = text_fields(await posted_form(request, user))
    engine = engine_of(request)
    saved = worklist_choice(engine, user.principal)
    try:
        chosen = checked_choice(saved.view, saved.sort, "" if "clear" in form else form.get("q", ""))
    except ValidationFailed as refused:
        return _worklist_page(request, user, saved, 1, 422, refused.problems, typed=form.get("q", "")[:300])
    save_worklist_choice(engine, user.principal, chosen)
    return redirect(WORKLIST)


@router.post(f"{WORKLIST}/reset")
async def reset(request: Request) -> Response:
    user = require_user(request)
    await posted_form(request, user)
    reset_worklist_choice(engine_of(request), user.principal)
    return redirect(WORKLIST)


def _worklist_page(request: Request, user: WebUser, choice: WorklistChoice | None, page_number: int,
                   status: int = 200, problems: list[Problem] | None = None, typed: str | None = None) -> Response:
    drawn = worklist_page(engine_of(request), user.principal, choice, page_number)
    choice = drawn.choice
    errors = {p.field: p.message for p in problems or []}
    return page(request, "worklist.html", status, user=user, choice=choice, drawn=drawn, views=VIEWS,
                sorts={key: label for key, (_, label) in SORTS.items()}, problems=problems or [], errors=errors,
                typed=choice.search if typed is None else typed, cursor=drawn.cursor + ".v",
                poll_seconds=settings_of(request).web_worklist_poll_seconds)


@router.get(f"{WORKLIST}/rows")
def rows(request: Request, view: Choice = None, sort: Choice = None, page: PageNumber = 1,
         cursor: Annotated[str, QueryParam(max_length=60)] = "") -> Response:
    """The results of the page that polls, when what they show changed; see the module's docstring. A cursor
    marked `.v` (just drawn, or something moved) is checked against the rows once more: a change whose
    transaction took an earlier history number but committed later is seen on the next poll."""
    user = signed_in_user(request, touch=False)
    if user is None:  # signed out meanwhile: the whole page goes to sign-in (htmx follows HX-Redirect)
        return Response(status_code=204, headers={"HX-Redirect": SIGN_IN})
    engine = engine_of(request)
    parsed = CURSOR.fullmatch(cursor)
    stamp, shown, verify = (int(parsed[1]), parsed[2], bool(parsed[3])) if parsed else (-1, "", True)
    if not verify and current_stamp(engine) == stamp:
        return Response(status_code=204)
    saved = worklist_choice(engine, user.principal)
    choice = checked_choice(view or saved.view, sort or saved.sort, saved.search)
    drawn = worklist_page(engine, user.principal, choice, page)
    drawn_stamp, fingerprint = drawn.cursor.split(".")
    next_cursor = drawn.cursor + (".v" if int(drawn_stamp) != stamp else "")
    context = {"drawn": drawn, "choice": choice, "views": VIEWS, "cursor": next_cursor}
    if fingerprint == shown:  # nothing shown changed: only the cursor moves on
        return templates.TemplateResponse(request, "worklist_cursor.html", context,
                                          headers={"HX-Reswap": "none", "Cache-Control": "no-store"})
    return templates.TemplateResponse(request, "worklist_results.html", {**context, "updated": True},
                                      headers={"Cache-Control": "no-store"})

