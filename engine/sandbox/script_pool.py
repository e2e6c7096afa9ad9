"""A small pool of long-lived script worker processes, safe to share between threads.

Workers are started from multiprocessing's "forkserver": a clean single-threaded process forks
each worker, so a worker never inherits the server's threads, locks, sockets or database
connections (as a plain fork of a threaded server would). Starting one is slow, so workers are
reused; one that timed out, died or ran out of memory is killed and a fresh one is started on
the next request that needs it.

As with any forkserver/spawn use, the program's `__main__` module is imported again (once, in
the fork server), so it must not start anything at import time: keep entry points under
`if __name__ == "__main__":` (console scripts, uvicorn and pytest already are).
"""

from __future__ import annotations

import json
import multiprocessing
import signal
import threading
from multiprocessing.connection import Connection
from typing import Any

from .errors import SandboxError, SandboxLimitExceeded, SandboxViolation, ScriptFailed
from .script_worker import MAX_REPLY_BYTES, serve

_STARTUP_TIMEOUT_S = 60.0  # generous: a loaded machine may take seconds to start Python
_JOIN_TIMEOUT_S = 5.0
_START_LOCK = threading.Lock()


class _WorkerGone(Exception):
    """The worker closed its pipe or sent something unreadable; it must be replaced."""


class ScriptWorker:
    def __init__(self, context: Any) -> None:
        ours, theirs = context.Pipe(duplex=True)
        self.process = context.Process(target=serve, args=(theirs,), name="carepath-script-worker",
                                       daemon=True)
        with _START_LOCK:  # Process.start() tidies a module-global set of children; not thread-safe
            self.process.start()
        theirs.close()
        self.connection: Connection = ours
        try:
            if not ours.poll(_STARTUP_TIMEOUT_S):
                raise _WorkerGone("no answer")
            self._receive()  # the worker's "ready"
        except _WorkerGone:
            self.kill()
            # The usual cause: multiprocessing re-imports the server's main module in the worker.
            raise SandboxError(
                f"the script worker process could not start (exit code {self.process.exitcode}); "
                "the program's main module must be importable without side effects "
                "(guard it with `if __name__ == '__main__':`)") from None

    def run(self, request: bytes, timeout_s: float) -> dict[str, Any] | None:
        """The worker's reply, or None if it did not answer within `timeout_s` seconds."""
        try:
            self.connection.send_bytes(request)
            answered = self.connection.poll(timeout_s)
        except OSError as exc:  # the worker died while idle
            raise _WorkerGone(str(exc)) from None
        return self._receive() if answered else None

    def _receive(self) -> dict[str, Any]:
        try:
            reply = json.loads(self.connection.recv_bytes(MAX_REPLY_BYTES))
        except (EOFError, OSError, ValueError, RecursionError) as exc:
            raise _WorkerGone(str(exc)) from None
        if not isinstance(reply, dict):
            raise _WorkerGone("the worker sent a malformed reply")
        return reply

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(_JOIN_TIMEOUT_S)
        self.connection.close()

    def death_error(self) -> SandboxError:
        """Why the worker stopped, once it has been killed or has died."""
        self.kill()
        code = self.process.exitcode
        if code == -signal.SIGXCPU:
            return SandboxLimitExceeded("the script used more CPU time than allowed")
        if code == -signal.SIGXFSZ:
            return SandboxViolation("the script tried to write a file")
        return ScriptFailed(f"the script stopped its worker process (exit code {code})",
                            error_class="WorkerDied")


class ScriptPool:
    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("the script pool needs at least one worker")
        self._context = multiprocessing.get_context("forkserver")
        self._slots = threading.BoundedSemaphore(size)
        self._idle: list[ScriptWorker] = []
        self._lock = threading.Lock()
        self._closed = False

    def run(self, request: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """Send one request to a free worker; raises SandboxError subclasses for timeouts and crashes."""
        try:
            payload = json.dumps(request).encode()
        except ValueError as exc:  # e.g. an int with more than 4300 digits in the task data
            raise SandboxError(f"the task data cannot be sent to a script: {exc}") from None
        with self._slots:
            worker = self._take_idle() or ScriptWorker(self._context)
            reusable = False
            try:
                reply = worker.run(payload, timeout_s)
                if reply is None:
                    raise SandboxLimitExceeded(f"the script ran longer than {timeout_s:g} seconds")
                reusable = reply.get("outcome") != "memory"
                return reply
            except _WorkerGone:
                raise worker.death_error() from None
            finally:
                self._release(worker, reusable)

    def _take_idle(self) -> ScriptWorker | None:
        with self._lock:
            if self._closed:
                raise SandboxError("the script pool has been shut down")
            while self._idle:
                worker = self._idle.pop()
                if worker.process.is_alive():
                    return worker
                worker.kill()  # died while idle (e.g. killed by the OOM killer); just tidy up
            return None

    def _release(self, worker: ScriptWorker, reusable: bool) -> None:
        with self._lock:
            if reusable and not self._closed and worker.process.is_alive():
                self._idle.append(worker)
                return
        worker.kill()

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.kill()
