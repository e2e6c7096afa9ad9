"""Schemathesis against the app's own `/openapi.json`: every operation, as each given user, with data that
fits the documented schema and data that does not, a bounded number of examples each. Every response is
checked: no server error, a documented status code and content type, a body that fits the documented
schema. Findings are collected over the whole run (not stopped at the first), to be read as one list."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@dataclass(frozen=True)
class Finding:
    """One response that broke a check, with what reproduces it."""

    operation: str
    user: str
    mode: str
    check: str
    status: int
    message: str
    request: str
    response: str
    sent: str = field(compare=False, hash=False, default="")
    """repr() of what was sent: path parameters, query, headers and body"""
    body: Any = field(compare=False, hash=False, default=None)

    def describe(self) -> str:
        return (f"{self.operation} as {self.user} ({self.mode}): {self.check}, {self.status}\n"
                f"  {self.message.strip()[:300]}\n  request: {self.request[:400]}\n"
                f"  response: {self.response[:300]}")


@dataclass
class FuzzRun:
    operations: set[str] = field(default_factory=set)
    examples: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)


def fuzz(app: Any, users: Mapping[str, str], known_ids: Mapping[str, Any], *, max_examples: int,
         derandomize: bool) -> FuzzRun:
    """Fuzz every operation of `app` as each of `users` (name -> API token). Path parameters named in
    `known_ids` are, in about half the examples, that existing thing (so the operation gets past 404)."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    run = FuzzRun()
    for result in schema.get_all_operations():
        operation = result.ok()
        run.operations.add(operation.label)
        fixed = {p.name: known_ids[p.name] for p in operation.path_parameters if p.name in known_ids}
        for user, token in users.items():
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                strategy = operation.as_strategy(generation_mode=mode)
                if fixed:
                    strategy = st.one_of(strategy, operation.as_strategy(generation_mode=mode, path_parameters=fixed))
                _examples(strategy, run, user, {"Authorization": f"Bearer {token}"}, mode.value, max_examples,
                          derandomize)
    return run


def _examples(strategy: Any, run: FuzzRun, user: str, headers: dict[str, str], mode: str, max_examples: int,
              derandomize: bool) -> None:
    @given(strategy)
    @settings(max_examples=max_examples, deadline=None, database=None, derandomize=derandomize,
              suppress_health_check=list(HealthCheck))
    def example(case: Any) -> None:
        run.examples[case.operation.label] += 1
        try:
            response = case.call(headers=headers)
        except Exception as exc:  # the app raised (the client got a 500): a finding like any other
            run.statuses[500] += 1
            run.findings.append(_finding(case, user, mode, headers, "Server error (the app raised)", 500,
                                         f"{type(exc).__name__}: {exc}", ""))
            return
        run.statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except FailureGroup as group:
            run.findings.extend(_finding(case, user, mode, headers, failure.title, response.status_code,
                                         failure.message, response.text) for failure in group.exceptions)

    try:
        example()
    except Unsatisfiable:
        # Only an operation with nothing to break (no parameters, no body) has no data that does not fit
        # its schema; its positive examples ran.
        assert mode == GenerationMode.NEGATIVE.value, "no example could be generated"


def _finding(case: Any, user: str, mode: str, headers: dict[str, str], check: str, status: int, message: str,
             response: str) -> Finding:
    return Finding(operation=case.operation.label, user=user, mode=mode, check=check, status=status,
                   message=message, request=case.as_curl_command(headers=headers), response=response,
                   body=case.body, sent=repr((case.path_parameters, case.query, case.headers, case.body)))
