"""Shared pieces of the benchmark: databases, the server under test, users, percentiles."""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy.engine import make_url

from carepath.engine.persistence import migrate
from carepath.engine.persistence.database import Database, driver_url, is_sqlite

BENCH_DB = "carepath_bench"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def timed_gets(client: httpx.Client, path: str, times: int, **kwargs: Any) -> tuple[httpx.Response, list[float]]:
    """One warm-up GET (its response returned), then `times` timed ones: (warm-up response, seconds each)."""
    first = client.get(path, **kwargs)
    first.raise_for_status()
    samples = []
    for _ in range(times):
        t0 = time.perf_counter()
        client.get(path, **kwargs).raise_for_status()
        samples.append(time.perf_counter() - t0)
    return first, samples


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50/p95/p99 and mean of latencies in seconds, reported in milliseconds."""
    if not samples:
        return {"p50_ms": 0.0, "p95_ms": 0.0, "p99_ms": 0.0, "mean_ms": 0.0, "n": 0}
    ordered = sorted(samples)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)

    return {"p50_ms": at(0.50), "p95_ms": at(0.95), "p99_ms": at(0.99),
            "mean_ms": round(statistics.fmean(ordered) * 1000, 2), "n": len(ordered)}


def fresh_database(url: str | None, workdir: Path, name: str = BENCH_DB) -> str:
    """An empty, migrated database: a SQLite file in workdir, or a dedicated PostgreSQL database."""
    if url is None or is_sqlite(url):
        path = workdir / "bench.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        target = f"sqlite:///{path}"
    else:
        parsed = make_url(url)
        admin = driver_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(admin, autocommit=True) as connection:
            if parsed.database == name:  # the URL names the database itself: empty its schema in place
                connection.execute("DROP SCHEMA public CASCADE")
                connection.execute("CREATE SCHEMA public")
            else:
                connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                connection.execute(f"CREATE DATABASE {name}")
        target = parsed.set(database=name).render_as_string(hide_password=False)
    db = Database(target)
    migrate.upgrade(db.engine)
    db.dispose()
    return target


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
        return 0.0


@contextmanager
def running_server(database_url: str, workdir: Path) -> Iterator[Server]:
    """`carepath serve` as a real process on loopback; always stopped afterwards."""
    with running_servers(database_url, workdir, 1) as servers:
        yield servers[0]


@contextmanager
def running_servers(database_url: str, workdir: Path, count: int) -> Iterator[list[Server]]:
    """`count` `carepath serve` processes on loopback, each on its own port (API nodes, as behind a load
    balancer), all on one database; always stopped afterwards. The logs are server.log, server-2.log, …"""
    env = {**os.environ, "CAREPATH_DATABASE_URL": database_url, "CAREPATH_DEPLOY_SHIPPED_PATHWAYS": "true"}
    servers: list[Server] = []
    logs = []
    try:
        for index in range(count):
            port = free_port()
            log_file = open(workdir / ("server.log" if index == 0 else f"server-{index + 1}.log"), "wb")  # noqa: SIM115
            logs.append(log_file)
            process = subprocess.Popen([sys.executable, "-m", "carepath.api.cli", "serve", "--port", str(port)],
                                       env=env, stdout=log_file, stderr=subprocess.STDOUT)
            servers.append(Server(f"http://127.0.0.1:{port}", process))
            _wait_until_healthy(servers[-1], workdir)  # one at a time: the first one deploys the shipped pathways
        yield servers
    finally:
        for server in servers:
            stop(server.process)
        for log_file in logs:
            log_file.close()


def _wait_until_healthy(server: Server, workdir: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            break
        try:
            if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"the server did not start; see the server logs in {workdir}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate a server process, killing it if it does not stop within 20 s."""
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def add_user(database_url: str, name: str, role: str, *groups: str) -> str:
    args = [sys.executable, "-m", "carepath.api.cli", "user", "add", name, "--role", role]
    for group in groups:
        args += ["--group", group]
    env = {**os.environ, "CAREPATH_DATABASE_URL": database_url}
    output = subprocess.run(args, env=env, check=True, capture_output=True, text=True).stdout
    return output.strip().splitlines()[-1]
