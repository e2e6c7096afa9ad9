"""Users, groups and API tokens (admins manage them; every change is in the history)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..application import CarePath
from ..errors import Conflict, NotFound, Problem, Unauthenticated, ValidationFailed
from ..identity import SYSTEM, Principal, Role, hash_token, new_token, require_role
from ..model import OPEN_TASK_STATES
from ..persistence.tables import ApiToken, Task, User, UserGroup
from ..persistence.unit_of_work import UnitOfWork
from ..rules import TASK_RULES, USER_RULES, UserFacts, allowed_actions, check, check_role, is_noop, may_take, refusal
from .transitions import set_task_field, task_facts

MAX_TOKEN_DAYS = 3650
T = TypeVar("T")


@dataclass(frozen=True)
class UserView:
    name: str
    role: str
    active: bool
    groups: list[str]
    created_at: datetime


@dataclass(frozen=True)
class IssuedToken:
    """A new API token: its text (shown once; only its hash is stored), its number and when it expires."""
    token: str
    id: int
    expires_at: datetime | None


def add_user(app: CarePath, name: str, role: str, groups: Iterable[str] = (), *, actor: str = "system",
             expires_in_days: int | None = None) -> str:
    """Create a user and return a new API token for it (shown once; only its hash is stored)."""
    return create_user(app, name, role, groups, actor=actor, expires_in_days=expires_in_days).token


def create_user(app: CarePath, name: str, role: str, groups: Iterable[str] = (), *, actor: str = "system",
                expires_in_days: int | None = None) -> IssuedToken:
    """`add_user`, answering the token with its number and expiry."""
    name = _checked_name((name or "").strip(), "user")
    role_value = _role(role)
    groups = _clean_groups(groups)
    with UnitOfWork(app) as uow:
        if uow.session.scalars(select(User).where(User.name == name)).first() is not None:
            raise Conflict(f"user '{name}' already exists")
        user = User(name=name, role=role_value.value, active=True, created_at=app.now())
        uow.session.add(user)
        uow.session.flush()
        uow.session.add_all([UserGroup(user_id=user.id, group_name=g) for g in groups])
        token = _add_token(uow, user, expires_in_days)
        uow.record("user_added", actor, data={"user": name, "role": role_value.value, "groups": groups})
        uow.commit()
    return token


def issue_token(app: CarePath, name: str, *, actor: str = "system", expires_in_days: int | None = None) -> str:
    """A new API token for an existing user (earlier tokens keep working until revoked or expired)."""
    return issue_token_with_expiry(app, name, actor=actor, expires_in_days=expires_in_days).token


def issue_token_with_expiry(app: CarePath, name: str, *, actor: str = "system",
                            expires_in_days: int | None = None) -> IssuedToken:
    """`issue_token`, answering the token with its number and expiry. Who may is checked by the caller
    (`check_role(USER_RULES["issue_token"], ...)`; the command line is the operator's); the user's state here."""
    with UnitOfWork(app) as uow:
        user = user_row(uow, name)
        check(USER_RULES["issue_token"], UserFacts.of(user), SYSTEM)
        token = _add_token(uow, user, expires_in_days)
        uow.record("token_issued", actor, data={"user": name, "expires_in_days": expires_in_days})
        uow.commit()
    return token


def revoke_token(app: CarePath, principal: Principal, name: str, token_id: int) -> None:
    rule = USER_RULES["revoke_token"]
    check_role(rule, principal)
    with UnitOfWork(app) as uow:
        user = user_row(uow, name)
        check(rule, UserFacts.of(user), principal)
        token = uow.session.get(ApiToken, token_id)
        if token is None or token.user_id != user.id:
            raise NotFound(f"user '{name}' has no token {token_id}")
        if token.revoked_at is None:
            token.revoked_at = app.now()
            uow.record("token_revoked", principal.name, data={"user": name, "token_id": token_id})
            uow.after_commit(app.principals.clear)  # refused from now on in this process
        uow.commit()


def list_tokens(app: CarePath, principal: Principal, name: str) -> list[dict[str, Any]]:
    require_role(principal, action="Listing tokens")
    with UnitOfWork(app) as uow:
        user = user_row(uow, name)
        rows = uow.session.scalars(select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id))
        return [{"id": t.id, "created_at": t.created_at, "expires_at": t.expires_at, "revoked_at": t.revoked_at}
                for t in rows]


def set_groups(app: CarePath, principal: Principal, name: str, groups: Iterable[str]) -> UserView:
    """Replace a user's group memberships; open tasks follow at once (candidates are groups)."""
    rule = USER_RULES["set_groups"]
    check_role(rule, principal)
    wanted = _clean_groups(groups)
    with UnitOfWork(app) as uow:
        user = user_row(uow, name)
        check(rule, UserFacts.of(user), principal)
        current = set(uow.session.scalars(select(UserGroup.group_name).where(UserGroup.user_id == user.id)))
        for group in current - set(wanted):
            uow.session.delete(uow.session.get(UserGroup, (user.id, group)))
        uow.session.add_all([UserGroup(user_id=user.id, group_name=g) for g in wanted if g not in current])
        uow.record("user_groups_changed", principal.name,
                   data={"user": name, "field": "groups", "old": sorted(current), "new": wanted})
        uow.after_commit(app.principals.clear)
        uow.commit()
    return get_user(app, principal, name)


def deactivate_user(app: CarePath, principal: Principal, name: str) -> UserView:
    """Revoke the user's tokens and hand their open tasks back to whoever delegated them, else to their
    groups' queues (see `_release_tasks_of`)."""
    rule = USER_RULES["deactivate"]
    check_role(rule, principal)
    with UnitOfWork(app) as uow:
        user = user_row(uow, name)
        facts = UserFacts.of(user, lambda: _active_admins(uow))
        check(rule, facts, principal)
        if not is_noop(rule, facts, principal):
            user.active = False
            uow.session.execute(update(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
                                .values(revoked_at=app.now()))
            _release_tasks_of(uow, principal, name)
            uow.record("user_deactivated", principal.name, data={"user": name})
            uow.after_commit(app.principals.clear)
        uow.commit()
    return get_user(app, principal, name)


def _release_tasks_of(uow: UnitOfWork, principal: Principal, name: str) -> None:
    """Each open task the user holds goes back to whoever delegated it to them, else to its queue; a task
    they delegated comes back to nobody (its delegate keeps it). Under the task locks, one row each."""
    rule = TASK_RULES["release"]
    tasks = uow.session.scalars(select(Task).where(Task.state.in_(OPEN_TASK_STATES),
                                                   (Task.assignee == name) | (Task.owner == name))
                                .order_by(Task.id).with_for_update())
    for task in tasks:
        check(rule, task_facts(uow.session, task), principal)
        owner = task.owner if task.owner != name else None
        if task.owner is not None:
            set_task_field(uow, rule, task, None, principal.name, field="owner", reason="user deactivated")
        if task.assignee == name:
            set_task_field(uow, rule, task, owner, principal.name, reason="user deactivated")


def user_actions(app: CarePath, principal: Principal, name: str) -> tuple[list[str], dict[str, str]]:
    """What the user may do to the account now (rules.allowed_actions over USER_RULES), and why not for the
    rows whose role and state allow it but a condition refuses (a page says so instead of offering it)."""
    with app.db.read() as session:
        row = session.scalars(select(User).where(User.name == name)).first()
        if row is None:
            raise NotFound(f"there is no user '{name}'")
        facts = UserFacts.of(row, lambda: frozenset(session.scalars(select(User.name).where(
            User.role == Role.ADMIN.value, User.active.is_(True)))))
        actions = allowed_actions(facts, principal)
        refused = {}
        for action, rule in USER_RULES.items():
            if action not in actions and may_take(rule, principal) and facts.state in rule.from_states:
                found = refusal(rule, facts, principal)
                if found is not None:
                    refused[action] = found.message
    return actions, refused


def get_user(app: CarePath, principal: Principal, name: str) -> UserView:
    require_role(principal, action="Reading users")
    with UnitOfWork(app) as uow:
        return _view(uow, user_row(uow, name))


def list_users(app: CarePath, principal: Principal) -> list[UserView]:
    require_role(principal, action="Reading users")
    with UnitOfWork(app) as uow:
        return [_view(uow, user) for user in uow.session.scalars(select(User).order_by(User.name))]


def list_groups(app: CarePath, principal: Principal) -> dict[str, list[str]]:
    require_role(principal, action="Reading groups")
    with app.db.read() as session:
        rows = session.execute(select(UserGroup.group_name, User.name).join(User, User.id == UserGroup.user_id)
                               .order_by(UserGroup.group_name, User.name)).all()
    groups: dict[str, list[str]] = {}
    for group, member in rows:
        groups.setdefault(group, []).append(member)
    return groups


def authenticate(app: CarePath, token: str | None) -> Principal:
    return token_principal(app, token)[0]


def token_principal(app: CarePath, token: str | None) -> tuple[Principal, datetime | None]:
    """Who an API token stands for, and when the token expires (None: never); Unauthenticated for a
    missing, unknown, revoked or expired token or a deactivated user."""
    if not token:
        raise Unauthenticated("missing bearer token")
    with app.db.read() as session:
        row = session.execute(select(User, ApiToken.expires_at).join(ApiToken, ApiToken.user_id == User.id).where(
            ApiToken.token_hash == hash_token(token), ApiToken.revoked_at.is_(None), User.active.is_(True))).first()
        if row is None:
            raise Unauthenticated("invalid or revoked token")
        user, expires_at = row
        if expires_at is not None and expires_at <= app.now():
            raise Unauthenticated("the token has expired; ask an admin for a new one")
        groups = frozenset(session.scalars(select(UserGroup.group_name).where(UserGroup.user_id == user.id)))
    return Principal(user.name, Role(user.role), groups), expires_at


def known_groups(app: CarePath) -> set[str]:
    with app.db.read() as session:
        return set(session.scalars(select(UserGroup.group_name).distinct()))


def _role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise ValidationFailed(f"unknown role '{role}'; use one of {', '.join(r.value for r in Role)}") from None


def _clean_groups(groups: Iterable[str]) -> list[str]:
    return sorted({_checked_name(g.strip(), "group") for g in groups if isinstance(g, str) and g.strip()})


# A name is a path segment of the API (/api/users/{name}) and a key of task audiences (group:<name>), so
# nothing that a URL or a key would read differently: letters (any script), digits, `.`, `_`, `-`, `@`.
NAME = re.compile(r"[^\W_][\w.@-]{0,99}")
NAME_RULE = "1 to 100 letters, digits, '.', '_', '-' or '@', starting with a letter or digit"


def _checked_name(name: str, what: str) -> str:
    if not NAME.fullmatch(name):
        message = f"{what} name {name!r} is not allowed: a {what} name is {NAME_RULE}"
        raise ValidationFailed(message, [Problem(message, field="name" if what == "user" else "groups")])
    return name


def _active_admins(uow: UnitOfWork) -> frozenset[str]:
    """Someone must be left to manage users (rule `deactivate`). The active admins' rows are locked for the
    transaction, so two admins deactivating each other at the same moment are serialized and the second
    sees the first's change."""
    return frozenset(uow.session.scalars(select(User.name).where(User.role == Role.ADMIN.value,
                                                                 User.active.is_(True))
                                         .order_by(User.id).with_for_update()))


def _add_token(uow: UnitOfWork, user: User, expires_in_days: int | None) -> IssuedToken:
    if expires_in_days is not None and not 1 <= expires_in_days <= MAX_TOKEN_DAYS:
        message = f"a token lasts 1 to {MAX_TOKEN_DAYS} days"
        raise ValidationFailed(message, [Problem(message, field="expires_in_days")])
    token = new_token()
    expires = uow.app.now() + timedelta(days=expires_in_days) if expires_in_days else None
    row = ApiToken(user_id=user.id, token_hash=hash_token(token), created_at=uow.app.now(), expires_at=expires)
    uow.session.add(row)
    uow.session.flush()
    return IssuedToken(token, row.id, expires)


def user_row(uow: UnitOfWork, name: str) -> User:
    """The user with this name; NotFound when there is none."""
    user = uow.session.scalars(select(User).where(User.name == name)).first()
    if user is None:
        raise NotFound(f"there is no user '{name}'")
    return user


def _view(uow: UnitOfWork, user: User) -> UserView:
    groups = sorted(uow.session.scalars(select(UserGroup.group_name).where(UserGroup.user_id == user.id)))
    return UserView(user.name, user.role, user.active, groups, user.created_at)


def sync_provider_user(uow: UnitOfWork, principal: Principal, provider: str,
                       roles_from_provider: bool = True) -> User:
    """The local record of a user the identity provider vouched for, made from the provider's claims at
    their first sign-in. With `roles_from_provider` (CAREPATH_OIDC_ROLES_FROM_PROVIDER, the default) the
    provider is the source of truth: a later sign-in brings role and groups in line with its claims, each
    change recorded; without it, they are the local record's, which admins change. Inside the caller's
    transaction. A user deactivated here stays refused whatever the provider says."""
    name = _checked_name(principal.name, "user")
    user = uow.session.scalars(select(User).where(User.name == name).with_for_update()).first()
    # A provider's group that is no CarePath group name (a space, a slash inside) cannot be a lane's group:
    # it is left out rather than refusing the sign-in.
    groups = provider_groups(principal)
    if user is None:
        user = User(name=name, role=principal.role.value, active=True, created_at=uow.app.now())
        uow.session.add(user)
        uow.session.flush()
        uow.session.add_all([UserGroup(user_id=user.id, group_name=g) for g in groups])
        uow.record("user_added", name, data={"user": name, "role": user.role, "groups": groups, "by": provider})
        return user
    if not user.active:
        raise Unauthenticated(f"user '{name}' is deactivated")
    if not roles_from_provider:
        return user
    current = set(uow.session.scalars(select(UserGroup.group_name).where(UserGroup.user_id == user.id)))
    if user.role != principal.role.value or current != set(groups):
        uow.after_commit(uow.app.principals.clear)  # served with the new role and groups from now on
    if user.role != principal.role.value:
        uow.record("user_role_changed", name, data={"user": name, "field": "role", "old": user.role,
                                                    "new": principal.role.value, "by": provider})
        user.role = principal.role.value
    if current != set(groups):
        for group in current - set(groups):
            uow.session.delete(uow.session.get(UserGroup, (user.id, group)))
        uow.session.add_all([UserGroup(user_id=user.id, group_name=g) for g in groups if g not in current])
        uow.record("user_groups_changed", name, data={"user": name, "field": "groups", "old": sorted(current),
                                                      "new": groups, "by": provider})
    return user


def provider_groups(principal: Principal) -> list[str]:
    return sorted({g for g in principal.groups if NAME.fullmatch(g)})


def local_principal(session: Session, user: User) -> Principal:
    groups = frozenset(session.scalars(select(UserGroup.group_name).where(UserGroup.user_id == user.id)))
    return Principal(user.name, Role(user.role), groups)


def with_provider_user(app: CarePath, claimed: Principal, provider: str, roles_from_provider: bool,
                       act: Callable[[UnitOfWork, User, Principal], T]) -> T:
    """One transaction: the provider's user made or synced (`sync_provider_user`), then `act` with the
    user as CarePath now sees them. The same new user's first sign-in twice at once: one made the record,
    the other is tried again and finds it."""
    for attempt in (1, 2):
        try:
            with UnitOfWork(app) as uow:
                user = sync_provider_user(uow, claimed, provider, roles_from_provider)
                acting = claimed if roles_from_provider else local_principal(uow.session, user)
                result = act(uow, user, acting)
                uow.commit()
                return result
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def provider_principal(app: CarePath, claimed: Principal, provider: str, roles_from_provider: bool) -> Principal:
    """Who a bearer token from the identity provider acts as. A user deactivated here is refused. With
    `roles_from_provider` the token's claims, as they say; a local record they no longer match is brought
    in line (and the change recorded), a user with no record stays without one. Without it, the local
    record's role and groups, the record made from the claims at the first use."""
    with app.db.read() as session:
        user = session.scalars(select(User).where(User.name == claimed.name)).first()
        local = local_principal(session, user) if user is not None else None
    if user is not None and not user.active:
        raise Unauthenticated(f"user '{claimed.name}' is deactivated")
    if local is not None and not roles_from_provider:
        return local
    if roles_from_provider and (local is None or (local.role, sorted(local.groups)) == (
            claimed.role, provider_groups(claimed))):
        return claimed
    try:
        return with_provider_user(app, claimed, provider, roles_from_provider, lambda uow, row, acting: acting)
    except ValidationFailed as refused:
        raise Unauthenticated(f"the identity provider's user cannot be a CarePath user: {refused.message}") from None
