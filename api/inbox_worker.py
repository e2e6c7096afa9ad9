"""Routing the inbox (usecases/inbox.process_inbox) on threads, in whichever process does it.

- `InboxWorker`: threads that process the inbox when woken and every `sweep_seconds` anyway (a wake-up
  lost, or a message stored just before a crash). Several threads on PostgreSQL: claims skip each other's
  rows, order per patient holds; one on SQLite.
- `NotifyWake` (PostgreSQL): LISTENs on the channel the listener's store NOTIFYs (usecases/inbox.py
  INBOX_CHANNEL), so a routing process in another process than the listener starts within milliseconds.
- `RoutingProcesses`: `carepath mllp`'s routing processes on PostgreSQL (`carepath inbox-worker`
  children), so that routing does not share the listener's interpreter (its GIL) with the acknowledgements;
  a child that dies is started again, and every child ends with the listener.
- `run_inbox_worker`: the body of `carepath inbox-worker` and of the inbox part of `carepath worker`.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading

import psycopg
from sqlalchemy.engine import make_url

from carepath.engine.application import CarePath
from carepath.engine.usecases.inbox import INBOX_CHANNEL, process_inbox

log = logging.getLogger("carepath.inbox")
PG_ROUTING_THREADS = 4
NOTIFY_POLL_SECONDS = 1.0  # how often the wake-up thread looks at its stop flag


class InboxWorker:
    """Processes the inbox on threads of its own: when woken after a message is stored, and every
    `sweep_seconds` in case a wake-up was lost."""

    def __init__(self, app: CarePath, sweep_seconds: float = 30.0, threads: int = 1) -> None:
        self.app = app
        self.sweep_seconds = sweep_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, name=f"carepath-inbox-{n}", daemon=True)
                         for n in range(max(threads, 1))]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.sweep_seconds)
            self._wake.clear()
            try:
                while not self._stop.is_set() and process_inbox(self.app, limit=50):
                    pass
            except Exception:  # the next wake-up or sweep tries again; the thread must not die
                log.exception("processing the inbox failed")


def libpq_url(database_url: str) -> str:
    """The SQLAlchemy URL as psycopg takes it (no `+psycopg` driver name)."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


class NotifyWake:
    """Wakes `worker` on each NOTIFY on INBOX_CHANNEL, on a connection of its own; when the connection
    drops it connects again (the worker's sweep covers the gap)."""

    def __init__(self, database_url: str, worker: InboxWorker) -> None:
        self.url = libpq_url(database_url)
        self.worker = worker
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="carepath-inbox-wake", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=NOTIFY_POLL_SECONDS * 3)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True) as connection:
                    connection.execute(f"LISTEN {INBOX_CHANNEL}")
                    self.worker.wake()  # whatever was stored before we listened
                    while not self._stop.is_set():
                        for _ in connection.notifies(timeout=NOTIFY_POLL_SECONDS, stop_after=1):
                            self.worker.wake()
            except psycopg.Error as exc:
                log.warning("listening for inbox notifications failed (%s); trying again", type(exc).__name__)
                self._stop.wait(NOTIFY_POLL_SECONDS)


def run_inbox_worker(app: CarePath, database_url: str, stop: threading.Event, *, threads: int,
                     sweep_seconds: float, parent: int | None = None) -> None:
    """Route the inbox until `stop` is set (or, when `parent` is given, that process is gone)."""
    worker = InboxWorker(app, sweep_seconds, threads)
    wake = NotifyWake(database_url, worker) if app.db.dialect == "postgresql" else None
    worker.start()
    if wake is not None:
        wake.start()
    try:
        while not stop.wait(1.0):
            if parent is not None and os.getppid() != parent:
                log.warning("the MLLP listener that started this routing process is gone; stopping")
                break
    finally:
        if wake is not None:
            wake.stop()
        worker.stop()


class RoutingProcesses:
    """`count` `carepath inbox-worker` processes beside the listener (same environment, so the same
    database), started again when one dies and stopped with the listener."""

    def __init__(self, count: int, threads: int) -> None:
        self.count, self.threads = count, threads
        self._children: list[subprocess.Popen[bytes]] = []

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "carepath.api.cli", "inbox-worker", "--threads",
                                 str(self.threads), "--parent", str(os.getpid())])

    def start(self) -> None:
        self._children = [self._spawn() for _ in range(self.count)]

    def check(self) -> None:
        for index, child in enumerate(self._children):
            if child.poll() is not None:
                log.warning("routing process %d ended (exit %s); starting it again", child.pid, child.returncode)
                self._children[index] = self._spawn()

    def supervise(self, stop: threading.Event) -> threading.Thread:
        def run() -> None:
            while not stop.wait(1.0):
                self.check()

        thread = threading.Thread(target=run, name="carepath-routing-supervisor", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        for child in self._children:
            if child.poll() is None:
                child.terminate()
        for child in self._children:
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


__all__ = ["PG_ROUTING_THREADS", "InboxWorker", "NotifyWake", "RoutingProcesses", "libpq_url", "run_inbox_worker"]
