"""Moving an older version's running episodes to the newest version, from the pathway's pages: the plan for
each episode (what maps to what, what cannot be kept, why one cannot move), then a button that moves them.

Both go through `usecases.migrations.migrate_episodes`, which checks the role (`rules.INSTANCE_RULES["migrate"]`):
a dry run draws the page, the button runs it for real, a page of episodes at a time.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from carepath.engine.errors import Conflict
from carepath.engine.queries import pathway_versions
from carepath.engine.rules import INSTANCE_RULES, check_role
from carepath.engine.usecases.migrations import DEFAULT_PAGE, MigrationReport, migrate_episodes

from ..params import VersionPath
from .cookies import WebUser, engine_of
from .flash import redirect_saying
from .pages import page, posted_form, require_user
from .pathways import PATHWAYS, URLS, Key, version_url

router = APIRouter(include_in_schema=False)


def move_url(key: str, version: int) -> str:
    return f"{version_url(key, version)}/move"


def _newest(request: Request, key: str) -> int:
    with engine_of(request).db.read() as session:
        current = [v.version for v in pathway_versions(session, key) if not v.retired]
    if not current:
        raise Conflict(f"every version of pathway '{key}' is retired: there is no version to move episodes to")
    return current[-1]


def _plan(request: Request, user: WebUser, key: str, version: int, after: str | None) -> MigrationReport | None:
    newest = _newest(request, key)
    if newest == version:
        return None
    return migrate_episodes(engine_of(request), user.principal, key, from_version=version, to_version=newest,
                            dry_run=True, limit=DEFAULT_PAGE, after=after)


@router.get(PATHWAYS + "/{key}/versions/{version}/move")
def move_plan(request: Request, key: Key, version: VersionPath, after: str | None = None) -> Response:
    user = require_user(request)
    check_role(INSTANCE_RULES["migrate"], user.principal)
    report = _plan(request, user, key, version, after)
    movable = sum(e.outcome == "can_move" for e in report.episodes) if report else 0
    return page(request, "pathway_move.html", user=user, key=key, version=version, report=report,
                movable=movable, after=after or "", **URLS)


@router.post(PATHWAYS + "/{key}/versions/{version}/move")
async def move_submit(request: Request, key: Key, version: VersionPath) -> Response:
    user = require_user(request)
    form = await posted_form(request, user)
    raw = str(form.get("to_version") or "")
    # The version the plan was drawn for: a newer one deployed since is not moved to unseen.
    to_version = int(raw) if raw.isdigit() and len(raw) < 10 else _newest(request, key)
    after = str(form.get("after") or "") or None  # the page of the plan shown: those episodes move
    report = migrate_episodes(engine_of(request), user.principal, key, from_version=version,
                              to_version=to_version, dry_run=False, limit=DEFAULT_PAGE, after=after)
    moved = sum(e.outcome == "moved" for e in report.episodes)
    stayed = len(report.episodes) - moved
    said = f"Moved {moved} {'episode' if moved == 1 else 'episodes'} from version {version} to version {to_version}."
    if stayed:
        verb = "stays" if stayed == 1 else "stay"
        said += f" {stayed} could not move and {verb} on version {version}; the plan says why."
    back = move_url(key, version) + (f"?after={quote(after, safe='')}" if after else "")
    return redirect_saying(request, back, said)
