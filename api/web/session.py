"""The idle-logoff warning's two small endpoints (used by static/session.js).

- `GET /app/session` answers `{"remaining_seconds": n}`: how long until this browser's session is signed
  out for inactivity. Asking does not count as activity, so a tab left open does not keep itself signed
  in; a request from another tab does count, and the answer shows it.
- `POST /app/session/keepalive` (the "Stay signed in" button; the form's CSRF token) starts the idle time
  again, whatever the once-a-minute rule for `last_seen_at` says, and answers 204.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from carepath.engine.usecases.web_sessions import keep_alive, seconds_left

from .cookies import SESSION_COOKIE, engine_of, idle_limit
from .pages import posted_form, require_user

router = APIRouter(include_in_schema=False)


@router.get("/app/session")
def remaining(request: Request) -> Response:
    left = seconds_left(engine_of(request), request.cookies.get(SESSION_COOKIE), idle_limit(request))
    return JSONResponse({"remaining_seconds": round(left, 1)}, headers={"Cache-Control": "no-store"})


@router.post("/app/session/keepalive")
async def keepalive(request: Request) -> Response:
    user = require_user(request)
    await posted_form(request, user)
    keep_alive(engine_of(request), user.session_id)
    return Response(status_code=204)
