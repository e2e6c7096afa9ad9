"""Deadline alerts (remind at a share of the time, tell the supervisors when overdue) and their
delivery through the outbox and a signed webhook, with retries; every attempt in the history."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from carepath.api.channels import SIGNATURE_HEADER, WebhookChannel, channels_from_settings
from carepath.api.settings import Settings
from carepath.engine.clock import ManualClock
from carepath.engine.notifications import OutboxChannel, alerts_by_pathway
from carepath.engine.usecases.notifications import deliver_notifications
from carepath.engine.usecases.timers import fire_due_timers
from tests.support import diagrams as d
from tests.support.api import ApiClient

CAMUNDA = 'xmlns:camunda="http://camunda.org/schema/1.0/bpmn"'


def dated(pid: str, due: str = "P2D") -> str:
    xml = d.definitions(d.process(
        pid, d.node("startEvent", "s"), f'<bpmn:userTask id="call" name="Call patient" camunda:dueDate="{due}"/>',
        d.node("endEvent", "e"), d.flow("f1", "s", "call"), d.flow("f2", "call", "e"),
        lanes={"Care Coordinator": ["call"]}))
    return xml.replace("<bpmn:definitions ", f"<bpmn:definitions {CAMUNDA} ", 1)


def _start(api: ApiClient, admin: str, pid: str, due: str = "P2D") -> dict:
    assert api.deploy(admin, (f"{pid}.bpmn", dated(pid, due))).status_code == 201
    return api.start(admin, pid).json()


def _history(api: ApiClient, admin: str, instance_id: str) -> list[dict]:
    return api.get(f"/api/instances/{instance_id}/history", admin).json()["items"]


def test_the_holder_is_reminded_halfway_and_the_supervisors_told_when_overdue(
        api: ApiClient, clock: ManualClock) -> None:
    admin = api.user("admin")
    boss = api.user("supervisor", "care-coordinator", name="boss")
    ana = api.user("coordinator", "care-coordinator", name="ana")
    started = _start(api, admin, "alerts")
    task = started["open_tasks"][0]
    api.post(f"/api/tasks/{task['id']}/claim", ana)
    clock.advance(hours=23, minutes=59)
    assert fire_due_timers(api.engine) == 0
    clock.advance(minutes=1, seconds=5)
    assert fire_due_timers(api.engine) == 1
    assert deliver_notifications(api.engine) == 1
    outbox = api.get("/api/notifications", boss).json()["items"]
    assert [(n["kind"], n["recipients"], n["state"], n["channel"]) for n in outbox] == [
        ("reminder", ["user:ana"], "delivered", "outbox")]
    assert outbox[0]["payload"]["late_by_seconds"] == 5.0
    due = datetime.fromisoformat(outbox[0]["payload"]["due_date"])  # the API keeps the instant in ISO UTC
    assert outbox[0]["subject"] == (f"Reminder: 'Call patient' is due "
                                    f"{due.astimezone(ZoneInfo('America/New_York')):%d %b %Y %H:%M} (America/New_York)")
    clock.advance(days=1)
    assert fire_due_timers(api.engine) == 1
    assert fire_due_timers(api.engine) == 0  # once
    deliver_notifications(api.engine)
    overdue = api.get("/api/notifications", boss, params={"kind": "overdue"}).json()["items"]
    assert [(n["recipients"], n["state"]) for n in overdue] == [([f"user:{boss}"], "delivered")]
    assert "Overdue: 'Call patient'" in overdue[0]["subject"] and "(with ana)" in overdue[0]["subject"]
    types = [e["type"] for e in _history(api, admin, started["id"])]
    assert types.count("task_reminder_alert") == 1 and types.count("task_overdue_alert") == 1
    assert types.count("notification_delivered") == 2
    assert api.get("/api/notifications", ana).status_code == 403


def test_finishing_the_task_in_time_cancels_its_alerts(api: ApiClient, clock: ManualClock) -> None:
    admin = api.user("admin")
    started = _start(api, admin, "intime")
    api.post(f"/api/tasks/{started['open_tasks'][0]['id']}/complete", admin, {"data": {}})
    clock.advance(days=5)
    assert fire_due_timers(api.engine) == 0
    assert api.get("/api/notifications", admin).json()["items"] == []


def test_moving_the_due_date_moves_the_alerts(api: ApiClient, clock: ManualClock) -> None:
    admin = api.user("admin")
    started = _start(api, admin, "moved")
    boss = api.user("supervisor", "care-coordinator")
    task_id = started["open_tasks"][0]["id"]
    moved = api.post(f"/api/tasks/{task_id}/due-date", boss, {"due_date": "P10D", "reason": "patient away"})
    assert moved.status_code == 200, moved.text
    clock.advance(days=3)
    assert fire_due_timers(api.engine) == 0  # the old reminder (day 1) and overdue (day 2) are gone
    clock.advance(days=2, seconds=1)  # half of the new 10 days
    assert fire_due_timers(api.engine) == 1
    clock.advance(days=5)
    assert fire_due_timers(api.engine) == 1
    kinds = sorted(n["kind"] for n in api.get("/api/notifications", admin).json()["items"])
    assert kinds == ["overdue", "reminder"]


def test_alert_rules_per_pathway(api: ApiClient, clock: ManualClock) -> None:
    api.engine.config = replace(api.engine.config, deadline_alerts=alerts_by_pathway({
        "quiet": {"remind_at_percent": None, "notify_supervisors_when_overdue": False},
        "early": {"remind_at_percent": 25}}))
    admin = api.user("admin")
    _start(api, admin, "quiet")
    _start(api, admin, "early", due="P4D")
    clock.advance(days=1, seconds=1)
    assert fire_due_timers(api.engine) == 1  # early's reminder at a quarter of 4 days
    clock.advance(days=10)
    assert fire_due_timers(api.engine) == 1  # early's overdue; quiet has none
    notes = api.get("/api/notifications", admin).json()["items"]
    assert sorted(n["kind"] for n in notes) == ["overdue", "reminder"]


def test_the_webhook_is_signed_and_retried_then_given_up(api: ApiClient, clock: ManualClock) -> None:
    received: list[httpx.Request] = []
    answers = iter([503, 500, 200])

    def handler(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(next(answers))

    api.engine.channels = [OutboxChannel(), WebhookChannel("https://hooks.example/carepath", "s3cret",
                                                           transport=httpx.MockTransport(handler))]
    api.engine.config = replace(api.engine.config, notification_max_attempts=3,
                                notification_retry_base=timedelta(seconds=30))
    admin = api.user("admin")
    started = _start(api, admin, "hooked")
    clock.advance(days=1, seconds=1)
    fire_due_timers(api.engine)
    assert deliver_notifications(api.engine) == 2  # outbox delivered, webhook failed (503)
    assert deliver_notifications(api.engine) == 0  # the retry waits 30 s
    clock.advance(seconds=31)
    assert deliver_notifications(api.engine) == 1  # 500; next in 60 s
    clock.advance(seconds=61)
    assert deliver_notifications(api.engine) == 1  # 200
    body = received[-1].content
    assert received[-1].headers[SIGNATURE_HEADER] == "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    sent = json.loads(body)
    assert sent["kind"] == "reminder" and sent["task_id"] == started["open_tasks"][0]["id"]
    assert len({r.headers["X-CarePath-Notification"] for r in received}) == 1  # the same notification
    history = _history(api, admin, started["id"])
    failures = [e["data"] for e in history if e["type"] == "notification_failed"]
    assert [(f["attempt"], f["gave_up"]) for f in failures] == [(1, False), (2, False)]
    assert "503" in failures[0]["error"]

    answers = iter([500] * 3)
    clock.advance(days=1)
    fire_due_timers(api.engine)  # overdue: webhook fails three times and is given up
    for _ in range(4):
        deliver_notifications(api.engine)
        clock.advance(minutes=5)
    failed = api.get("/api/notifications", admin, params={"state": "failed"}).json()["items"]
    assert [(n["kind"], n["channel"], n["attempts"]) for n in failed] == [("overdue", "webhook", 3)]
    assert "500" in failed[0]["last_error"]


def test_channel_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="needs CAREPATH_WEBHOOK_URL"):
        channels_from_settings(["webhook"], None, None)
    with pytest.raises(ValueError, match="unknown notification channel 'sms'"):
        channels_from_settings(["sms"], None, None)
    with pytest.raises(ValueError, match="remind_at_percent"):
        Settings(deadline_alerts='{"*": {"remind_at_percent": 150}}')
    with pytest.raises(ValueError, match="CAREPATH_NOTIFY_CHANNELS|webhook"):
        Settings(notify_channels="outbox,webhook")
    with pytest.raises(ValueError, match="'clinic' is not configured"):
        Settings(default_calendar="clinic")
    assert [c.name for c in Settings(notify_channels="outbox, webhook", webhook_url="http://x/h",
                                     webhook_secret="k").notification_channels()] == ["outbox", "webhook"]


def test_supervisors_read_notifications_of_their_groups_only(api: ApiClient, clock: ManualClock) -> None:
    admin = api.user("admin")
    _start(api, admin, "mine")
    clock.advance(days=1, seconds=1)
    fire_due_timers(api.engine)
    ours, theirs = api.user("supervisor", "care-coordinator"), api.user("supervisor", "pharmacy")
    assert len(api.get("/api/notifications", ours).json()["items"]) == 1
    assert api.get("/api/notifications", theirs).json()["items"] == []
    assert len(api.get("/api/notifications", api.user("auditor")).json()["items"]) == 1


def test_an_alert_that_cannot_be_sent_does_not_hold_up_later_timers(api: ApiClient, clock: ManualClock,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from carepath.engine.usecases import timers as timer_use_cases

    def broken(uow: object, timer: object) -> None:
        raise RuntimeError("alert store unavailable")

    admin = api.user("admin")
    _start(api, admin, "broken")
    api.deploy(admin, ("t.bpmn", d.boundary_timers("later", reminder="PT36H", escalation="P30D")))
    later = api.start(admin, "later").json()
    monkeypatch.setattr(timer_use_cases, "fire_alert", broken)
    clock.advance(days=2, seconds=1)
    assert fire_due_timers(api.engine) == 3  # reminder (failed), overdue (failed), the diagram's timer
    names = sorted(t["name"] for t in api.get(f"/api/instances/{later['id']}", admin).json()["open_tasks"])
    assert names == ["Call patient", "Reminder"]
    assert fire_due_timers(api.engine) == 0  # the failed alerts are not retried forever
