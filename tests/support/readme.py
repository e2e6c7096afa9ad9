"""The README's shell blocks, a `carepath serve` started as its "Run it" section says, and a `curl` that
records what every call answered, so a test runs the README as a newcomer would and checks its claims."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from carepath.bench.common import free_port, stop

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SERVE = ".venv/bin/carepath serve"
README_API = "http://127.0.0.1:8000"


def bash_blocks(section: str) -> list[str]:
    """The ```bash blocks of the README section with this heading, in order."""
    text = README.read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(section)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, f"README.md has no section '## {section}'"
    blocks = re.findall(r"^```bash\n(.*?)^```", match.group(1), re.S | re.M)
    assert blocks, f"README.md's section '{section}' has no bash block"
    return blocks


def serve_command(run_it: str) -> list[str]:
    """The server part of the "Run it" command (`python3 -m venv .venv && ... && .venv/bin/carepath
    serve`): the virtual environment exists already, the tests run in it."""
    last = run_it.strip().split("&&")[-1].strip()
    assert last == SERVE, f"README's 'Run it' command no longer ends with `{SERVE}`: {run_it!r}"
    return last.split()


def newcomer_folder(folder: Path) -> Path:
    """A folder laid out like the clone the README's commands run in: `.venv` (the one running the tests)
    and `bpmn/`; the database `./carepath.db` is created there, fresh."""
    venv = Path(sys.prefix)
    assert (venv / "bin" / "carepath").exists(), f"the tests must run in a virtual environment with CarePath " \
                                                 f"installed (.venv/bin/carepath); {venv} has none"
    (folder / ".venv").symlink_to(venv)
    (folder / "bpmn").symlink_to(ROOT / "bpmn")
    return folder


def newcomer_environment(database_url: str | None) -> dict[str, str]:
    """The environment of a fresh shell: no CAREPATH_ setting but the database (None: the default)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREPATH_")}
    if database_url is not None:
        env["CAREPATH_DATABASE_URL"] = database_url
    return env


@contextmanager
def running_server(command: list[str], folder: Path, env: dict[str, str]) -> Iterator[str]:
    """`command --port N` in `folder` until it answers /readyz; its base URL. Stopped afterwards."""
    port = free_port()
    log = (folder / "serve.log").open("w")
    process = subprocess.Popen([*command, "--port", str(port)], cwd=folder, env=env, stdout=log,
                               stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(process, base, folder / "serve.log")
        yield base
    finally:
        stop(process)
        log.close()


def _wait_ready(process: subprocess.Popen[bytes], base: str, log: Path) -> None:
    for _ in range(600):
        if process.poll() is not None:
            raise AssertionError(f"`carepath serve` exited {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"`carepath serve` did not become ready:\n{log.read_text()}")


@dataclass(frozen=True)
class Call:
    """One curl call of a script: what was asked and what the server answered."""

    method: str
    url: str
    status: int
    body: str

    def json(self) -> Any:
        return json.loads(self.body)

    def describe(self) -> str:
        return f"{self.method} {self.url} answered {self.status}: {self.body[:500]}"


# Runs the real curl with the script's arguments, prints the body as `curl -s` would, and appends the
# method, URL, status and body to the log.
CURL_RECORDER = '''#!{python}
import json, subprocess, sys, tempfile
args = sys.argv[1:]
with tempfile.NamedTemporaryFile() as body:
    done = subprocess.run([{curl!r}, *args, "-o", body.name, "-w", "%{{http_code}}"], stdout=subprocess.PIPE)
    content = open(body.name, "rb").read()
sys.stdout.buffer.write(content)
sys.stdout.flush()
method = args[args.index("-X") + 1] if "-X" in args else (
    "POST" if any(a in ("-d", "--data", "-F", "--form") for a in args) else "GET")
url = next((a for a in args if a.startswith("http")), "")
status = int(done.stdout or 0)
with open({log!r}, "a") as log:
    log.write(json.dumps({{"method": method, "url": url, "status": status,
                          "body": content.decode("utf-8", "replace")}}) + "\\n")
sys.exit(done.returncode)
'''


def recording_curl(log: Path) -> Path:
    """A folder holding a `curl` that records every call in `log`; put it first on PATH."""
    curl = shutil.which("curl")
    assert curl, "the README's walk-through needs curl"
    bin_dir = log.parent / f"{log.stem}-bin"
    bin_dir.mkdir()
    script = bin_dir / "curl"
    script.write_text(CURL_RECORDER.format(python=sys.executable, curl=curl, log=str(log)))
    script.chmod(0o755)
    return bin_dir


def recorded_calls(log: Path) -> list[Call]:
    if not log.exists():
        return []
    return [Call(**json.loads(line)) for line in log.read_text().splitlines()]
