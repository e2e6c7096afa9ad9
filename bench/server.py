"""`carepath serve` as a real subprocess on a free loopback port, and the CLI to make its users.

The server always goes away: `stop()` is called from a `finally` and from `atexit`, terminates
the whole process group and kills it if it has not gone after a few seconds.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from .stats import note

HOST = "127.0.0.1"
START_TIMEOUT_S = 90.0


def carepath_command() -> list[str]:
    script = Path(sys.executable).with_name("carepath")
    return [str(script)] if script.exists() else [sys.executable, "-m", "carepath.api.cli"]


def server_environment(database_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env["CAREPATH_DATABASE_URL"] = database_url
    return env


def add_user(database_url: str, name: str, role: str, *groups: str) -> str:
    """`carepath user add NAME --role ROLE [--group G]`; the token is the last line it prints."""
    args = [*carepath_command(), "user", "add", name, "--role", role]
    for group in groups:
        args += ["--group", group]
    done = subprocess.run(args, env=server_environment(database_url), capture_output=True, text=True,
                          timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"carepath user add {name} failed: {done.stderr.strip()[-500:]}")
    return done.stdout.strip().splitlines()[-1].strip()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.port = free_port()
        self.base_url = f"http://{HOST}:{self.port}"
        self._logdir = Path(tempfile.mkdtemp(prefix="carepath-bench-server-"))
        self.log_path = self._logdir / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = [*carepath_command(), "serve", "--host", HOST, "--port", str(self.port)]
        note(f"starting {' '.join(Path(a).name if i == 0 else a for i, a in enumerate(args))}")
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(args, env=server_environment(self.database_url), stdout=log,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True)
        atexit.register(self.stop)
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"the server exited during start-up:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.base_url}/readyz", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the server was not ready after {START_TIMEOUT_S:.0f} s:\n{self.log_tail()}")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def rss_kib(self) -> dict[str, int]:
        """VmRSS and VmHWM of the server process, and the summed VmRSS of its children (script workers)."""
        own = _status_fields(self.pid)
        children = sum(_status_fields(child).get("VmRSS", 0) for child in _children(self.pid))
        return {"rss_kib": own.get("VmRSS", 0), "peak_rss_kib": own.get("VmHWM", 0), "children_rss_kib": children}

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            _signal_group(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                _signal_group(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        shutil.rmtree(self._logdir, ignore_errors=True)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)  # start_new_session: the group id is the server's pid
    except ProcessLookupError:
        pass


def _status_fields(pid: int) -> dict[str, int]:
    fields: dict[str, int] = {}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return fields
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found
