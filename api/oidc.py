"""Optional OpenID Connect: bearer JWTs signed by the identity provider's keys (JWKS).

With `CAREPATH_OIDC_ISSUER` and `CAREPATH_OIDC_AUDIENCE` set, a bearer token that is a JWT is
verified (signature, issuer, audience, expiry) and mapped to a user by claims: the user name
(`preferred_username`), a CarePath role found in the roles claim (`roles`, or a dotted path such as
`realm_access.roles`) and groups (`groups`). API tokens keep working. Keys come from
`CAREPATH_OIDC_JWKS_URL` (fetched and cached), from inline `CAREPATH_OIDC_JWKS`, or from the
issuer's discovery document.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx
import jwt

from carepath.engine.errors import Unauthenticated
from carepath.engine.identity import Principal, Role

ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]
# When a token carries several CarePath roles, the most privileged applies.
ROLE_ORDER = [Role.ADMIN, Role.SUPERVISOR, Role.CLINICAL_LEAD, Role.COORDINATOR, Role.AUDITOR, Role.INTEGRATION]


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("ey")


class OidcVerifier:
    def __init__(self, issuer: str, audience: str, *, jwks: str | None = None, jwks_url: str | None = None,
                 username_claim: str = "preferred_username", roles_claim: str = "roles",
                 groups_claim: str = "groups", authorized_party: str | None = None) -> None:
        self.issuer, self.audience = issuer.rstrip("/"), audience
        self.authorized_party = authorized_party  # an ID token's: our client id (OpenID Connect Core 3.1.3.7)
        self.username_claim, self.roles_claim, self.groups_claim = username_claim, roles_claim, groups_claim
        self._keys = jwt.PyJWKSet.from_dict(json.loads(jwks)) if jwks else None
        self._jwks_url = jwks_url
        self._client: jwt.PyJWKClient | None = None
        self._lock = threading.Lock()

    def principal(self, token: str) -> Principal:
        return self.map_claims(self.claims(token))

    def claims(self, token: str) -> dict[str, Any]:
        """The token's claims once its signature, issuer, audience and expiry are checked."""
        try:
            claims = jwt.decode(token, self._signing_key(token), algorithms=ALGORITHMS, audience=self.audience,
                                issuer=self.issuer, leeway=30, options={"require": ["exp", "iss", "aud"]})
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the identity provider's token has expired") from None
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"the identity provider's token is not valid here: {exc}") from None
        self._check_authorized_party(claims)
        return dict(claims)

    def _check_authorized_party(self, claims: dict[str, Any]) -> None:
        """A token for several audiences, or naming the party it was issued to (`azp`), must name us: else
        it was issued to another client that also lists us as an audience."""
        if self.authorized_party is None:
            return
        audiences = _as_list(claims.get("aud"))
        if (len(audiences) > 1 or "azp" in claims) and claims.get("azp") != self.authorized_party:
            named = f"azp names {str(claims['azp'])[:100]!r}" if "azp" in claims else "several audiences, no azp"
            raise Unauthenticated(f"the token was not issued to this client, {self.authorized_party!r} ({named})")

    def _signing_key(self, token: str) -> Any:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"malformed token: {exc}") from None
        if self._keys is not None:
            for key in self._keys.keys:
                if kid is None or key.key_id == kid:
                    return key.key
            raise Unauthenticated("the token was signed with a key the identity provider does not publish")
        try:
            return self._jwks_client().get_signing_key_from_jwt(token).key
        except (jwt.PyJWKClientError, httpx.HTTPError) as exc:
            raise Unauthenticated(f"the identity provider's keys could not be read: {exc}") from None

    def _jwks_client(self) -> jwt.PyJWKClient:
        with self._lock:
            if self._client is None:
                url = self._jwks_url or self._discover()
                self._client = jwt.PyJWKClient(url, cache_keys=True, lifespan=3600, timeout=10)
            return self._client

    def _discover(self) -> str:
        document = httpx.get(f"{self.issuer}/.well-known/openid-configuration", timeout=10).json()
        return str(document["jwks_uri"])

    def map_claims(self, claims: dict[str, Any]) -> Principal:
        """The CarePath user a token's claims name: user name, the most privileged CarePath role, groups."""
        name = claims.get(self.username_claim) or claims.get("sub")
        if not isinstance(name, str) or not name:
            raise Unauthenticated(f"the token has no '{self.username_claim}' claim")
        roles = {str(r) for r in _as_list(_claim(claims, self.roles_claim))}
        role = next((r for r in ROLE_ORDER if r.value in roles), None)
        if role is None:
            raise Unauthenticated(f"the token carries no CarePath role in '{self.roles_claim}' "
                                  f"(one of {', '.join(r.value for r in Role)})")
        groups = frozenset(str(g).strip("/") for g in _as_list(_claim(claims, self.groups_claim)))
        return Principal(name, role, groups)


def _claim(claims: dict[str, Any], path: str) -> Any:
    value: Any = claims
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]
