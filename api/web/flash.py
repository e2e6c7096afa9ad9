"""The one-shot status message shown after an action page's redirect ("Assigned 'Call patient' to bob").

The action route answers `redirect_saying(request, url, message)`: a see-other carrying the message in a
short-lived cookie, signed with an HMAC keyed by the browser's session token (a message another site or
another session set is ignored). The next page drawn (`pages.page`) takes it, clears the cookie and shows it
in base.html's status region (role=status, polite), as text: Jinja escapes it like any other value.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from .cookies import SESSION_COOKIE, clear_cookie, set_cookie

FLASH_COOKIE = "carepath_status"
MAX_MESSAGE = 300  # characters kept of a message
FLASH_SECONDS = 60  # a message not shown within a minute is stale


def redirect_saying(request: Request, url: str, message: str) -> RedirectResponse:
    """See-other to `url`, whose page says `message` once."""
    response = RedirectResponse(url, status_code=303)
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        text = base64.urlsafe_b64encode(message[:MAX_MESSAGE].encode()).decode()
        set_cookie(request, response, FLASH_COOKIE, f"{text}.{_signature(token, text)}", FLASH_SECONDS)
    return response


def pending_status(request: Request) -> str | None:
    """The message waiting for this page, if it is this session's and intact."""
    value, token = request.cookies.get(FLASH_COOKIE), request.cookies.get(SESSION_COOKIE)
    if not value or not token or len(value) > 2 * MAX_MESSAGE * 4 or value.count(".") != 1:
        return None
    text, signature = value.split(".")
    if not hmac.compare_digest(signature, _signature(token, text)):
        return None
    try:
        return base64.urlsafe_b64decode(text.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def status_shown(request: Request, response: Response) -> None:
    """The page carrying the message was drawn: the cookie goes (a reload does not say it again)."""
    if FLASH_COOKIE in request.cookies:
        clear_cookie(request, response, FLASH_COOKIE)


def _signature(token: str, text: str) -> str:
    return hmac.new(token.encode(), b"carepath status\x00" + text.encode(), hashlib.sha256).hexdigest()
