"""The audit trail at scale: a streamed export of 1,000,000 history rows over HTTP (time, throughput,
the server's memory before, during and after), and what recording one read of a patient's record costs.

History rows are bulk-inserted as the product writes them: chained per instance (seq, prev_hash,
hash), 1,000 rows per instance, so `carepath audit verify` would accept them."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert, select

from carepath.api.bootstrap import system_clock
from carepath.engine.application import CarePath
from carepath.engine.identity import Principal, Role
from carepath.engine.persistence.chain import GENESIS, as_stored, event_hash
from carepath.engine.persistence.database import Database
from carepath.engine.persistence.tables import Event, Instance, PathwayVersion
from carepath.engine.usecases.access import record_access

from .common import add_user, log, percentiles, running_server

PER_INSTANCE = 1000
BATCH = 10_000


def load_events(database_url: str, total: int) -> float:
    """Insert `total` chained history rows over total/1,000 instances; returns seconds taken."""
    started = time.monotonic()
    db = Database(database_url)
    try:
        with db.engine.begin() as connection:
            version_id = connection.scalar(select(PathwayVersion.id).limit(1))
        now = datetime.now(UTC)
        rows: list[dict[str, Any]] = []
        for n in range(total // PER_INSTANCE):
            instance_id = str(uuid.uuid4())
            with db.engine.begin() as connection:
                connection.execute(insert(Instance), [{
                    "id": instance_id, "pathway_version_id": version_id, "pathway_key": "post-ed-follow-up",
                    "business_key": f"audit-{n}", "patient_id": f"pat-{n}", "status": "completed", "state": "{}",
                    "data": {}, "incident": None, "call_bindings": {}, "lock_version": 1, "created_at": now,
                    "updated_at": now, "ended_at": now, "started_by": "bench"}])
            prev = GENESIS
            for seq in range(1, PER_INSTANCE + 1):
                row = {"instance_id": instance_id, "task_id": None, "pathway_version_id": version_id,
                       "type": "task_comment", "actor": f"coordinator-{seq % 50}",
                       "at": now + timedelta(milliseconds=seq),
                       "data": as_stored({"text": f"called the patient, note {seq}", "field": "comment"}),
                       "chain": instance_id, "seq": seq, "prev_hash": prev}
                row["hash"] = prev = event_hash(**row)
                rows.append(row)
            if len(rows) >= BATCH:
                with db.engine.begin() as connection:
                    connection.execute(insert(Event), rows)
                rows = []
                if (n + 1) % 100 == 0:
                    log(f"audit: {(n + 1) * PER_INSTANCE:,} of {total:,} history rows loaded")
        if rows:
            with db.engine.begin() as connection:
                connection.execute(insert(Event), rows)
    finally:
        db.dispose()
    return time.monotonic() - started


def measure_export(database_url: str, workdir: Path, fmt: str) -> dict[str, Any]:
    token = add_user(database_url, f"bench-auditor-{fmt}", "auditor")
    with running_server(database_url, workdir) as server:
        before = server.rss_mb()
        peak = [before]
        done = threading.Event()

        def watch() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], server.rss_mb())
                time.sleep(0.2)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        started, lines, size = time.monotonic(), 0, 0
        first_byte: float | None = None
        with httpx.stream("GET", f"{server.url}/api/audit/export", params={"format": fmt},
                          headers={"Authorization": f"Bearer {token}"}, timeout=3600) as response:
            response.raise_for_status()
            for chunk in response.iter_bytes():
                if first_byte is None:
                    first_byte = time.monotonic() - started
                size += len(chunk)
                lines += chunk.count(b"\n")
        seconds = time.monotonic() - started
        done.set()
        watcher.join()
        result = {"format": fmt, "lines": lines, "megabytes": round(size / 1e6, 1), "seconds": round(seconds, 1),
                  "rows_per_second": round(lines / seconds), "first_byte_s": round(first_byte or 0, 2),
                  "server_rss_mb_before": before, "server_rss_mb_peak": peak[0],
                  "server_rss_mb_after": server.rss_mb()}
        log(f"audit: export {fmt}: {result}")
        return result


def measure_access_recording(database_url: str, reads: int = 500) -> dict[str, Any]:
    """What logging one read of a record costs: one short transaction appending to the instance's chain."""
    app = CarePath(Database(database_url), system_clock)
    try:
        with app.db.read() as session:
            instance_id = session.scalar(select(Instance.id).limit(1))
        assert instance_id is not None
        viewer = Principal("bench-viewer", Role.AUDITOR)
        samples = []
        for _ in range(reads):
            started = time.perf_counter()
            record_access(app, viewer, "instance", instance_id)
            samples.append(time.perf_counter() - started)
        result = {"reads": reads, **percentiles(samples)}
        log(f"audit: recording a read: {result}")
        return result
    finally:
        app.db.dispose()


def measure_audit(database_url: str, workdir: Path, total: int) -> dict[str, Any]:
    log(f"audit: loading {total:,} chained history rows")
    load_seconds = load_events(database_url, total)
    return {"events": total, "load_seconds": round(load_seconds, 1),
            "exports": [measure_export(database_url, workdir, fmt) for fmt in ("jsonl", "fhir")],
            "recording_a_read": measure_access_recording(database_url)}
