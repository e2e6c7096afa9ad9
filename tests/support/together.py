"""Run the same loop in several engines (processes, as far as the database can tell) at once."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any


def run_until_idle_together(apps: Sequence[Any], step: Callable[[Any], int]) -> None:
    """Each app in its own thread, released together, calls `step(app)` until it handles nothing."""
    barrier = threading.Barrier(len(apps))

    def run(app: Any) -> None:
        barrier.wait()
        while step(app):
            pass

    threads = [threading.Thread(target=run, args=(app,)) for app in apps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
