"""Schemathesis against `/openapi.json` (tests/support/fuzzing.py): every operation, as an admin and as a
coordinator, with a deployed pathway, an instance and its task, a user and a token, so ids exist. No
server error, and every answer's status, content type and body are the ones the document declares.

Bounded for CI (`CAREPATH_FUZZ_EXAMPLES`, default 6 examples per operation, user and kind of data, the
same examples every run). The longer run recorded in docs/api-fuzzing.md is this test with more examples,
drawn at random (`CAREPATH_FUZZ_RANDOM=1`), and `CAREPATH_FUZZ_REPORT=file` writing what it found."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from carepath.api.app import create_app
from carepath.api.bootstrap import deploy_directory
from carepath.api.settings import Settings
from carepath.engine.application import CarePath
from carepath.engine.usecases.users import add_user

from .support.api import ApiClient
from .support.fuzzing import Finding, FuzzRun, fuzz

EXAMPLES = int(os.environ.get("CAREPATH_FUZZ_EXAMPLES", "6"))
PATHWAY = Path(__file__).resolve().parents[1] / "bpmn" / "post-ed-follow-up.pathway.json"


@pytest.fixture
def fuzzed_app(engine: CarePath, database_url: str) -> Iterator[tuple[FastAPI, dict[str, str], dict[str, Any]]]:
    """The app with the shipped pathways, an admin, a coordinator, and things whose ids the fuzzer may
    use: an instance and its first task, a user other than those two and one of its tokens."""
    settings = Settings(database_url=database_url, deploy_shipped_pathways=False, scheduler_enabled=False)
    deploy_directory(engine, settings.pathways_path())
    app = create_app(settings, engine)
    users = {"admin": add_user(engine, "fuzz-admin", "admin"),
             "coordinator": add_user(engine, "fuzz-coordinator", "coordinator", ["care-coordinator"])}
    add_user(engine, "fuzz-target", "coordinator", ["care-coordinator"])
    with TestClient(app) as client:
        admin = {"Authorization": f"Bearer {users['admin']}"}
        started = client.post("/api/pathways/post-ed-follow-up/instances", headers=admin,
                              json={"business_key": "fuzz-1", "patient_id": "pat-fuzz",
                                    "data": json.loads(PATHWAY.read_text())["example_data"]})
        assert started.status_code == 201, started.text
        instance = started.json()
        (token,) = client.get("/api/users/fuzz-target/tokens", headers=admin).json()
    known = {"instance_id": instance["id"], "task_id": instance["open_tasks"][0]["id"], "key": "post-ed-follow-up",
             "version": 1, "name": "fuzz-target", "token_id": token["id"]}
    yield app, users, known


def test_every_operation_answers_as_documented(fuzzed_app: tuple[FastAPI, dict[str, str], dict[str, Any]]) -> None:
    app, users, known = fuzzed_app
    run = fuzz(app, users, known, max_examples=EXAMPLES, derandomize=not os.environ.get("CAREPATH_FUZZ_RANDOM"))
    assert len(run.operations) == len(_documented_operations(app)) and all(run.examples[o] for o in run.operations)
    if os.environ.get("CAREPATH_FUZZ_REPORT"):
        _write_report(Path(os.environ["CAREPATH_FUZZ_REPORT"]), run)
    assert not run.findings, f"{len(run.findings)} response(s) break the API's document:\n" + "\n".join(
        f.describe() for f in _unique(run.findings))


def _documented_operations(app: FastAPI) -> set[str]:
    return {f"{method.upper()} {path}" for path, item in app.openapi()["paths"].items() for method in item}


def _unique(findings: list[Finding]) -> list[Finding]:
    """One finding per operation, user, check and status."""
    seen: dict[tuple[str, str, str, int], Finding] = {}
    for f in findings:
        seen.setdefault((f.operation, f.user, f.check, f.status), f)
    return list(seen.values())


def _write_report(path: Path, run: FuzzRun) -> None:
    path.write_text(json.dumps({
        "operations": len(run.operations), "examples": sum(run.examples.values()),
        "examples_per_operation": dict(sorted(run.examples.items())),
        "statuses": {str(k): v for k, v in sorted(run.statuses.items())},
        "findings": [{"operation": f.operation, "user": f.user, "mode": f.mode, "check": f.check,
                      "status": f.status, "message": f.message[:500], "request": f.request[:500],
                      "response": f.response[:500]}
                     for f in _unique(run.findings)]}, indent=2))


def test_every_error_answer_is_declared_in_the_error_shape(api: ApiClient) -> None:
    """What the fuzzing cannot see in few examples: every operation behind a token declares 401 and 403,
    every one with parameters or a body 422, every one with a body 400 and 413, and each declared error
    is the one shape api/errors.py writes, as JSON (also where the success is HTML, SVG, XML or a file)."""
    document = api.client.get("/openapi.json").json()
    shape = {"$ref": "#/components/schemas/ErrorOut"}
    assert {"error", "message"} <= set(document["components"]["schemas"]["ErrorOut"]["required"])
    for path, item in document["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            needed = {"401", "403"} if operation.get("security") else set()
            needed |= {"422"} if operation.get("parameters") or operation.get("requestBody") else set()
            needed |= {"400", "413"} if operation.get("requestBody") else set()
            assert needed <= set(responses), f"{method.upper()} {path} does not declare {needed - set(responses)}"
            for status, response in responses.items():
                if status.startswith("4"):
                    assert response["content"] == {"application/json": {"schema": shape}}, (method, path, status)
