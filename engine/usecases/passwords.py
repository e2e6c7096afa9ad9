"""Web sign-in passwords: set by an admin (`carepath user password NAME`), stored as an Argon2id hash."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select

from ..application import CarePath
from ..errors import Problem, ValidationFailed
from ..identity import SYSTEM, Principal, Role
from ..persistence.tables import User, UserGroup
from ..persistence.unit_of_work import UnitOfWork
from ..rules import USER_RULES, UserFacts, check
from .users import user_row

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1000
# argon2-cffi's defaults follow RFC 9106's second recommended option (Argon2id, 64 MiB, 3 passes).
_hasher = PasswordHasher()
_unknown_user_hash: str | None = None


def set_password(app: CarePath, name: str, password: str, *, actor: str = "system") -> None:
    """Give an active user a (new) password (rule `set_password`; who may is checked by the caller, the
    command line is the operator's); sessions already signed in stay."""
    check_password_strength(password)
    with UnitOfWork(app) as uow:
        user = user_row(uow, name)
        check(USER_RULES["set_password"], UserFacts.of(user), SYSTEM)
        user.password_hash = _hasher.hash(password)
        uow.record("password_set", actor, data={"user": name})
        uow.commit()


def check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH or len(password) > MAX_PASSWORD_LENGTH:
        message = f"a password is {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters"
        raise ValidationFailed(message, [Problem(message, field="password")])


def verified_user(app: CarePath, name: str, password: str) -> Principal | None:
    """The active user with this name and password, else None. A name with no user (or no password) costs
    one Argon2 verification too, so the answer's time does not tell whether the account exists."""
    with app.db.read() as session:
        user = session.scalars(select(User).where(User.name == name, User.active.is_(True))).first()
        groups = frozenset(session.scalars(select(UserGroup.group_name).where(UserGroup.user_id == user.id))) \
            if user is not None else frozenset()
    stored = user.password_hash if user is not None else None
    if not _matches(stored or _dummy_hash(), password) or user is None or stored is None:
        return None
    if user.role == Role.INTEGRATION.value:  # a password set before integration accounts were refused one
        return None
    return Principal(user.name, Role(user.role), groups)


def _matches(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def _dummy_hash() -> str:
    global _unknown_user_hash
    if _unknown_user_hash is None:
        _unknown_user_hash = _hasher.hash("no user has this password, it only spends the time")
    return _unknown_user_hash
