"""Timer firing in-process: `fire_due_timers` over a burst of due timers, with its SQL statements counted.

The workers' benchmark (`timers.py`) measures lateness on the wall clock with real processes, which a
loaded machine blurs; this one measures the firing path alone (one process, a fresh workflow cache, as
in a worker that did not start these instances) and counts the statements it sends per fired timer.
`python -m carepath.bench.timer_firing --database-url URL [--timers 1000] [--rounds 3]`
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, select

from carepath.engine.application import CarePath
from carepath.engine.clock import ManualClock
from carepath.engine.persistence.database import Database
from carepath.engine.persistence.tables import Event
from carepath.engine.usecases.timers import fire_due_timers

from .common import fresh_database, log
from .timers import load


def measure_firing(database_url: str, timers: int) -> dict[str, Any]:
    """Load `timers` instances whose timer is due, fire them all in this process; rate and statements."""
    due = datetime.now(UTC) + timedelta(seconds=1)
    load(database_url, timers, timers, 0, due, due)
    app = CarePath(Database(database_url), ManualClock(due + timedelta(seconds=1)))
    statements = 0

    def count(*_: Any) -> None:
        nonlocal statements
        statements += 1

    event.listen(app.db.engine, "before_cursor_execute", count)
    try:
        started, cpu_started = time.perf_counter(), time.process_time()
        fired = fire_due_timers(app, limit=timers)
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
        with app.db.read() as session:
            recorded = session.scalar(select(func.count()).select_from(Event).where(Event.type == "timer_fired"))
    finally:
        event.remove(app.db.engine, "before_cursor_execute", count)
        app.db.dispose()
    if recorded != timers or fired != timers:  # the template instance's own timer is a month away
        raise RuntimeError(f"fired {fired}, recorded {recorded} of {timers}")
    # The process's CPU time (the database's is not in it) varies less than wall time on a loaded machine.
    return {"timers": timers, "seconds": round(seconds, 2), "fired_per_second": round(fired / seconds, 1),
            "cpu_ms_per_timer": round(cpu_seconds * 1000 / fired, 2),
            "statements_per_timer": round(statements / fired, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--database-name", default="carepath_bench_firing")
    parser.add_argument("--timers", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for _ in range(args.rounds):
        url = fresh_database(args.database_url, Path("bench/results"), args.database_name)
        log("timer firing: " + json.dumps(measure_firing(url, args.timers)))


if __name__ == "__main__":
    main()
