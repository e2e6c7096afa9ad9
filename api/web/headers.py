"""Security headers on the web app's pages and static files (not on the JSON API, nor on /docs and /redoc,
which carry their own policy: api/docs_pages.py).

The policy allows scripts and styles from CarePath itself only: no inline script, no `eval`, no inline
style. htmx is configured to match in templates/base.html (no eval, no script tags in swapped content, no
injected indicator style). A route may send a policy of its own (`policy_allowing_styles`): the printable
episode report is the API's self-contained page, whose fixed style blocks are allowed by their hashes.
Pages are never cached (they show patient data); static files are, for a year, since their URLs change
with their content (api/web/assets.py).
"""

from __future__ import annotations

import base64
import hashlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from carepath.engine.render import STYLE

from .assets import STATIC_PREFIX

CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                           "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'")
# A diagram (engine/render.py) opened on its own: nothing may run or load, and its one style sheet applies
# (by its hash; the page policy's style-src 'self' would leave it unstyled, shapes filled black).
DIAGRAM_POLICY = ("default-src 'none'; style-src 'sha256-"
                  + base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
                  + "'; frame-ancestors 'none'")


def policy_allowing_styles(*blocks: str) -> str:
    """The page policy, also allowing these exact inline style blocks (by their SHA-256, CSP level 2)."""
    hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(b.encode()).digest()).decode()}'" for b in blocks)
    return CONTENT_SECURITY_POLICY.replace("style-src 'self';", f"style-src 'self' {hashes};")


COMMON = {
    b"content-security-policy": CONTENT_SECURITY_POLICY.encode(),
    b"referrer-policy": b"same-origin",
    b"x-content-type-options": b"nosniff",
    b"x-frame-options": b"DENY",
}
CSP = b"content-security-policy"
PAGE_CACHE = b"no-store"
STATIC_CACHE = b"public, max-age=31536000, immutable"
PAGES = ("/", "/signin", "/signout", "/app", "/signin/oidc", "/signin/oidc/callback")


def _kind(path: str) -> str | None:
    if path == STATIC_PREFIX or path.startswith(STATIC_PREFIX + "/"):
        return "static"
    if path in PAGES or path.startswith("/app/"):
        return "page"
    return None


def _is_svg(message: Message) -> bool:
    return any(name.lower() == b"content-type" and value.startswith(b"image/svg+xml")
               for name, value in message.get("headers", []))


class WebPageHeaders:
    """Pure ASGI middleware: the headers above on every response of a web page or static file, errors
    included; a header of the same name set by the route is replaced, except a route's own policy."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = _kind(scope["path"]) if scope["type"] == "http" else None
        if kind is None:
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                cached = kind == "static" and message["status"] in (200, 304)
                added = {**COMMON, b"cache-control": STATIC_CACHE if cached else PAGE_CACHE}
                own = [value for name, value in message.get("headers", []) if name.lower() == CSP]
                if own and kind == "page":  # a route that sends its own policy (the report, a diagram)
                    added[CSP] = own[0]
                elif kind == "page" and _is_svg(message):
                    added[CSP] = DIAGRAM_POLICY.encode()
                kept = [(name, value) for name, value in message.get("headers", []) if name.lower() not in added]
                message = {**message, "headers": [*kept, *added.items()]}
            await send(message)

        await self.app(scope, receive, with_headers)
