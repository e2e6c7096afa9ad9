"""Notification channels that talk to the outside world (the engine ships the outbox channel).

The webhook channel POSTs each notification as JSON, signed with HMAC-SHA256 over the body
(`X-CarePath-Signature: sha256=<hex>`), with the notification id in `X-CarePath-Notification` so a
receiver can drop repeats: delivery is at least once (a retry after a timeout may repeat one).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import httpx

from carepath.engine.notifications import DeliveryFailed, Notification, NotificationChannel, OutboxChannel

SIGNATURE_HEADER = "X-CarePath-Signature"


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookChannel:
    name = "webhook"

    def __init__(self, url: str, secret: str, *, timeout_s: float = 5.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"the webhook URL must start with http:// or https:// (got '{url[:40]}')")
        self.url, self.secret = url, secret
        self.client = httpx.Client(timeout=timeout_s, transport=transport)

    def deliver(self, notification: Notification) -> None:
        body = json.dumps(notification.as_json(), separators=(",", ":"), sort_keys=True).encode()
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: signature(self.secret, body),
                   "X-CarePath-Notification": str(notification.id)}
        # Errors name the receiver by scheme and host only: the URL may carry a token, and errors are
        # kept in the history that coordinators read.
        try:
            response = self.client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"POST to {self._host} failed ({type(exc).__name__})") from exc
        if response.status_code >= 300:
            raise DeliveryFailed(f"POST to {self._host} answered {response.status_code}")

    @property
    def _host(self) -> str:
        url = httpx.URL(self.url)
        return f"{url.scheme}://{url.host}"


def channels_from_settings(names: list[str], webhook_url: str | None, webhook_secret: str | None,
                           **webhook: Any) -> list[NotificationChannel]:
    channels: list[NotificationChannel] = []
    for name in names:
        if name == "outbox":
            channels.append(OutboxChannel())
        elif name == "webhook":
            if not webhook_url or not webhook_secret:
                raise ValueError("the webhook channel needs CAREPATH_WEBHOOK_URL and CAREPATH_WEBHOOK_SECRET")
            channels.append(WebhookChannel(webhook_url, webhook_secret, **webhook))
        else:
            raise ValueError(f"unknown notification channel '{name}' (known: outbox, webhook)")
    return channels
