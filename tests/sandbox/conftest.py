"""Sandbox test fixtures: one shared script pool for the session, stopped at the end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from carepath.engine.sandbox import run_script, shutdown_script_pool


@pytest.fixture(scope="session", autouse=True)
def _script_pool() -> Iterator[None]:
    yield
    shutdown_script_pool()


@pytest.fixture
def assert_pool_still_works() -> Iterator[None]:
    """After the test, an ordinary script must still run: no escape may break the worker pool."""
    yield
    assert run_script("total = a + b", {"a": 2, "b": 3}, timeout_s=30) == {"a": 2, "b": 3, "total": 5}
