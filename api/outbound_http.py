"""Sends the outbox's deliveries to partner organizations (engine/usecases/outbox.py) with httpx.

One POST per attempt, with a timeout, never following a redirect (the endpoint is the registry's, and a
redirect could lead anywhere). Errors name the receiver by scheme and host only: an endpoint's URL may carry a
token, and errors are kept on the delivery, which admins read.
"""

from __future__ import annotations

import httpx

from carepath.engine.notifications import DeliveryFailed


class HttpPoster:
    def __init__(self, *, timeout_s: float = 10.0, transport: httpx.BaseTransport | None = None) -> None:
        self.client = httpx.Client(timeout=timeout_s, follow_redirects=False, transport=transport,
                                   headers={"User-Agent": "CarePath outbox"})

    def __call__(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        try:
            response = self.client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            parsed = httpx.URL(url)
            raise DeliveryFailed(f"POST to {parsed.scheme}://{parsed.host} failed ({type(exc).__name__})") from exc
        return response.status_code
