"""Web sign-in through an OpenID Connect provider: the authorization code flow with PKCE (S256).

`start` gives the provider's authorization URL (its endpoints from the discovery document
`<issuer>/.well-known/openid-configuration`, cached) and the flow's secrets: `state` (ties the answer to
this browser), `nonce` (ties the ID token to this sign-in) and the PKCE `verifier`, whose S256 hash is sent
as the `code_challenge`. The web route keeps them in a short-lived HttpOnly cookie. `finish` exchanges the
code at the token endpoint with the verifier and checks the ID token (signature by the provider's JWKS,
issuer, audience = our client id, expiry, nonce), then maps its claims to a CarePath user exactly as a
bearer token's (api/oidc.py).

Failures are `SignInFailed` with the status of the page to answer: 400 (the flow's state is missing,
wrong or too old), 401 (the provider's answer cannot be trusted), 403 (the provider refused, or the user
may not use the web app), 502 (the provider cannot be reached or answers nonsense).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus, urlencode

import httpx

from carepath.engine.errors import Unauthenticated
from carepath.engine.identity import Principal

from .oidc import OidcVerifier

DISCOVERY_SECONDS = 3600
FLOW_SECONDS = 600  # from leaving for the provider to coming back


class SignInFailed(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class Flow:
    """One sign-in under way: what the browser keeps between leaving and coming back."""
    state: str
    nonce: str
    verifier: str
    back_to: str
    started: float  # seconds since the epoch

    def as_dict(self) -> dict[str, Any]:
        return {"s": self.state, "n": self.nonce, "v": self.verifier, "b": self.back_to, "t": self.started}

    @classmethod
    def from_dict(cls, data: Any) -> Flow:
        if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in "snvb") \
                or not isinstance(data.get("t"), int | float):
            raise SignInFailed(400, "The sign-in could not be matched to this browser; start again.")
        return cls(data["s"], data["n"], data["v"], data["b"], float(data["t"]))


def code_challenge(verifier: str) -> str:
    """PKCE S256: base64url(SHA-256(verifier)) without padding (RFC 7636 section 4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class OidcClient:
    """Who we are at the provider."""
    issuer: str
    client_id: str
    client_secret: str | None
    scopes: str
    timeout: float


class OidcSignIn:
    def __init__(self, client: OidcClient, verifier_options: dict[str, Any],
                 transport: httpx.BaseTransport | None = None) -> None:
        self.client = client
        self._verifier_options = verifier_options  # jwks, jwks_url, claim names (as the bearer path's)
        self._transport = transport
        self._lock = threading.Lock()
        self._document: dict[str, Any] | None = None
        self._fetched = 0.0
        self._verifier: OidcVerifier | None = None

    def start(self, redirect_uri: str, back_to: str, now: float) -> tuple[str, Flow]:
        """The provider's authorization URL to send the browser to, and the flow to keep."""
        flow = Flow(secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(64), back_to, now)
        query = {"response_type": "code", "client_id": self.client.client_id, "redirect_uri": redirect_uri,
                 "scope": self.client.scopes, "state": flow.state, "nonce": flow.nonce,
                 "code_challenge": code_challenge(flow.verifier), "code_challenge_method": "S256"}
        endpoint = self._endpoint("authorization_endpoint")
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(query)}", flow

    def finish(self, flow: Flow, state: str, code: str, redirect_uri: str, now: float) -> Principal:
        """The user the provider signed in, after every check; SignInFailed otherwise."""
        if not secrets.compare_digest(flow.state, state):
            raise SignInFailed(400, "The sign-in's state does not match this browser's (a link from elsewhere, "
                                    "or an old tab): start again.")
        if now - flow.started > FLOW_SECONDS:
            raise SignInFailed(400, "The sign-in took too long: start again.")
        id_token = self._exchange(code, redirect_uri, flow.verifier)
        verifier = self._id_token_verifier()
        try:
            claims = verifier.claims(id_token)
            if not isinstance(claims.get("nonce"), str) or not secrets.compare_digest(claims["nonce"], flow.nonce):
                raise Unauthenticated("the ID token was not issued for this sign-in (nonce)")
            return verifier.map_claims(claims)
        except Unauthenticated as refused:
            raise SignInFailed(401, f"The identity provider's answer was refused: {refused.message}") from None

    def _exchange(self, code: str, redirect_uri: str, code_verifier: str) -> str:
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                "code_verifier": code_verifier, "client_id": self.client.client_id}
        secret = self.client.client_secret  # sent as client_secret_basic, the default method
        # RFC 6749 section 2.3.1: both form-urlencoded before they are joined for HTTP Basic.
        auth: Any = httpx.BasicAuth(quote_plus(self.client.client_id), quote_plus(secret)) if secret \
            else httpx.USE_CLIENT_DEFAULT
        try:
            with self._http() as http:
                answer = http.post(self._endpoint("token_endpoint"), data=form, auth=auth,
                                   headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise SignInFailed(502, _unreachable(exc)) from None
        body = _json(answer)
        if answer.status_code in (400, 401):
            reason = str(body.get("error") or answer.status_code)[:100]
            raise SignInFailed(401, f"The identity provider refused to complete the sign-in ({reason}): "
                                    "start again.")
        if answer.status_code != 200 or not isinstance(body.get("id_token"), str):
            raise SignInFailed(502, f"The identity provider answered the sign-in with {answer.status_code} "
                                    "and no ID token.")
        return str(body["id_token"])

    def _http(self) -> httpx.Client:
        return httpx.Client(timeout=self.client.timeout, transport=self._transport, follow_redirects=False)

    def _endpoint(self, name: str) -> str:
        value = self._discovery().get(name)
        if not isinstance(value, str) or not value.startswith(("https://", "http://")):
            raise SignInFailed(502, f"The identity provider's discovery document has no {name}.")
        return value

    def _discovery(self) -> dict[str, Any]:
        """The provider's discovery document, fetched at most once an hour (again sooner after a failure)."""
        with self._lock:
            if self._document is not None and time.monotonic() - self._fetched < DISCOVERY_SECONDS:
                return self._document
            url = f"{self.client.issuer.rstrip('/')}/.well-known/openid-configuration"
            try:
                with self._http() as http:
                    answer = http.get(url)
            except httpx.HTTPError as exc:
                raise SignInFailed(502, _unreachable(exc)) from None
            document = _json(answer)
            if answer.status_code != 200 or str(document.get("issuer", "")).rstrip("/") != \
                    self.client.issuer.rstrip("/"):
                raise SignInFailed(502, "The identity provider's discovery document could not be read, or names "
                                        "another issuer.")
            self._document, self._fetched, self._verifier = document, time.monotonic(), None
            return document

    def _id_token_verifier(self) -> OidcVerifier:
        """ID tokens are checked like bearer tokens, with our client id as their audience, and as their
        authorized party (`azp`) when they name one or have several audiences."""
        document = self._discovery()
        with self._lock:
            if self._verifier is None:
                options = dict(self._verifier_options)
                if not options.get("jwks") and not options.get("jwks_url"):
                    options["jwks_url"] = document.get("jwks_uri")
                self._verifier = OidcVerifier(self.client.issuer, self.client.client_id,
                                              authorized_party=self.client.client_id, **options)
            return self._verifier


def _unreachable(exc: httpx.HTTPError) -> str:
    return (f"The identity provider could not be reached ({type(exc).__name__}). Try again in a few minutes, "
            "or sign in with your CarePath password if you have one.")


def _json(answer: httpx.Response) -> dict[str, Any]:
    try:
        body = answer.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
