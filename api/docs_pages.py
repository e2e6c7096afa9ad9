"""/docs and /redoc work without internet: their scripts, styles and icon come from the package
(`fastapi-offline`, see api/app.py), and a Content-Security-Policy keeps the pages from loading anything
from elsewhere (Redoc's sidebar shows a logo from cdn.redoc.ly; the browser now never asks for it)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

DOCS_PAGES = ("/docs", "/redoc")
# Swagger UI starts from an inline script and both set inline styles; Redoc searches in a blob: worker.
DOCS_POLICY = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
               "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'")


class DocsContentPolicy:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in DOCS_PAGES:
            await self.app(scope, receive, send)
            return

        async def with_policy(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"content-security-policy", DOCS_POLICY.encode())]}
            await send(message)

        await self.app(scope, receive, with_policy)
