"""Web sign-in sessions, kept in the database so that any process serves any session.

The browser's cookie holds a random id; the table holds its SHA-256 only. A session ends when its user
signs out, when someone ends it (the user from another browser, or an admin), after `idle` without a
request (automatic logoff), or `MAX_SESSION` after sign-in whatever happens. `last_seen_at` is written at
most once every `TOUCH_EVERY`, not on every request. Sign-in, sign-out, a session ended by someone else
or by inactivity, and the start of a lockout are in the history; a failed sign-in alone is not: it is
counted in the database (engine/sign_in_throttle.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update

from ..application import CarePath
from ..errors import NotFound, Unauthenticated
from ..identity import SYSTEM, Principal, Role, hash_token, new_token, require_role
from ..persistence.tables import User, UserGroup, WebSession
from ..persistence.unit_of_work import UnitOfWork
from ..rules import USER_RULES, UserFacts, check, check_role
from ..sign_in_throttle import SignInThrottle
from .access import Client, client_data
from .basic_credentials import throttled_password_check
from .break_glass import with_grants
from .passwords import MAX_PASSWORD_LENGTH
from .users import with_provider_user

TOUCH_EVERY = timedelta(minutes=1)
MAX_SESSION = timedelta(hours=12)
MAX_NAME = 200
# The one answer to every refused sign-in: unknown user, wrong password, no password set, locked out.
SIGN_IN_REFUSED = "The user name or password is not right, or there were too many attempts. Try again in a while."


@dataclass(frozen=True)
class SignedIn:
    principal: Principal
    session_id: int
    token: str  # for the cookie; shown once, only its hash is stored


@dataclass(frozen=True)
class SessionView:
    id: int
    user: str
    created_at: datetime
    last_seen_at: datetime
    client_host: str | None
    user_agent: str | None


def sign_in(app: CarePath, throttle: SignInThrottle, name: str, password: str, client: Client) -> SignedIn:
    """A new session for the user with this name and password; Unauthenticated(SIGN_IN_REFUSED) otherwise."""
    name = name.strip()
    # No user name holds a NUL character (names are checked at creation), and PostgreSQL could not look it up.
    if not name or len(name) > MAX_NAME or "\x00" in name or len(password) > MAX_PASSWORD_LENGTH:
        raise Unauthenticated(SIGN_IN_REFUSED)
    principal = throttled_password_check(app, throttle, name, password, client)
    if principal is None:
        raise Unauthenticated(SIGN_IN_REFUSED)
    with UnitOfWork(app) as uow:
        user_id = uow.session.scalars(select(User.id).where(User.name == principal.name)).one()
        signed = _open_session(uow, principal, user_id, client, "password")
        uow.commit()
        return signed


def sign_in_from_provider(app: CarePath, principal: Principal, client: Client, provider: str = "oidc",
                          roles_from_provider: bool = True) -> SignedIn:
    """A new session for a user the identity provider has authenticated (its ID token checked by the caller,
    its claims mapped to `principal` as for a bearer token): the local record is made at the first sign-in
    and, with `roles_from_provider`, brought in line with the claims at every later one
    (users.sync_provider_user), and the session opened, in one transaction. An integration account or a
    user deactivated here is refused (Unauthenticated)."""
    def open_session(uow: UnitOfWork, user: User, acting: Principal) -> SignedIn:
        _refuse_integration(acting)  # the local record's role, when it is the one that counts
        return _open_session(uow, acting, user.id, client, provider)

    _refuse_integration(principal)  # before anything is written
    return with_provider_user(app, principal, provider, roles_from_provider, open_session)


def _refuse_integration(principal: Principal) -> None:
    if principal.role is Role.INTEGRATION:
        raise Unauthenticated(f"user '{principal.name}' is an integration account: a system calls the API with "
                              "a token, it does not sign in to the web app")


def _open_session(uow: UnitOfWork, principal: Principal, user_id: int, client: Client, method: str) -> SignedIn:
    now, token, agent = uow.app.now(), new_token(), client_data(client)
    row = WebSession(token_hash=hash_token(token), user_id=user_id, created_at=now, last_seen_at=now,
                     expires_at=now + MAX_SESSION, ended_at=None, client_host=(client.host or "")[:100] or None,
                     user_agent=agent["user_agent"])
    uow.session.add(row)
    uow.session.flush()
    uow.record("signed_in", principal.name, data={"user": principal.name, "session": row.id, "client": agent,
                                                  "method": method})
    return SignedIn(principal, row.id, token)


def last_sign_ins(app: CarePath, principal: Principal, name: str | None = None) -> dict[str, datetime]:
    """When each user (or the one named) last signed in to the web app; users who never did are absent.
    Admins only."""
    require_role(principal, action="Reading users")
    query = (select(User.name, func.max(WebSession.created_at)).join(WebSession, WebSession.user_id == User.id)
             .group_by(User.name))
    with app.db.read() as session:
        rows = session.execute(query if name is None else query.where(User.name == name)).all()
    last: dict[str, datetime] = {}
    for name, at in rows:
        last[name] = at
    return last


def session_user(app: CarePath, token: str | None, idle: timedelta,
                 touch: bool = True) -> tuple[Principal, int] | None:
    """The signed-in user of this cookie and the session's id, or None (no such session, ended, idle for
    `idle`, past its maximum, or the user deactivated). An idle session is ended here, once. Without
    `touch` the request does not count as activity (a page's automatic refresh)."""
    if not token:
        return None
    now = app.now()
    with app.db.read() as session:
        row = session.execute(select(WebSession, User).join(User, User.id == WebSession.user_id).where(
            WebSession.token_hash == hash_token(token), WebSession.ended_at.is_(None))).first()
        if row is None:
            return None
        web, user = row
        groups = frozenset(session.scalars(select(UserGroup.group_name).where(UserGroup.user_id == user.id)))
        principal = with_grants(session, Principal(user.name, Role(user.role), groups), now)
    if not user.active or now >= web.expires_at or now - web.last_seen_at >= idle:
        reason = "inactivity" if now - web.last_seen_at >= idle else "maximum session length" \
            if now >= web.expires_at else "user deactivated"
        _end(app, web.id, user.name, SYSTEM.name, "signed_out", reason)
        return None
    if touch and now - web.last_seen_at >= TOUCH_EVERY:
        keep_alive(app, web.id)
    return principal, web.id


def keep_alive(app: CarePath, session_id: int) -> None:
    """The session was active now ("Stay signed in"): its idle time starts again, whatever TOUCH_EVERY says."""
    with UnitOfWork(app) as uow:
        uow.session.execute(update(WebSession).where(WebSession.id == session_id, WebSession.ended_at.is_(None))
                            .values(last_seen_at=app.now()))
        uow.commit()


def seconds_left(app: CarePath, token: str | None, idle: timedelta) -> float:
    """Seconds until this cookie's session is signed out for inactivity (or reaches its maximum length),
    0 when it is not signed in. Asking does not count as activity and changes nothing: a page's script
    asks to learn whether another tab of the same browser was active."""
    if not token:
        return 0.0
    with app.db.read() as session:
        row = session.execute(select(WebSession.last_seen_at, WebSession.expires_at, User.active)
                              .join(User, User.id == WebSession.user_id)
                              .where(WebSession.token_hash == hash_token(token), WebSession.ended_at.is_(None))).first()
    if row is None or not row.active:
        return 0.0
    now = app.now()
    return max(0.0, min((row.last_seen_at + idle - now).total_seconds(), (row.expires_at - now).total_seconds()))


def sign_out(app: CarePath, principal: Principal, session_id: int) -> None:
    _end(app, session_id, principal.name, principal.name, "signed_out", "signed out")


def list_sessions(app: CarePath, principal: Principal, idle: timedelta) -> list[SessionView]:
    """The user's open sessions, newest first (an admin: everyone's)."""
    now = app.now()
    query = (select(WebSession, User.name).join(User, User.id == WebSession.user_id)
             .where(WebSession.ended_at.is_(None), WebSession.last_seen_at > now - idle, WebSession.expires_at > now)
             .order_by(WebSession.created_at.desc(), WebSession.id.desc()))
    if principal.role is not Role.ADMIN:
        query = query.where(User.name == principal.name)
    with app.db.read() as session:
        return [SessionView(web.id, name, web.created_at, web.last_seen_at, web.client_host, web.user_agent)
                for web, name in session.execute(query)]


def end_session(app: CarePath, principal: Principal, session_id: int) -> None:
    """End one of the user's own sessions (an admin: anyone's), rule `end_session`; NotFound for one they
    may not end."""
    rule = USER_RULES["end_session"]
    check_role(rule, principal)
    with app.db.read() as session:
        owner = session.scalar(select(User).join(WebSession, WebSession.user_id == User.id)
                               .where(WebSession.id == session_id, WebSession.ended_at.is_(None)))
    if owner is None:
        raise NotFound(f"there is no open session {session_id}")
    check(rule, UserFacts.of(owner, session=session_id), principal)
    _end(app, session_id, owner.name, principal.name, "session_ended", "ended by " + principal.name)


def _end(app: CarePath, session_id: int, user: str, actor: str, event: str, reason: str) -> None:
    """Mark the session ended; recorded only by the one change that ended it (two at once: one entry)."""
    with UnitOfWork(app) as uow:
        ended = uow.session.execute(update(WebSession).where(WebSession.id == session_id,
                                                             WebSession.ended_at.is_(None))
                                    .values(ended_at=app.now()))
        if ended.rowcount:  # type: ignore[attr-defined]
            uow.record(event, actor, data={"user": user, "session": session_id, "reason": reason})
        uow.commit()
