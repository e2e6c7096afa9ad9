"""Who a bearer token stands for, served from a short per-process cache.

Every API request is authenticated: reading the token, the user's groups and (for roles that may break
the glass) the running grants is two or three statements per request. The answer is kept for
`EngineConfig.principal_cache_seconds` (CAREPATH_PRINCIPAL_CACHE_SECONDS, 5 s by default) in a bounded LRU
of this process, never past the token's expiry, and not at all for a user with a running break-glass grant
(which may end at any time). A change made in this process (a token revoked, a user deactivated, their
groups or role changed, a grant given or ended) clears the cache when it commits: refused or served anew
at once here, and in the other processes within that many seconds.
"""

from __future__ import annotations

from datetime import timedelta

from ..application import CarePath
from ..errors import Unauthenticated
from ..identity import Principal, hash_token
from .break_glass import with_break_glass
from .users import token_principal


def principal_of_token(app: CarePath, token: str | None) -> Principal:
    """`users.authenticate`, then `break_glass.with_break_glass`, from the cache when it has them."""
    if not token:
        raise Unauthenticated("missing bearer token")
    seconds = app.config.principal_cache_seconds
    key, now = hash_token(token), app.now()
    cache = app.principals
    cached: Principal | None = cache.get(key, now) if seconds > 0 else None
    if cached is not None:
        return cached
    generation = cache.generation  # before the reads: a change committed meanwhile voids what they find
    principal, token_expires = token_principal(app, token)
    principal = with_break_glass(app, principal)
    if seconds > 0 and not principal.break_glass:
        until = now + timedelta(seconds=seconds)
        cache.put(key, principal, min(until, token_expires) if token_expires else until, generation)
    return principal
