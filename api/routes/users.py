"""/api/users and /api/groups: user, membership and token management (admins only)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from carepath.engine.rules import USER_RULES, check_role
from carepath.engine.usecases.users import (
    add_user,
    deactivate_user,
    get_user,
    issue_token,
    list_groups,
    list_tokens,
    list_users,
    revoke_token,
    set_groups,
)

from ..deps import CurrentUser, EngineDep
from ..params import IdPath
from ..schemas import BODY_ERRORS, ERROR_RESPONSES, GroupsIn, NewTokenOut, TokenIn, TokenOut, UserIn, UserOut, errors

router = APIRouter(tags=["users"], responses=ERROR_RESPONSES)


@router.get("/api/users", response_model=list[UserOut])
def users(engine: EngineDep, user: CurrentUser) -> list[UserOut]:
    return [UserOut.model_validate(u) for u in list_users(engine, user)]


@router.post("/api/users", response_model=NewTokenOut, status_code=201, responses=errors(409, *BODY_ERRORS))
def create(body: UserIn, engine: EngineDep, user: CurrentUser) -> NewTokenOut:
    check_role(USER_RULES["add"], user)
    token = add_user(engine, body.name, body.role, body.groups, actor=user.name,
                     expires_in_days=body.expires_in_days)
    return NewTokenOut(user=UserOut.model_validate(get_user(engine, user, body.name.strip())), token=token)


@router.get("/api/users/{name}", response_model=UserOut, responses=errors(404, 422))
def one(name: str, engine: EngineDep, user: CurrentUser) -> UserOut:
    return UserOut.model_validate(get_user(engine, user, name))


@router.put("/api/users/{name}/groups", response_model=UserOut, responses=errors(404, *BODY_ERRORS))
def groups(name: str, body: GroupsIn, engine: EngineDep, user: CurrentUser) -> UserOut:
    return UserOut.model_validate(set_groups(engine, user, name, body.groups))


@router.post("/api/users/{name}/deactivate", response_model=UserOut, responses=errors(404, 409, 422))
def deactivate(name: str, engine: EngineDep, user: CurrentUser) -> UserOut:
    return UserOut.model_validate(deactivate_user(engine, user, name))


@router.get("/api/users/{name}/tokens", response_model=list[TokenOut], responses=errors(404, 422))
def tokens(name: str, engine: EngineDep, user: CurrentUser) -> list[TokenOut]:
    return [TokenOut.model_validate(t) for t in list_tokens(engine, user, name)]


@router.post("/api/users/{name}/tokens", response_model=NewTokenOut, status_code=201,
             responses=errors(404, 409, *BODY_ERRORS))
def new_token(name: str, body: TokenIn, engine: EngineDep, user: CurrentUser) -> NewTokenOut:
    check_role(USER_RULES["issue_token"], user)
    token = issue_token(engine, name, actor=user.name, expires_in_days=body.expires_in_days)
    return NewTokenOut(user=UserOut.model_validate(get_user(engine, user, name)), token=token)


@router.delete("/api/users/{name}/tokens/{token_id}", status_code=204, responses=errors(404, 422))
def revoke(name: str, token_id: IdPath, engine: EngineDep, user: CurrentUser) -> Response:
    revoke_token(engine, user, name, token_id)
    return Response(status_code=204)


@router.get("/api/groups", response_model=dict[str, list[str]])
def groups_list(engine: EngineDep, user: CurrentUser) -> dict[str, list[str]]:
    return list_groups(engine, user)
