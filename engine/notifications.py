"""Notifications: reminders and escalations as records, delivered through channels.

A notification is a row written in the same transaction as the event that caused it (a reminder
coming due, a task going overdue), one row per configured channel. Delivery happens afterwards,
claimed row by row like timers (SKIP LOCKED on PostgreSQL), with retries and backoff; every attempt
is recorded in the instance's history. A channel is anything with a `name` and a `deliver` method:
the outbox channel (the record itself, plus a log line) and a signed webhook ship with the product;
e-mail or SMS is one more class.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any, Protocol

from .labels import time_words

log = logging.getLogger("carepath.notifications")


@dataclass(frozen=True)
class Notification:
    """What a channel is given to deliver."""

    id: int
    kind: str  # "reminder" | "overdue"
    subject: str
    recipients: tuple[str, ...]  # "user:<name>" or "group:<name>"
    instance_id: str | None
    task_id: str | None
    created_at: datetime
    payload: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "subject": self.subject, "recipients": list(self.recipients),
                "instance_id": self.instance_id, "task_id": self.task_id,
                "created_at": self.created_at.isoformat(), "payload": self.payload}


def alert_subject(kind: str, task_name: str, due: datetime | None, assignee: str | None, zone: tzinfo) -> str:
    """A deadline alert's title as people read it, the due time in the care setting's zone (named). Written
    into the notification when it is made; the inbox makes it again from the payload in the page's zone, so
    alerts stored with a UTC time in their title read the same."""
    when = f"{time_words(due, zone)} ({getattr(zone, 'key', zone)})" if due else "(no due date)"
    if kind == "reminder":
        return f"Reminder: '{task_name}' is due {when}"
    return f"Overdue: '{task_name}' was due {when}" + (f" (with {assignee})" if assignee else "")


class DeliveryFailed(Exception):
    """A channel could not deliver; the notification is retried later."""


class NotificationChannel(Protocol):
    name: str

    def deliver(self, notification: Notification) -> None:
        """Deliver or raise (any exception counts as a failed attempt)."""


class OutboxChannel:
    """The notification row is the message: integrations read them (GET /api/notifications); a line is logged."""

    name = "outbox"

    def deliver(self, notification: Notification) -> None:
        log.info("notification %s %s to %s: %s", notification.id, notification.kind,
                 ", ".join(notification.recipients), notification.subject)


@dataclass(frozen=True)
class DeadlineAlerts:
    """Product-level rules for a pathway's dated tasks: remind whoever holds the task when a share of
    the time has passed, and tell the group's supervisors when it goes overdue."""

    remind_at: float | None = 0.5  # share of the time from creation to due date; None: no reminder
    notify_supervisors_when_overdue: bool = True

    @classmethod
    def from_settings(cls, raw: dict[str, Any]) -> DeadlineAlerts:
        unknown = set(raw) - {"remind_at_percent", "notify_supervisors_when_overdue"}
        if unknown:
            raise ValueError(f"unknown deadline alert setting(s): {', '.join(sorted(unknown))}")
        percent = raw.get("remind_at_percent", 50)
        if percent is not None and (isinstance(percent, bool) or not isinstance(percent, int | float)
                                    or not 0 < percent < 100):
            raise ValueError("remind_at_percent must be a number between 0 and 100 (or null for no reminder)")
        overdue = raw.get("notify_supervisors_when_overdue", True)
        if not isinstance(overdue, bool):
            raise ValueError("notify_supervisors_when_overdue must be true or false")
        return cls(remind_at=None if percent is None else percent / 100, notify_supervisors_when_overdue=overdue)

    def alert_times(self, created_at: datetime, due_date: datetime, now: datetime) -> list[tuple[str, datetime]]:
        """(kind, due time) of the alerts a task created at `created_at` and due at `due_date` gets now."""
        times: list[tuple[str, datetime]] = []
        if self.remind_at is not None and due_date > created_at:
            remind = created_at + (due_date - created_at) * self.remind_at
            if remind > now:
                times.append(("reminder", remind))
        if self.notify_supervisors_when_overdue:
            times.append(("overdue", due_date))
        return times


def alerts_by_pathway(raw: dict[str, Any] | None) -> dict[str, DeadlineAlerts]:
    """{"*": {...}, "<pathway key>": {...}} from configuration; "*" applies to pathways not named."""
    parsed = {key: DeadlineAlerts.from_settings(value) for key, value in (raw or {}).items()}
    parsed.setdefault("*", DeadlineAlerts())
    return parsed
