"""The shipped pathways as `carepath serve` deploys them, for patients' stories told over the API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from carepath.api.app import create_app
from carepath.api.settings import Settings
from carepath.engine.application import CarePath
from carepath.engine.caches import LRUCache
from tests.support.api import ApiClient


@pytest.fixture
def shipped(engine: CarePath, database_url: str) -> Iterator[ApiClient]:
    """The service as `carepath serve` starts it: shipped pathways deployed at start-up. No workflow is
    kept in memory between requests, so every step of a story goes through a save/restore round trip."""
    engine.workflows = LRUCache(0)
    settings = Settings(database_url=database_url, deploy_shipped_pathways=True, scheduler_enabled=False)
    with TestClient(create_app(settings, engine), raise_server_exceptions=False) as client:
        yield ApiClient(client, engine)
