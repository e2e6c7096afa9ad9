"""Signing what CarePath sends to a partner organization, and checking its endpoint; pure functions.

A partner's signing secret is derived, never stored: HMAC-SHA256 of the partner's id and a random salt under
the server's partner key (CAREPATH_PARTNER_SECRET_KEY). Rotating the secret draws a new salt. A delivery is
signed over "<unix time>.<body>", so a receiver can refuse an old one replayed (docs/partners.md):

    X-CarePath-Signature: t=1765000000,v1=<hex HMAC-SHA256(secret, "1765000000." + body)>
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
from datetime import datetime
from urllib.parse import urlsplit

from .errors import Conflict, Problem, ValidationFailed

SIGNATURE_HEADER = "X-CarePath-Signature"
MAX_URL = 1000


def new_salt() -> str:
    return secrets.token_hex(16)


def derive_secret(key: bytes | None, partner_id: str, salt: str) -> str:
    if not key:
        raise Conflict("partner signing secrets need CAREPATH_PARTNER_SECRET_KEY (a random value of at least 32 "
                       "characters, kept out of the database): set it and restart")
    digest = hmac.new(key, f"carepath partner secret\0{partner_id}\0{salt}".encode(), hashlib.sha256).digest()
    return "cps_" + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def fingerprint(secret: str) -> str:
    """Twelve hex digits an admin and the partner compare to know they hold the same secret."""
    return hashlib.sha256(secret.encode()).hexdigest()[:12]


def signature_header(secret: str, body: bytes, at: datetime) -> str:
    timestamp = int(at.timestamp())
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_signature(secret: str, body: bytes, header: str, now: datetime, tolerance_s: int = 300) -> bool:
    """What a receiver does (docs/partners.md shows it standalone): the MAC matches and the time is recent."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        timestamp = int(parts.get("t", ""))
    except ValueError:
        return False
    expected = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return abs(now.timestamp() - timestamp) <= tolerance_s and hmac.compare_digest(expected, parts.get("v1", ""))


def checked_endpoint(url: str, *, allow_http_loopback: bool) -> str:
    """An endpoint the registry accepts: https with a host and no credentials in it; plain http only to a
    loopback address, and only when the setting allows it (tests, a developer's machine)."""
    url = url.strip()
    problem = _endpoint_problem(url, allow_http_loopback)
    if problem:
        raise ValidationFailed(f"endpoint_url: {problem}", [Problem(problem, field="endpoint_url")])
    return url


def _endpoint_problem(url: str, allow_http_loopback: bool) -> str | None:
    if len(url) > MAX_URL:
        return f"the endpoint URL is longer than {MAX_URL} characters"
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return "the endpoint is not a URL"
    if not host:
        return "the endpoint URL has no host"
    if parts.username or parts.password:
        return "the endpoint URL must not carry a user name or password (the signature authenticates CarePath)"
    if parts.fragment:
        return "the endpoint URL must not have a #fragment"
    if parts.scheme == "https":
        return None
    if parts.scheme == "http" and allow_http_loopback and _is_loopback(host):
        return None
    if parts.scheme == "http" and _is_loopback(host):
        return ("the endpoint must be https (plain http to a loopback address only with "
                "CAREPATH_PARTNER_ALLOW_HTTP_LOOPBACK=true)")
    return "the endpoint must be an https URL"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
