"""HTTP basic credentials (user name and secret) for clients that cannot send a bearer token, such as a
BPMN editor's deploy button: the secret is one of the user's API tokens or their password.

A token is tried first (one indexed read); a password is checked as a web sign-in checks it, slowed by
the same throttle, without opening a session. Every refusal has the same words, whatever was wrong.
"""

from __future__ import annotations

from ..application import CarePath
from ..errors import Unauthenticated
from ..identity import SYSTEM, Principal
from ..persistence.unit_of_work import UnitOfWork
from ..sign_in_throttle import SignInThrottle
from .access import Client, client_data
from .passwords import MAX_PASSWORD_LENGTH, verified_user
from .users import authenticate

MAX_NAME = 200
CREDENTIALS_REFUSED = ("The user name and API token or password are not right, or there were too many attempts. "
                       "Try again in a while.")


def basic_principal(app: CarePath, throttle: SignInThrottle, name: str, secret: str, client: Client) -> Principal:
    """The user named `name` whose API token or password is `secret`; Unauthenticated otherwise."""
    name = name.strip()
    if not name or not secret or len(name) > MAX_NAME or "\x00" in name + secret:
        raise Unauthenticated(CREDENTIALS_REFUSED)
    try:
        by_token = authenticate(app, secret)
    except Unauthenticated:
        by_token = None
    if by_token is not None:
        if by_token.name != name:  # someone else's token with this user's name: refused like a bad one
            raise Unauthenticated(CREDENTIALS_REFUSED)
        return by_token
    principal = throttled_password_check(app, throttle, name, secret, client)
    if principal is None:
        raise Unauthenticated(CREDENTIALS_REFUSED)
    return principal


def throttled_password_check(app: CarePath, throttle: SignInThrottle, name: str, password: str,
                             client: Client) -> Principal | None:
    """The active user with this name and password, or None: a failure is counted against the name and
    the address (and a lockout it starts is in the history); a locked name or address is refused unread."""
    now = app.now()
    keys = (f"user:{name.casefold()}", f"host:{client.host or '-'}")
    if len(password) > MAX_PASSWORD_LENGTH:
        return None
    with app.db.read() as session:  # before the password's hash: a locked key costs one indexed read
        if throttle.refused(session, keys, now):
            return None
    principal = verified_user(app, name, password)
    with UnitOfWork(app) as uow:
        if principal is None:
            for lockout in throttle.failed(uow.session, keys, now):
                uow.record("sign_in_locked", SYSTEM.name, data={
                    "key": lockout.key, "failures": lockout.failures, "until": lockout.until.isoformat(),
                    "client": client_data(client)})
        else:
            throttle.succeeded(uow.session, keys[0], now)
        uow.commit()
    return principal
