"""ACKs over MLLP: a realistic ADT stream sent to a real `carepath mllp` process, and the inbox backlog.

`connections` senders each send their share one message at a time, waiting for the ACK as an interface
engine does. The listener runs as deployed: `carepath mllp`, which on PostgreSQL routes in
`--routing-processes` processes of its own (default 1; 0: a `carepath worker` is started beside it to
route) and on SQLite on a thread of the listener. Recorded: ACKs per second, ACK latency (p50/p95/p99),
that every answer is AA, and, apart from the ACKs, the routing: messages routed per second (and those
that started or moved an episode), the largest backlog seen (sampled every 50 ms) and how long after the
last ACK the inbox still had messages waiting (the drain time): a fast ACK rate must not hide a growing
backlog. The load average is recorded beside the figures (the machine may be shared).

    python -m carepath.bench.mllp [--database-url postgresql+psycopg://...] [--messages 2000] [--connections 4]
                                  [--routing-processes N] [--routing-threads T]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from carepath.api.bootstrap import build_engine, deploy_directory
from carepath.api.settings import Settings
from carepath.engine.persistence.database import Database
from carepath.engine.persistence.tables import InboxMessage, Instance

from .common import BENCH_DB, free_port, fresh_database, log, percentiles, stop

EVENTS = ("A04", "A01", "A08", "A03")  # a visit's life: registered, admitted, updated, discharged
NAMES = ("Nguyễn^Anh", "Müller^Jörg", "García^José", "O'Brien^Siobhán", "Smith^John", "Øster^Åse")


def _pv1(patient: int) -> str:
    """PV1 with the fields routing reads at their places: class (2: every other patient an ED visit, the rest
    inpatient stays), location (3), visit number (19), discharge disposition (36: 01 home), admitted (44) and
    discharged (45)."""
    fields = [""] * 46
    fields[1], fields[2], fields[3], fields[7] = "1", "E" if patient % 2 else "I", "ED^^^GENHOSP", "1234^Welby^Marcus"
    fields[19], fields[36] = f"V{patient:08d}^^^GENHOSP^VN", "01"
    fields[44], fields[45] = "20260104220000", "20260105091500"
    return "PV1|" + "|".join(fields[1:])


def adt_stream(count: int, sender: str = "EPIC") -> list[bytes]:
    """`count` UTF-8 ADT messages: visits of count/4 patients, each through the four events in order."""
    messages = []
    for n in range(count):
        patient, event = n // len(EVENTS), EVENTS[n % len(EVENTS)]
        segments = [
            f"MSH|^~\\&|{sender}|GENHOSP|CAREPATH|CARE|20260105{n % 86400:06d}||ADT^{event}^ADT_{event}|"
            f"{sender}-{n:08d}|P|2.5.1||||||UNICODE UTF-8",
            f"EVN|{event}|20260105091500",
            f"PID|1||MRN{patient:07d}^^^GENHOSP^MR~{900000 + patient}^^^GENHOSP^PI||{NAMES[patient % len(NAMES)]}"
            "||19580214|F|||12 Elm St^^Springfield^IL^62701||(217)555-0101",
            _pv1(patient),
            "DG1|1||F32.9^Major depressive disorder^I10||20260105|F|||||||||1",
        ]
        messages.append(("\r".join(segments) + "\r").encode("utf-8"))
    return messages


def _send_all(port: int, messages: list[bytes], latencies: list[float], codes: list[str]) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        for message in messages:
            started = time.perf_counter()
            sock.sendall(b"\x0b" + message + b"\x1c\x0d")
            answer = b""
            while not answer.endswith(b"\x1c\x0d"):
                chunk = sock.recv(4096)
                if not chunk:
                    raise ConnectionError("the listener closed the connection")
                answer += chunk
            latencies.append(time.perf_counter() - started)
            codes.append(answer.split(b"MSA|", 1)[1][:2].decode())


def _waiting(db: Database) -> int:
    with db.read() as session:
        return session.scalar(select(func.count()).select_from(InboxMessage).where(
            InboxMessage.state == "received")) or 0


def _deploy_shipped(database_url: str) -> None:
    """The shipped pathways, deployed as `carepath serve` deploys them at start-up: their ADT triggers are
    what the listener's router acts on (ED discharges start post-ED follow-ups, admissions reach them)."""
    settings = Settings(database_url=database_url)
    engine = build_engine(settings)
    try:
        for _ in deploy_directory(engine, settings.pathways_path()):
            pass
    finally:
        engine.db.dispose()


def _outcomes(db: Database) -> dict[str, int]:
    with db.read() as session:
        found = dict(session.execute(select(InboxMessage.state, func.count()).group_by(InboxMessage.state)).all())
        found["episodes"] = session.scalar(select(func.count()).select_from(Instance)) or 0
    return {str(k): int(v) for k, v in found.items()}


class BacklogSampler:
    """The inbox's waiting messages every 50 ms, on a thread: the largest backlog seen."""

    def __init__(self, db: Database) -> None:
        self.db, self.largest = db, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.largest = max(self.largest, _waiting(self.db))

    def __enter__(self) -> BacklogSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def _start_listener(database_url: str, port: int, routing_processes: int | None,
                    routing_threads: int) -> list[subprocess.Popen[bytes]]:
    """`carepath mllp` as configured, and `carepath worker` beside it when the listener routes nothing."""
    env = {**os.environ, "CAREPATH_DATABASE_URL": database_url, "CAREPATH_SWEEP_SECONDS": "5"}
    command = [sys.executable, "-m", "carepath.api.cli", "mllp", "--port", str(port),
               "--routing-threads", str(routing_threads)]
    if routing_processes is not None:
        command += ["--routing-processes", str(routing_processes)]
    started = [subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    if routing_processes == 0:
        started.append(subprocess.Popen([sys.executable, "-m", "carepath.api.cli", "worker", "--routing-threads",
                                         str(routing_threads)], env=env, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL))
    for _ in range(600):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    return started


def _send_stream(port: int, messages: int, connections: int) -> tuple[list[float], list[str]]:
    stream = adt_stream(messages)
    # A patient's events go over one connection in order, as one feed sends them (patients spread over the
    # connections), so the inbox's per-patient order is the order of the visit.
    per_patient = len(EVENTS)
    shares = [[m for n, m in enumerate(stream) if (n // per_patient) % connections == i] for i in range(connections)]
    latencies: list[float] = []
    codes: list[str] = []
    senders = [threading.Thread(target=_send_all, args=(port, share, latencies, codes)) for share in shares]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
    return latencies, codes


def measure_mllp(database_url: str, messages: int = 2000, connections: int = 4, routing_processes: int | None = None,
                 routing_threads: int = 4) -> dict[str, Any]:
    _deploy_shipped(database_url)
    port = free_port()
    processes = _start_listener(database_url, port, routing_processes, routing_threads)
    db = Database(database_url)
    load_before = os.getloadavg()
    try:
        with BacklogSampler(db) as backlog:
            started = time.perf_counter()
            latencies, codes = _send_stream(port, messages, connections)
            acked = time.perf_counter() - started
            backlog_at_last_ack = _waiting(db)
            while _waiting(db):
                time.sleep(0.05)
            drained = time.perf_counter() - started
        outcomes = _outcomes(db)
    finally:
        for process in processes:
            stop(process)
        db.dispose()
    moved = outcomes.get("started", 0) + outcomes.get("delivered", 0)
    return {"messages": messages, "connections": connections, "routing_processes": routing_processes,
            "routing_threads": routing_threads, "acks_per_second": round(len(codes) / acked, 1),
            "ack_latency": percentiles(latencies), "all_aa": codes.count("AA") == messages,
            "backlog_at_last_ack": backlog_at_last_ack, "backlog_largest": max(backlog.largest, backlog_at_last_ack),
            "backlog_lag_seconds": round(drained - acked, 2), "processed_per_second": round(messages / drained, 1),
            "episode_moves_per_second": round(moved / drained, 1), "outcomes": outcomes,
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()]}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m carepath.bench.mllp")
    parser.add_argument("--database-url", help="PostgreSQL server URL (a database 'carepath_bench_mllp' is "
                        "dropped and created there); default: a SQLite file")
    parser.add_argument("--database-name", default=f"{BENCH_DB}_mllp")
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--routing-processes", type=int, default=None, help="passed to `carepath mllp` "
                        "(PostgreSQL; default: its own default, 1); 0 starts a `carepath worker` to route")
    parser.add_argument("--routing-threads", type=int, default=4)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        url = fresh_database(args.database_url, Path(workdir), args.database_name)
        log(f"sending {args.messages} ADT messages over {args.connections} MLLP connections")
        result = measure_mllp(url, args.messages, args.connections, args.routing_processes, args.routing_threads)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "mllp.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
