"""The script worker process: locks itself down, then runs one script per request.

Requests and replies are JSON (see `transport`). A reply is one of
    {"outcome": "ok", "data": {...}}
    {"outcome": "failed", "error_class": "...", "message": "...", "line": n}
    {"outcome": "violation" | "syntax" | "limit", "message": "...", "line": n}
    {"outcome": "memory"}          the script hit the memory limit; the server retires this worker
"""

from __future__ import annotations

import gc
import json
import math
import os
import resource
import signal
from functools import lru_cache
from multiprocessing.connection import Connection
from types import CodeType, ModuleType, TracebackType
from typing import Any

from .errors import SandboxError, SandboxLimitExceeded, SandboxSyntaxError
from .script_check import SCRIPT_FILENAME, compile_script
from .script_policy import script_globals
from .transport import UnsupportedValue, from_wire, to_wire

MAX_REPLY_BYTES = 64 * 1024 * 1024
_MAX_MESSAGE_CHARS = 2_000
_MB = 1024 * 1024


def serve(connection: Connection) -> None:
    """Process entry point; returns (ending the process) when the server closes the pipe."""
    statm = _lock_down()
    connection.send_bytes(b'{"outcome": "ready"}')
    while True:
        try:
            request = json.loads(connection.recv_bytes())
        except (EOFError, OSError):
            return
        reply = _encoded_reply(handle(request, statm))
        connection.send_bytes(reply)


def _lock_down() -> int | None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C on the server is the server's business
    devnull = os.open(os.devnull, os.O_RDWR)
    for stream in (1, 2):  # nothing a script does may reach the server's stdout/stderr or log files
        os.dup2(devnull, stream)
    os.close(devnull)
    import _strptime  # noqa: F401  (datetime.strptime imports it lazily; no files can be opened later)

    statm = _open_statm()
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    _forbid_new_descriptors()
    return statm


def _forbid_new_descriptors() -> None:
    """No new files or sockets from here on; the pipe to the server is already open."""
    if not os.path.isdir("/proc/self/fd"):
        resource.setrlimit(resource.RLIMIT_NOFILE, (16, 16))
        return
    open_fds = {int(name) for name in os.listdir("/proc/self/fd")}
    highest = max(open_fds)
    # A new descriptor takes the lowest free number below the limit, so plug the gaps first.
    filler = os.open(os.devnull, os.O_RDONLY)
    for fd in range(highest + 1):
        if fd not in open_fds and fd != filler:
            os.dup2(filler, fd)
    limit = max(highest, filler) + 1
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))


def _open_statm() -> int | None:
    try:
        return os.open("/proc/self/statm", os.O_RDONLY)
    except OSError:
        return None


def _set_request_limits(statm: int | None, memory_mb: int, cpu_s: int) -> None:
    used = resource.getrusage(resource.RUSAGE_SELF)
    _set_soft_limit(resource.RLIMIT_CPU, math.ceil(used.ru_utime + used.ru_stime) + cpu_s)
    if statm is not None:
        # Address space now plus the script's allowance; measured per request so earlier runs don't eat it.
        pages = int(os.pread(statm, 64, 0).split()[0])
        _set_soft_limit(resource.RLIMIT_AS, pages * resource.getpagesize() + memory_mb * _MB)


def _clear_request_limits() -> None:
    # Receiving and decoding the next request must not fail under this request's limits.
    for limit in (resource.RLIMIT_AS, resource.RLIMIT_CPU):
        _set_soft_limit(limit, resource.RLIM_INFINITY)


def _set_soft_limit(limit: int, soft: int) -> None:
    hard = resource.getrlimit(limit)[1]
    if hard != resource.RLIM_INFINITY and (soft == resource.RLIM_INFINITY or soft > hard):
        soft = hard
    resource.setrlimit(limit, (soft, hard))


def handle(request: dict[str, Any], statm: int | None) -> dict[str, Any]:
    _set_request_limits(statm, int(request["memory_mb"]), int(request["cpu_s"]))
    try:
        return _compile_and_run(request)
    except MemoryError:
        return {"outcome": "memory"}
    finally:
        gc.collect()
        _clear_request_limits()


def _compile_and_run(request: dict[str, Any]) -> dict[str, Any]:
    try:
        code = _compiled(request["source"])
    except SandboxError as exc:
        kind = "limit" if isinstance(exc, SandboxLimitExceeded) else "violation"
        kind = "syntax" if isinstance(exc, SandboxSyntaxError) else kind
        return {"outcome": kind, "message": exc.message, "line": exc.line}
    return _run(code, request["data"])


@lru_cache(maxsize=64)
def _compiled(source: str) -> CodeType:
    return compile_script(source)


def _run(code: CodeType, wire_data: dict[str, Any]) -> dict[str, Any]:
    env = script_globals()
    env.update({name: from_wire(value) for name, value in wire_data.items() if not name.startswith("_")})
    try:
        exec(code, env)  # noqa: S102  (RestrictedPython-compiled code with guarded globals)
    except MemoryError:
        raise
    except BaseException as exc:  # SystemExit and KeyboardInterrupt too: the worker must survive them
        return _failure(exc)
    return _result(env)


def _failure(exc: BaseException) -> dict[str, Any]:
    try:
        message = str(exc)[:_MAX_MESSAGE_CHARS]
    except Exception:
        message = ""
    return {"outcome": "failed", "error_class": type(exc).__name__, "message": message,
            "line": _script_line(exc.__traceback__)}


def _script_line(trace: TracebackType | None) -> int | None:
    line = None
    while trace is not None:
        if trace.tb_frame.f_code.co_filename == SCRIPT_FILENAME:
            line = trace.tb_lineno
        trace = trace.tb_next
    return line


def _result(env: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name, value in env.items():
        # Like SpiffWorkflow: the script's variables minus functions, modules and the machinery.
        if name.startswith("_") or callable(value) or isinstance(value, ModuleType):
            continue
        try:
            data[name] = to_wire(value)
        except UnsupportedValue as exc:
            return {"outcome": "failed", "error_class": "TypeError", "line": None,
                    "message": f"variable '{name}' cannot be stored in task data: {exc}"}
    return {"outcome": "ok", "data": data}


def _encoded_reply(reply: dict[str, Any]) -> bytes:
    try:
        encoded = json.dumps(reply).encode()
    except MemoryError:
        return b'{"outcome": "memory"}'
    except (ValueError, RecursionError) as exc:  # e.g. an int with more than 4300 digits
        return json.dumps({"outcome": "failed", "error_class": type(exc).__name__, "line": None,
                           "message": f"the script's variables cannot be stored: {exc}"}).encode()
    if len(encoded) > MAX_REPLY_BYTES:
        return json.dumps({"outcome": "limit", "line": None, "message":
                           f"the script's variables exceed {MAX_REPLY_BYTES // _MB} MB"}).encode()
    return encoded
