"""The README, run as written: its "Run it" server (a real `carepath serve` on a free port, a fresh
database), its five-minute walk-through twice (it must be re-runnable), and its command-line examples;
each step answers what the README's text says it answers. Edit the README and this test follows it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

from carepath.engine.persistence.database import is_sqlite

from .support.readme import (
    README_API,
    Call,
    bash_blocks,
    newcomer_environment,
    newcomer_folder,
    recorded_calls,
    recording_curl,
    running_server,
    serve_command,
)


def test_the_readme_walk_through_runs_as_written(database_url: str, tmp_path: Path) -> None:
    folder = newcomer_folder(tmp_path)
    # SQLite: the default `./carepath.db`, created by the server in the fresh folder.
    env = newcomer_environment(None if is_sqlite(database_url) else database_url)
    serve = serve_command(bash_blocks("Run it")[0])
    (walk_through,) = bash_blocks("Five-minute walk-through")
    assert README_API in walk_through, f"the walk-through no longer sets API={README_API}"
    with running_server(serve, folder, env) as base:
        script = walk_through.replace(README_API, base)
        for run in ("first", "second"):
            calls = _run(script, folder, env, tmp_path / f"{run}-calls.jsonl")
            _check_story(calls, run)


def test_the_readme_command_line_examples_exit_0(tmp_path: Path) -> None:
    folder = newcomer_folder(tmp_path)
    (examples,) = bash_blocks("Command line")
    done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", examples], cwd=folder,
                          env=newcomer_environment(None), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    # What its comment says the simulation shows: a Friday 23:30 start, the reminder one business day
    # later on Monday, then the call done and scheduling next.
    assert "Fri 2026-03-06 23:30" in done.stdout
    assert re.search(r"Mon 2026-03-09 23:30 \S+ +Timer fired: 1 business day, call not done", done.stdout)
    assert "Completed 'Reminder: call patient not yet done'" in done.stdout
    assert "task ready  Schedule follow-up visit" in done.stdout


def _run(script: str, folder: Path, env: dict[str, str], log: Path) -> list[Call]:
    bin_dir = recording_curl(log)
    done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=folder,
                          env={**env, "PATH": f"{bin_dir}:{env['PATH']}"}, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, f"the walk-through exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr, done.stderr
    return recorded_calls(log)


def _calls_to(calls: list[Call], method: str, pattern: str) -> list[Call]:
    found = [c for c in calls if c.method == method and re.search(pattern, c.url)]
    assert found, f"the walk-through made no call {method} {pattern}: " + "; ".join(c.url for c in calls)
    return found


def _check_story(calls: list[Call], run: str) -> None:
    failed = [c.describe() for c in calls if c.status >= 400 or c.status == 0]
    assert not failed, f"{run} run: calls that failed:\n" + "\n".join(failed)
    overdue = [c.describe() for c in calls if any(t.get("overdue") for t in _tasks(c.json()))]
    assert not overdue, f"{run} run: the story shows overdue work its text does not mention:\n" + "\n".join(overdue)

    (deploy,) = _calls_to(calls, "POST", r"/api/pathways$")
    (start,) = _calls_to(calls, "POST", r"/api/pathways/post-ed-follow-up/instances$")
    assert start.status == 201, start.describe()
    instance = start.json()
    assert instance["status"] == "running" and instance["data"]["measure"] == "FUM", start.describe()
    assert [t["name"] for t in instance["open_tasks"]] == ["Call patient"], start.describe()

    call, schedule, close = _calls_to(calls, "POST", r"/api/tasks/[^/]+/complete$")
    assert [t["name"] for t in call.json()["open_tasks"]] == ["Schedule follow-up visit"], call.describe()
    assert schedule.json()["status"] == "running", schedule.describe()

    (message,) = _calls_to(calls, "POST", r"/api/messages$")
    answer = message.json()
    assert answer["outcome"] == "delivered" and answer["instance_ids"] == [instance["id"]], message.describe()

    ended = close.json()
    assert ended["status"] == "completed" and ended["ended_at"], close.describe()
    assert ended["data"]["follow_up_visit_date"] == ended["data"]["follow_up_date"], close.describe()

    (history,) = _calls_to(calls, "GET", rf"/api/instances/{instance['id']}/history$")
    types = [e["type"] for e in history.json()["items"]]
    assert types[0] == "instance_started" and types[-2:] == ["completed", "measure_outcomes"], history.describe()
    assert types.count("message_received") == 1, history.describe()

    (measures,) = _calls_to(calls, "GET", rf"/api/instances/{instance['id']}/measures$")
    met = {m["measure_id"]: m["status"] for m in measures.json()}
    claims = {"step 2 answers 200 with created false": deploy.status == 200 and not deploy.json()["processes"][0][
        "created"], "step 7: fum-7 and fum-30 met, the others not applicable": met == {
            "fum-7": "met", "fum-30": "met", "fua-7": "not_applicable", "fua-30": "not_applicable",
            "fmc-7": "not_applicable"}}
    assert all(claims.values()), f"{run} run: {claims} {met}\n{deploy.describe()}\n{measures.describe()}"


def _tasks(body: Any) -> list[dict[str, Any]]:
    """Every task an answer carries (an instance's open tasks, a list's items)."""
    if isinstance(body, dict):
        found = [body] if "overdue" in body else []
        return found + [t for v in body.values() for t in _tasks(v)]
    if isinstance(body, list):
        return [t for v in body for t in _tasks(v)]
    return []
