"""Routing the inbox (usecases/inbox.process_inbox) on threads, in whichever process does it.

- `InboxWorker`: threads that process the inbox when woken and every `sweep_seconds` anyway (a wake-up
  lost, or a message stored just before a crash). Several threads on PostgreSQL: claims skip each other's
  rows, order per patient holds; one on SQLite.
- A routing process apart from the listener is not woken by it: it looks for work every
  ROUTING_POLL_SECONDS while idle (one cheap indexed query per thread) and without pause while there is
  some. (A NOTIFY in the store would wake it sooner, but PostgreSQL serializes the commits of notifying
  transactions, their WAL flushes included: every acknowledgement would queue behind the others.)
- `RoutingProcesses`: `carepath mllp`'s routing processes on PostgreSQL (`carepath inbox-worker`
  children), so that routing does not share the listener's interpreter (its GIL) with the acknowledgements
  and yields the CPU to them (ROUTING_NICENESS); a child that dies is started again, and every child ends
  with the listener.
- `run_inbox_worker`: the body of `carepath inbox-worker` and of the inbox part of `carepath worker`.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading

from carepath.engine.application import CarePath
from carepath.engine.usecases.inbox import process_inbox

log = logging.getLogger("carepath.inbox")
PG_ROUTING_THREADS = 4
# The listener's routing processes yield the CPU to it: a burst is acknowledged at once and routed with
# what CPU is left (the backlog's lag is on /metrics), instead of slowing every acknowledgement down.
ROUTING_NICENESS = 10
ROUTING_POLL_SECONDS = 0.25  # how long an idle routing thread waits before it looks again


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


def run_inbox_worker(app: CarePath, stop: threading.Event, *, threads: int, parent: int | None = None) -> None:
    """Route the inbox until `stop` is set (or, when `parent` is given, that process is gone)."""
    worker = InboxWorker(app, ROUTING_POLL_SECONDS, threads)
    worker.start()
    try:
        while not stop.wait(1.0):
            if parent is not None and os.getppid() != parent:
                log.warning("the MLLP listener that started this routing process is gone; stopping")
                break
    finally:
        worker.stop()


class RoutingProcesses:
    """`count` `carepath inbox-worker` processes beside the listener (same environment, so the same
    database), started again when one dies and stopped with the listener."""

    def __init__(self, count: int, threads: int) -> None:
        self.count, self.threads = count, threads
        self._children: list[subprocess.Popen[bytes]] = []

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "carepath.api.cli", "inbox-worker", "--threads",
                                 str(self.threads), "--nice", str(ROUTING_NICENESS), "--parent", str(os.getpid())])

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


__all__ = ["PG_ROUTING_THREADS", "ROUTING_NICENESS", "ROUTING_POLL_SECONDS", "InboxWorker", "RoutingProcesses",
           "run_inbox_worker"]
