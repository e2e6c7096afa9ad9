"""Run untrusted script-task code in a locked-down worker process.

Each script is compiled with RestrictedPython inside a worker (see `script_worker`) that has
limits on address space, CPU time, open files and file size; the server kills the worker if the
script runs past its wall-clock timeout. The script sees the task data as global variables and
its top-level variables, minus functions and modules, become the new task data.

Task data crosses the process boundary as JSON (see `transport` for datetimes, decimals, sets).
Keys that start with '_' or are not Python identifiers are invisible to the script and returned
unchanged.
"""

from __future__ import annotations

import atexit
import math
import os
import threading
from collections.abc import Mapping
from typing import Any

from .errors import SandboxError, SandboxLimitExceeded, SandboxSyntaxError, SandboxViolation, ScriptFailed
from .script_check import MAX_SCRIPT_CHARS, compile_script
from .script_pool import ScriptPool
from .transport import UnsupportedValue, from_wire, to_wire

__all__ = ["check_script", "configure_script_pool", "run_script", "shutdown_script_pool"]

DEFAULT_POOL_SIZE = 2
# CPU seconds allowed beyond the wall-clock timeout; only a backstop if the server fails to kill.
_CPU_GRACE_S = 2

_pool: ScriptPool | None = None
_pool_pid = 0
_pool_size = DEFAULT_POOL_SIZE
_pool_lock = threading.Lock()


def check_script(source: str) -> None:
    """Deploy-time check: raises SandboxSyntaxError or SandboxViolation carrying the line
    (SandboxLimitExceeded for an oversized or absurdly nested script)."""
    compile_script(source)


def run_script(source: str, data: Mapping[str, Any], *, timeout_s: float = 5.0,
               memory_mb: int = 256) -> dict[str, Any]:
    """The task data after running `source` on `data`; `data` itself is not modified.

    `timeout_s` bounds compiling and running the script, not waiting for a free worker or
    starting one; `memory_mb` is what the script may allocate on top of the worker's own use.
    """
    if len(source) > MAX_SCRIPT_CHARS:
        raise SandboxLimitExceeded(
            f"the script is {len(source)} characters long; the limit is {MAX_SCRIPT_CHARS}")
    visible, hidden = _split_data(data)
    request = {
        "source": source,
        "data": visible,
        "memory_mb": memory_mb,
        "cpu_s": math.ceil(timeout_s) + _CPU_GRACE_S,
    }
    reply = _get_pool().run(request, timeout_s)
    return {**hidden, **_reply_data(reply, memory_mb)}


def configure_script_pool(*, size: int) -> None:
    """Use `size` worker processes from now on (stops the current ones)."""
    global _pool_size
    if size < 1:
        raise ValueError("the script pool needs at least one worker")
    with _pool_lock:
        _pool_size = size
    shutdown_script_pool()


def shutdown_script_pool() -> None:
    """Stop all idle workers; the next run_script starts a fresh pool."""
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    # In a forked child the pool's workers belong to the parent; leave them alone.
    if pool is not None and _pool_pid == os.getpid():
        pool.shutdown()


def _get_pool() -> ScriptPool:
    global _pool, _pool_pid
    with _pool_lock:
        # A server that forks its own workers (gunicorn) must not share the parent's pipes.
        if _pool is None or _pool_pid != os.getpid():
            _pool, _pool_pid = ScriptPool(_pool_size), os.getpid()
        return _pool


def _split_data(data: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    visible: dict[str, Any] = {}
    hidden: dict[str, Any] = {}
    for key, value in data.items():
        if not isinstance(key, str) or not key.isidentifier() or key.startswith("_"):
            hidden[key] = value
            continue
        try:
            visible[key] = to_wire(value)
        except UnsupportedValue as exc:
            raise SandboxError(f"task data field '{key}' cannot be passed to a script: {exc}") from None
    return visible, hidden


def _reply_data(reply: dict[str, Any], memory_mb: int) -> dict[str, Any]:
    outcome = reply.get("outcome")
    message = str(reply.get("message") or "")
    line = reply.get("line") if isinstance(reply.get("line"), int) else None
    if outcome == "ok" and isinstance(reply.get("data"), dict):
        try:
            return {str(key): from_wire(value) for key, value in reply["data"].items()}
        except UnsupportedValue as exc:
            raise ScriptFailed(f"the script's variables could not be read back: {exc}") from None
    if outcome == "memory":
        raise SandboxLimitExceeded(f"the script used more than {memory_mb} MB of memory")
    if outcome == "limit":
        raise SandboxLimitExceeded(message, line=line)
    if outcome == "syntax":
        raise SandboxSyntaxError(message, line=line)
    if outcome == "violation":
        raise SandboxViolation(message, line=line)
    if outcome == "failed":
        error_class = str(reply.get("error_class") or "Exception")
        where = f" on line {line}" if line else ""
        detail = f": {message}" if message else ""
        raise ScriptFailed(f"{error_class}{where}{detail}", line=line, error_class=error_class)
    raise ScriptFailed("the script worker sent an unexpected reply", error_class="WorkerError")


atexit.register(shutdown_script_pool)
