"""Prometheus metrics: request counters and, read from the database at scrape time, instances by
status, open and overdue tasks, timer lag (how long the oldest due timer has been waiting), and the
inbox's backlog (messages waiting and failed, how long the oldest has waited) beside its rates (messages
received, and routed by outcome, per second over the last minute). They are read from the inbox table, so
they hold whichever process routes (the listener, its routing processes or `carepath worker`)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from carepath.engine.application import CarePath
from carepath.engine.inbox_queries import RATE_WINDOW, inbox_backlog
from carepath.engine.model import OPEN_TASK_STATES, InboxState, TimerState
from carepath.engine.persistence.tables import Instance, Task, Timer
from carepath.engine.usecases.outbox import delivery_counts


class DatabaseCollector(Collector):
    def __init__(self, engine: CarePath) -> None:
        self.engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = self.engine.now()
        with self.engine.db.read() as session:
            by_status = session.execute(select(Instance.status, func.count()).group_by(Instance.status)).all()
            open_tasks = session.scalar(select(func.count()).select_from(Task).where(
                Task.state.in_(OPEN_TASK_STATES)))
            overdue = session.scalar(select(func.count()).select_from(Task).where(
                Task.state.in_(OPEN_TASK_STATES), Task.due_date < now))
            oldest_due = session.scalar(select(func.min(Timer.due_at)).where(Timer.state == TimerState.PENDING))
        instances = GaugeMetricFamily("carepath_instances", "Pathway instances by status", labels=["status"])
        for status, count in by_status:
            instances.add_metric([status], count)
        yield instances
        yield GaugeMetricFamily("carepath_open_tasks", "Human tasks ready to be worked", value=open_tasks or 0)
        yield GaugeMetricFamily("carepath_overdue_tasks", "Open human tasks past their due date", value=overdue or 0)
        lag = max(0.0, (now - oldest_due).total_seconds()) if oldest_due is not None else 0.0
        yield GaugeMetricFamily("carepath_timer_lag_seconds", "How long the oldest due timer has waited", value=lag)
        yield from self._inbox(now)
        deliveries = GaugeMetricFamily("carepath_outbound_deliveries", "Deliveries to partner organizations by "
                                       "status (dead: given up, for an admin to retry)", labels=["status"])
        for status, count in delivery_counts(self.engine).items():
            deliveries.add_metric([status], count)
        yield deliveries

    def _inbox(self, now: datetime) -> Iterator[GaugeMetricFamily]:
        """The inbox's backlog (HL7 v2 over MLLP): a fast ACK rate must not hide a growing backlog."""
        backlog = inbox_backlog(self.engine)
        yield GaugeMetricFamily("carepath_inbox_waiting", "Inbox messages received and not processed yet",
                                value=backlog.waiting)
        yield GaugeMetricFamily("carepath_inbox_failed", "Inbox messages whose processing failed (dead letters)",
                                value=backlog.failed)
        lag = max(0.0, (now - backlog.oldest_waiting).total_seconds()) if backlog.oldest_waiting else 0.0
        yield GaugeMetricFamily("carepath_inbox_lag_seconds", "How long the oldest waiting inbox message has waited",
                                value=lag)
        window = RATE_WINDOW.total_seconds()
        yield GaugeMetricFamily("carepath_inbox_received_per_second", "Inbox messages stored and acknowledged per "
                                "second over the last minute", value=round(backlog.received_last_minute / window, 3))
        processed = GaugeMetricFamily("carepath_inbox_processed_per_second", "Inbox messages routed per second over "
                                      "the last minute, by outcome (started and delivered moved episodes)",
                                      labels=["outcome"])
        for outcome in (InboxState.STARTED, InboxState.DELIVERED, InboxState.NOTHING_TO_DO, InboxState.FAILED):
            count = backlog.processed_last_minute.get(outcome.value, 0)
            processed.add_metric([outcome.value], round(count / window, 3))
        yield processed


def install_metrics(app: FastAPI, engine: CarePath) -> None:
    registry = CollectorRegistry()
    requests = Counter("carepath_http_requests", "HTTP requests", ["method", "route", "status"], registry=registry)
    latency = Histogram("carepath_http_request_seconds", "HTTP request latency", ["method", "route"],
                        registry=registry)
    registry.register(DatabaseCollector(engine))
    app.state.metrics_registry = registry

    app.add_middleware(RequestMetrics, requests=requests, latency=latency)


class RequestMetrics:
    """Counts and times each HTTP request by route and status. Plain ASGI: `@app.middleware("http")` ran
    every request through a task group and memory streams of its own (a share of each completion's time)."""

    def __init__(self, app: ASGIApp, requests: Counter, latency: Histogram) -> None:
        self.app, self.requests, self.latency = app, requests, latency

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), []

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        await self.app(scope, receive, sending)  # an exception escaping is answered (and not counted) outside
        path = getattr(scope.get("route"), "path", "unmatched")
        self.requests.labels(scope["method"], path, str(status[0] if status else 500)).inc()
        self.latency.labels(scope["method"], path).observe(time.perf_counter() - started)
