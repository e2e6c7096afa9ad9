"""Wakes the process when timers come due; the `timers` table decides what is due.

APScheduler runs with its in-memory job store only (its SQLAlchemy store is not safe across
processes): one date job re-armed at the earliest due time whenever it changes, and a periodic
sweep as a safety net; the sweep also processes inbox messages left unprocessed and purges inbox
payloads past their retention period (usecases/inbox.py). `misfire_grace_time=None` so a late
wake-up still runs instead of being silently dropped; `coalesce` folds a backlog of wake-ups into one.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler

from .application import CarePath
from .usecases.checkpoints import write_checkpoint
from .usecases.connector_calls import deliver_connector_calls, next_connector_time
from .usecases.inbox import process_inbox, purge_raw_payloads
from .usecases.messages import expire_messages
from .usecases.notifications import deliver_notifications, next_notification_time
from .usecases.outbox import deliver_outbound, next_delivery_time
from .usecases.projections import fold_task_counts
from .usecases.timers import fire_due_timers, next_due_time

log = logging.getLogger("carepath.scheduler")
JOB_DEFAULTS = {"misfire_grace_time": None, "coalesce": True, "max_instances": 1}


class TimerScheduler:
    def __init__(self, app: CarePath, sweep_seconds: float = 30.0) -> None:
        self.app = app
        self.sweep_seconds = sweep_seconds
        self._scheduler = BackgroundScheduler(job_defaults=JOB_DEFAULTS, timezone="UTC")
        self._lock = threading.Lock()
        app.on_timer_scheduled(self.wake_at)

    def start(self) -> None:
        self._scheduler.add_job(self.sweep, "interval", seconds=self.sweep_seconds, id="sweep",
                                next_run_time=self.app.now())
        self._scheduler.start()

    def shutdown(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)

    def wake_at(self, due: datetime) -> None:
        """Make sure the process wakes by `due`."""
        if not self._scheduler.running:
            return
        with self._lock:
            job = self._scheduler.get_job("wake")
            if job is not None and job.next_run_time is not None and job.next_run_time <= due:
                return
            self._scheduler.add_job(self.fire, "date", run_date=max(due, self.app.now()) + timedelta(
                milliseconds=5), id="wake", replace_existing=True)

    def fire(self) -> None:
        try:
            handled = fire_due_timers(self.app)
            if handled:
                log.info("fired %d timer(s)", handled)
        except Exception:  # the sweep will try again; never let the scheduler thread die
            log.exception("firing due timers failed")
        try:
            deliver_notifications(self.app, limit=10)  # a few at a time: timers must not wait behind a slow webhook
        except Exception:
            log.exception("delivering notifications failed")
        try:
            deliver_outbound(self.app, limit=10)  # to partners' endpoints; a few at a time, as notifications
        except Exception:
            log.exception("delivering to partner organizations failed")
        try:
            deliver_connector_calls(self.app, limit=10)  # the built-in connectors' calls, a few at a time
        except Exception:
            log.exception("carrying out connector calls failed")
        self._rearm()

    def sweep(self) -> None:
        self.fire()
        try:
            expire_messages(self.app)
        except Exception:
            log.exception("expiring buffered messages failed")
        try:
            fold_task_counts(self.app)
        except Exception:
            log.exception("folding the open-task counts failed")
        try:
            write_checkpoint(self.app)
        except Exception:
            log.exception("writing the audit checkpoint failed")
        self.sweep_inbox()

    def sweep_inbox(self) -> None:
        """Inbox messages nobody processed yet (the listener's process died after storing them), and raw
        payloads past their retention period."""
        try:
            processed = process_inbox(self.app)
            if processed:
                log.info("processed %d inbox message(s)", processed)
        except Exception:
            log.exception("processing the inbox failed")
        try:
            purge_raw_payloads(self.app)
        except Exception:
            log.exception("purging inbox payloads failed")

    def _rearm(self) -> None:
        due = [t for t in (next_due_time(self.app), next_notification_time(self.app), next_delivery_time(self.app),
                           next_connector_time(self.app)) if t is not None]
        if due:
            self.wake_at(min(due))
