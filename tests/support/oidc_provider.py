"""A small OpenID Connect provider for tests, served by a real uvicorn on a loopback port: discovery, JWKS,
an authorization endpoint that signs the user in at once (answering the redirect with a code) and a token
endpoint that checks the PKCE verifier against the challenge it was given. Its keys are made by the test.
What it puts in the ID token (and with which key) the test sets on `FakeProvider`."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus, urlencode

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

CLIENT_ID, CLIENT_SECRET = "carepath-web", "s3cret:of the/client+%"  # RFC 6749 2.3.1 encodes it


def rsa_key(kid: str) -> tuple[Any, dict[str, Any]]:
    """A private key and its public JWK."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    return private, {**public, "kid": kid, "use": "sig", "alg": "RS256"}


@dataclass
class FakeProvider:
    signing: Any
    published: dict[str, Any]
    claims: dict[str, Any] = field(default_factory=lambda: {
        "preferred_username": "dr-ng", "realm_access": {"roles": ["offline_access", "supervisor"]},
        "groups": ["/care-coordinator"]})
    overrides: dict[str, Any] = field(default_factory=dict)  # replace iss, aud, exp, nonce ... in the ID token
    sign_with: Any = None  # another key than the published one
    token_error: str | None = None
    authorizations: list[dict[str, str]] = field(default_factory=list)
    exchanges: list[dict[str, str]] = field(default_factory=list)
    _codes: dict[str, dict[str, str]] = field(default_factory=dict)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/.well-known/openid-configuration", self._discovery),
                                 Route("/jwks", self._jwks), Route("/authorize", self._authorize),
                                 Route("/token", self._token, methods=["POST"])])

    async def _discovery(self, request: Request) -> Response:
        base = str(request.base_url).rstrip("/")
        return JSONResponse({"issuer": base, "authorization_endpoint": base + "/authorize",
                             "token_endpoint": base + "/token", "jwks_uri": base + "/jwks",
                             "code_challenge_methods_supported": ["S256"]})

    async def _jwks(self, request: Request) -> Response:
        return JSONResponse({"keys": [self.published]})

    async def _authorize(self, request: Request) -> Response:
        query = dict(request.query_params)
        self.authorizations.append(query)
        code = secrets.token_urlsafe(16)
        self._codes[code] = query
        back = {"code": code, "state": query["state"]}
        return RedirectResponse(f"{query['redirect_uri']}?{urlencode(back)}", status_code=302)

    async def _token(self, request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        self.exchanges.append({**form, "authorization": request.headers.get("authorization", "")})
        asked = self._codes.pop(form.get("code", ""), None)
        if self.token_error or asked is None or basic_auth(request.headers.get("authorization", "")) != (
                CLIENT_ID, CLIENT_SECRET) \
                or form.get("redirect_uri") != asked["redirect_uri"] \
                or s256(form.get("code_verifier", "")) != asked["code_challenge"]:
            return JSONResponse({"error": self.token_error or "invalid_grant"}, status_code=400)
        base = str(request.base_url).rstrip("/")
        claims = {"iss": base, "aud": CLIENT_ID, "sub": "u-1", "exp": int(time.time()) + 300,
                  "iat": int(time.time()), "nonce": asked["nonce"], **self.claims, **self.overrides}
        token = jwt.encode(claims, self.sign_with or self.signing, algorithm="RS256",
                           headers={"kid": self.published["kid"]})
        return JSONResponse({"id_token": token, "access_token": "opaque", "token_type": "Bearer"})


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def basic_auth(header: str) -> tuple[str, str] | None:
    """The client id and secret of an HTTP Basic header, each form-urldecoded (RFC 6749 section 2.3.1)."""
    if not header.startswith("Basic "):
        return None
    name, _, secret = base64.b64decode(header[6:]).decode().partition(":")
    return unquote_plus(name), unquote_plus(secret)
