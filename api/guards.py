"""Pure ASGI middleware that checks a request before any route sees it, and answers every error that
escapes the routes in the documented shape (`{"error", "message"}`).

- `ErrorResponses`: a domain error or an HTTP error raised outside a route is answered as inside one; any
  other exception is a `500` carrying an `error_id` that is also in the logged line. The exception is not
  re-raised (Starlette's ServerErrorMiddleware would, and uvicorn then drops the connection without
  `Connection: close`, so a client's next request on it fails).
- `BodyLimit`: counts the body's bytes as they arrive, so a chunked body is bounded as well as one with a
  `Content-Length`; beyond the limit `413` before the body is parsed. Deploy uploads (the API's and the web
  app's upload form) have their own limit.
- `QueryChecks`: an empty query value (`?instance=`) is the parameter left out; a NUL character in a query
  value or in a string of a JSON body (PostgreSQL refuses it in text) is a `422` naming the parameter.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from urllib.parse import parse_qsl, urlencode

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from carepath.engine.bounds import nul_field, nul_refused
from carepath.engine.errors import CarePathError

log = logging.getLogger("carepath.api")


class BodyTooLarge(HTTPException):
    """Raised from `receive`: an HTTPException, so FastAPI's body parsing passes it on to the handlers."""

    def __init__(self, limit: int) -> None:
        size = f"{limit // 1024 // 1024} MiB" if limit >= 4 * 1024 * 1024 else f"{limit // 1024} KiB"
        super().__init__(413, f"the request body is larger than {size}")


def logged(request: Request, exc: BaseException) -> str:
    """Logs an unexpected error with its traceback under a new id, and returns the id."""
    error_id = uuid.uuid4().hex[:12]
    log.error("unexpected error %s on %s %s", error_id, request.method, request.url.path, exc_info=exc)
    return error_id


def internal_error(request: Request, exc: BaseException) -> JSONResponse:
    error_id = logged(request, exc)
    return JSONResponse({"error": "InternalError", "error_id": error_id,
                         "message": f"an unexpected error occurred; it was logged with id {error_id}"},
                        status_code=500)


class ErrorResponses:
    def __init__(self, app: ASGIApp, respond: Callable[[Request, Exception], Response]) -> None:
        self.app, self.respond = app, respond

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            request = Request(scope)
            if started:  # the answer is half sent: only closing the connection can say it failed
                logged(request, exc)
                raise
            known = isinstance(exc, CarePathError | HTTPException)
            response = self.respond(request, exc) if known else internal_error(request, exc)
            await response(scope, receive, send)


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, upload_bytes: int, upload_paths: tuple[str, ...]) -> None:
        self.app, self.max_bytes, self.upload_bytes, self.upload_paths = app, max_bytes, upload_bytes, upload_paths

    def limit(self, scope: Scope) -> int:
        # multipart framing adds a little to the files themselves, whose total the deploy route checks
        upload = scope["method"] == "POST" and scope["path"].rstrip("/") in self.upload_paths
        return self.upload_bytes + 64 * 1024 if upload else self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit(scope)
        length = Headers(scope=scope).get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise BodyTooLarge(limit)
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLarge(limit)
            return message

        await self.app(scope, counted, send)


class QueryChecks:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"")
        if query:
            pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True, encoding="utf-8", errors="replace")
            for name, value in pairs:
                if "\x00" in name or "\x00" in value:
                    raise nul_refused(name.replace("\x00", "\\u0000"))
            if any(value == "" for _, value in pairs):
                scope = {**scope, "query_string": urlencode([(n, v) for n, v in pairs if v != ""]).encode()}
        if _is_json(scope):
            receive = await _checked_json_body(receive)
        await self.app(scope, receive, send)


def _is_json(scope: Scope) -> bool:
    content_type = Headers(scope=scope).get("content-type", "")
    return scope["method"] in ("POST", "PUT", "PATCH") and "json" in content_type.split(";")[0]


async def _checked_json_body(receive: Receive) -> Receive:
    """Reads the whole body (bounded by BodyLimit) and refuses a NUL character in any string or key of it;
    the app then reads the same messages."""
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body"):
            break
    body = b"".join(m.get("body", b"") for m in messages)
    if b"\\u0000" in body:
        try:
            field = nul_field(json.loads(body))
        except (ValueError, RecursionError):
            field = None  # not JSON (or too deep to read): the route answers that
        if field is not None:
            raise nul_refused(field)

    async def replay() -> Message:
        return messages.pop(0) if messages else await receive()

    return replay

