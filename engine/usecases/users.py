"""Users and API tokens."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select

from ..application import CarePath
from ..errors import Conflict, NotFound, Unauthenticated, ValidationFailed
from ..identity import Principal, Role, hash_token, new_token
from ..persistence.tables import ApiToken, User, UserGroup
from ..persistence.unit_of_work import UnitOfWork


def add_user(app: CarePath, name: str, role: str, groups: Iterable[str] = ()) -> str:
    """Create a user and return a new API token for it (shown once; only its hash is stored)."""
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise ValidationFailed("a user name of 1 to 200 characters is required")
    try:
        role_value = Role(role)
    except ValueError:
        raise ValidationFailed(f"unknown role '{role}'; use one of {', '.join(r.value for r in Role)}") from None
    token = new_token()
    with UnitOfWork(app) as uow:
        if uow.session.scalars(select(User).where(User.name == name)).first() is not None:
            raise Conflict(f"user '{name}' already exists")
        user = User(name=name, role=role_value.value, active=True, created_at=app.now())
        uow.session.add(user)
        uow.session.flush()
        for group in sorted({g.strip() for g in groups if g.strip()}):
            uow.session.add(UserGroup(user_id=user.id, group_name=group))
        uow.session.add(ApiToken(user_id=user.id, token_hash=hash_token(token), created_at=app.now()))
        uow.record("user_added", "system", data={"user": name, "role": role_value.value, "groups": sorted(groups)})
        uow.commit()
    return token


def issue_token(app: CarePath, name: str) -> str:
    """A new API token for an existing user (earlier tokens keep working until revoked)."""
    token = new_token()
    with UnitOfWork(app) as uow:
        user = uow.session.scalars(select(User).where(User.name == name)).first()
        if user is None:
            raise NotFound(f"there is no user '{name}'")
        if not user.active:
            raise Conflict(f"user '{name}' is deactivated")
        uow.session.add(ApiToken(user_id=user.id, token_hash=hash_token(token), created_at=app.now()))
        uow.record("token_issued", "system", data={"user": name})
        uow.commit()
    return token


def authenticate(app: CarePath, token: str | None) -> Principal:
    if not token:
        raise Unauthenticated("missing bearer token")
    with app.db.read() as session:
        row = session.execute(select(User).join(ApiToken, ApiToken.user_id == User.id).where(
            ApiToken.token_hash == hash_token(token), ApiToken.revoked_at.is_(None), User.active.is_(True))).first()
        if row is None:
            raise Unauthenticated("invalid or revoked token")
        user = row[0]
        groups = frozenset(session.scalars(select(UserGroup.group_name).where(UserGroup.user_id == user.id)))
    return Principal(user.name, Role(user.role), groups)


def known_groups(app: CarePath) -> set[str]:
    with app.db.read() as session:
        return set(session.scalars(select(UserGroup.group_name).distinct()))
