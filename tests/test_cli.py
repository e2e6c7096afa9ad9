"""The command line: user add on a fresh database prints a working token on its last line."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from carepath.api.cli import main
from carepath.api.settings import Settings
from carepath.engine.application import CarePath
from carepath.engine.clock import ManualClock
from carepath.engine.persistence.database import Database
from carepath.engine.usecases.users import authenticate
from tests.support import diagrams as d
from tests.support.api import ApiClient


def test_user_add_on_a_fresh_database_prints_token_last(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    monkeypatch.setenv("CAREPATH_DATABASE_URL", url)
    assert main(["user", "add", "alice", "--role", "coordinator", "--group", "care-coordinator"]) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    principal = authenticate(CarePath(Database(url), ManualClock()), token)
    assert (principal.name, principal.role.value, set(principal.groups)) == (
        "alice", "coordinator", {"care-coordinator"})
    assert main(["user", "token", "alice"]) == 0
    second = capsys.readouterr().out.strip().splitlines()[-1]
    assert second != token and authenticate(CarePath(Database(url), ManualClock()), second).name == "alice"
    assert main(["user", "token", "nobody"]) == 1


def test_cli_errors_are_messages_not_tracebacks(tmp_path: Path) -> None:
    env = {"CAREPATH_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "PATH": "/usr/bin:/bin"}
    bad = tmp_path / "bad.bpmn"
    bad.write_text(d.linear_user_tasks("fu", "Call").replace('isExecutable="true"', 'isExecutable="false"'))
    result = subprocess.run([sys.executable, "-m", "carepath.api.cli", "validate", str(bad)],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "executable" in result.stderr.lower()
    twice = [sys.executable, "-m", "carepath.api.cli", "user", "add", "bob", "--role", "auditor"]
    assert subprocess.run(twice, capture_output=True, text=True, env=env, timeout=120).returncode == 0
    again = subprocess.run(twice, capture_output=True, text=True, env=env, timeout=120)
    assert again.returncode == 1 and "already exists" in again.stderr and "Traceback" not in again.stderr


def test_serve_refuses_several_workers_on_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CAREPATH_DATABASE_URL", f"sqlite:///{tmp_path / 'w.db'}")
    assert main(["serve", "--workers", "2"]) == 2
    assert "PostgreSQL" in capsys.readouterr().err
    assert Settings().database_url.startswith("sqlite")


def test_second_server_on_one_sqlite_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    import fcntl

    database = tmp_path / "one.db"
    monkeypatch.setenv("CAREPATH_DATABASE_URL", f"sqlite:///{database}")
    with open(f"{database}.serve.lock", "w") as held:  # as a running server holds it
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert main(["serve"]) == 2
    assert "already using this SQLite database" in capsys.readouterr().err


def test_worker_fires_timers_that_came_due_while_nothing_ran(api: ApiClient, database_url: str) -> None:
    lead = api.user("clinical_lead")
    api.deploy(lead, ("t.bpmn", d.boundary_timers("t", reminder="PT1H", escalation="P3650D")))
    started = api.start(lead, "t").json()  # the test clock is in January 2026: the reminder is long due
    env = {"CAREPATH_DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"}
    worker = subprocess.Popen([sys.executable, "-m", "carepath.api.cli", "worker"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        names: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "Reminder" not in names:
            time.sleep(0.5)
            names = [t["name"] for t in api.get(f"/api/instances/{started['id']}", lead).json()["open_tasks"]]
        assert sorted(names) == ["Call patient", "Reminder"]
    finally:
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=60)
    assert worker.returncode == 0, output


def test_docs_rules_prints_the_state_machine_as_docs_has_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["docs", "rules"]) == 0
    assert capsys.readouterr().out == (Path(__file__).parents[1] / "docs" / "state-machine.md").read_text()
