"""The admin's pages: users (role, groups, active, last sign-in), adding one, a user's page (groups,
password, API tokens, deactivation) and the groups with their members.

Admins only, as for `/api/users`. Who may do what to a user, from which state, is the table USER_RULES
(engine/rules.py, docs/state-machine.md): a user's page offers a form only for the rows
`usecases.users.user_actions` allows, and says why a row whose condition refuses is not offered
(deactivating yourself or the last admin). Every change is the engine use case `/api/users` calls, in its
one transaction, recorded in the history with the signed-in admin as its actor. A refused change is
answered beside its form field (a name or group the engine refuses, a weak password) or as a message on
the user's page (409), never as a 500. A new API token is shown once, on the answer to the form that made it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Annotated
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import Response
from starlette.datastructures import FormData

from carepath.engine.errors import Conflict, Problem, ValidationFailed
from carepath.engine.identity import Role, require_role
from carepath.engine.rules import USER_RULES, check_role
from carepath.engine.usecases.passwords import MIN_PASSWORD_LENGTH, set_password
from carepath.engine.usecases.users import (
    MAX_TOKEN_DAYS,
    NAME_RULE,
    IssuedToken,
    create_user,
    deactivate_user,
    get_user,
    issue_token_with_expiry,
    list_groups,
    list_tokens,
    list_users,
    revoke_token,
    set_groups,
    user_actions,
)
from carepath.engine.usecases.web_sessions import last_sign_ins

from .cookies import WebUser, engine_of
from .flash import redirect_saying
from .pages import page, posted_form, require_user

router = APIRouter(include_in_schema=False)
USERS = "/app/admin/users"
UserName = Annotated[str, PathParam(min_length=1, max_length=200)]
TokenId = Annotated[int, PathParam(ge=1, le=2**31 - 1)]
ROLES = [role.value for role in Role]
GROUP_SEPARATORS = re.compile(r"[,\s]+")
MAX_GROUPS_FIELD = 5000


def _admin(request: Request) -> WebUser:
    """The signed-in admin; anyone else gets the 403 page (PermissionDenied), as from /api/users."""
    user = require_user(request)
    require_role(user.principal, action="Managing users")
    return user


def _zone(request: Request) -> ZoneInfo:
    return engine_of(request).time_context().tz


def _when(at: datetime | None, zone: ZoneInfo) -> str | None:
    return at.astimezone(zone).strftime("%a %d %b %Y %H:%M") if at else None


def _field_errors(exc: ValidationFailed, default_field: str) -> dict[str, str]:
    """The engine's refusal, per form field (its problems' fields, else the field the form is about)."""
    errors = {problem.field: problem.message for problem in exc.problems if problem.field}
    return errors or {default_field: exc.message}


def _groups(value: str) -> list[str]:
    return [g for g in GROUP_SEPARATORS.split(value[:MAX_GROUPS_FIELD]) if g]


def _days(value: str) -> int | None:
    """The token's lifetime in days: empty for no expiry; the engine bounds it (1 to MAX_TOKEN_DAYS)."""
    value = value.strip()
    if not value:
        return None
    if not value.isdigit() or len(value) > 6:
        message = f"the days a token lasts is a whole number from 1 to {MAX_TOKEN_DAYS}, or empty for no expiry"
        raise ValidationFailed(message, [Problem(message, field="expires_in_days")])
    return int(value)


def _text(form: FormData, name: str, limit: int = 1000) -> str:
    value = form.get(name)
    return value[:limit] if isinstance(value, str) else ""


# --- the users' list and adding a user -------------------------------------------------------------------

@router.get(USERS)
def users(request: Request) -> Response:
    return _users_page(request, _admin(request), 200)


def _users_page(request: Request, user: WebUser, status: int, errors: dict[str, str] | None = None,
                entered: dict[str, str] | None = None, issued: IssuedToken | None = None,
                added: str | None = None) -> Response:
    engine, zone = engine_of(request), _zone(request)
    last = last_sign_ins(engine, user.principal)
    rows = [(u, _when(last.get(u.name), zone)) for u in list_users(engine, user.principal)]
    return page(request, "admin_users.html", status, user=user, rows=rows, roles=ROLES, errors=errors or {},
                entered=entered or {"role": Role.COORDINATOR.value}, zone=zone.key, issued=issued,
                issued_expiry=_when(issued.expires_at, zone) if issued else None, token_for=added,
                name_rule=NAME_RULE, max_days=MAX_TOKEN_DAYS)


@router.post(USERS)
async def add_user_submit(request: Request) -> Response:
    user = _admin(request)
    form = await posted_form(request, user)
    entered = {key: _text(form, key, limit) for key, limit in
               (("name", 200), ("role", 40), ("groups", MAX_GROUPS_FIELD), ("expires_in_days", 20))}
    check_role(USER_RULES["add"], user.principal)
    try:
        issued = create_user(engine_of(request), entered["name"], entered["role"], _groups(entered["groups"]),
                             actor=user.principal.name, expires_in_days=_days(entered["expires_in_days"]))
    except ValidationFailed as refused:
        return _users_page(request, user, 422, _field_errors(refused, "role"), entered)
    except Conflict as exists:
        return _users_page(request, user, 409, {"name": exists.message}, entered)
    return _users_page(request, user, 201, issued=issued, added=entered["name"].strip())


# --- one user ----------------------------------------------------------------------------------------------

NOTICES = {"groups": "The groups were saved.", "password": "The password was set.",
           "deactivated": "The user was deactivated: their tokens are revoked and their open tasks released.",
           "revoked": "The token was revoked."}


@router.get(USERS + "/{name}")
def one_user(request: Request, name: UserName) -> Response:
    """A user's page (after a change, its status line says what was saved: api/web/flash.py)."""
    return _user_page(request, _admin(request), name, 200)


def _user_page(request: Request, user: WebUser, name: str, status: int, *, errors: dict[str, str] | None = None,
               message: str | None = None, issued: IssuedToken | None = None,
               groups_entered: str | None = None) -> Response:
    engine, zone = engine_of(request), _zone(request)
    shown = get_user(engine, user.principal, name)
    tokens = [{**t, "created": _when(t["created_at"], zone), "expires": _when(t["expires_at"], zone),
               "revoked": _when(t["revoked_at"], zone)} for t in list_tokens(engine, user.principal, name)]
    last = last_sign_ins(engine, user.principal, name).get(name)
    actions, refusals = user_actions(engine, user.principal, name)
    return page(request, "admin_user.html", status, user=user, shown=shown, tokens=tokens, zone=zone.key,
                last_sign_in=_when(last, zone), added=_when(shown.created_at, zone), errors=errors or {},
                message=message,
                issued=issued, issued_expiry=_when(issued.expires_at, zone) if issued else None, token_for=shown.name,
                groups_entered=" ".join(shown.groups) if groups_entered is None else groups_entered,
                actions=actions, refusals=refusals,
                min_password=MIN_PASSWORD_LENGTH, max_days=MAX_TOKEN_DAYS, name_rule=NAME_RULE)


def _user_url(name: str) -> str:
    return f"{USERS}/{quote(name, safe='@.-_')}"


Change = Callable[[WebUser, FormData], IssuedToken | None]


async def _change_user(request: Request, name: str, field: str, change: Change, done: str) -> Response:
    """Apply one change posted from a user's page: refused input is shown at `field` (422), a refusal of the
    engine's rules as a message (409); a new token is shown on the answer, anything else redirects back."""
    user = _admin(request)
    form = await posted_form(request, user)
    try:
        issued = change(user, form)
    except ValidationFailed as refused:
        entered = _text(form, "groups", MAX_GROUPS_FIELD) if field == "groups" else None
        return _user_page(request, user, name, 422, errors=_field_errors(refused, field), groups_entered=entered)
    except Conflict as refused:  # deactivating yourself or the last admin; a deactivated or integration user
        return _user_page(request, user, name, 409, message=refused.message)
    if issued is not None:
        return _user_page(request, user, name, 201, issued=issued)
    return redirect_saying(request, _user_url(name), NOTICES[done])


@router.post(USERS + "/{name}/groups")
async def groups_submit(request: Request, name: UserName) -> Response:
    def change(user: WebUser, form: FormData) -> None:
        set_groups(engine_of(request), user.principal, name, _groups(_text(form, "groups", MAX_GROUPS_FIELD)))
    return await _change_user(request, name, "groups", change, "groups")


@router.post(USERS + "/{name}/password")
async def password_submit(request: Request, name: UserName) -> Response:
    def change(user: WebUser, form: FormData) -> None:
        check_role(USER_RULES["set_password"], user.principal)
        set_password(engine_of(request), name, _text(form, "password", 2000), actor=user.principal.name)
    return await _change_user(request, name, "password", change, "password")


@router.post(USERS + "/{name}/deactivate")
async def deactivate_submit(request: Request, name: UserName) -> Response:
    def change(user: WebUser, form: FormData) -> None:
        if _text(form, "confirm", 200).strip() != name:  # one click must not end someone's access
            raise ValidationFailed(f"type the user name '{name}' to confirm the deactivation")
        deactivate_user(engine_of(request), user.principal, name)
    return await _change_user(request, name, "confirm", change, "deactivated")


@router.post(USERS + "/{name}/tokens")
async def token_submit(request: Request, name: UserName) -> Response:
    def change(user: WebUser, form: FormData) -> IssuedToken:
        check_role(USER_RULES["issue_token"], user.principal)
        return issue_token_with_expiry(engine_of(request), name, actor=user.principal.name,
                                       expires_in_days=_days(_text(form, "expires_in_days", 20)))
    return await _change_user(request, name, "expires_in_days", change, "token")


@router.post(USERS + "/{name}/tokens/{token_id}/revoke")
async def revoke_submit(request: Request, name: UserName, token_id: TokenId) -> Response:
    user = _admin(request)
    await posted_form(request, user)
    revoke_token(engine_of(request), user.principal, name, token_id)
    return redirect_saying(request, _user_url(name), NOTICES["revoked"])


# --- groups ------------------------------------------------------------------------------------------------

@router.get("/app/admin/groups")
def groups(request: Request) -> Response:
    user = _admin(request)
    members: dict[str, list[str]] = list_groups(engine_of(request), user.principal)
    return page(request, "admin_groups.html", user=user, groups=members)
