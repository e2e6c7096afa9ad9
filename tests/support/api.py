"""A thin test client: users with tokens, and one-line calls for the common requests."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.testclient import TestClient
from httpx import Response

from carepath.engine.application import CarePath
from carepath.engine.persistence.tables import Instance, PathwayVersion
from carepath.engine.runtime.workflow import RunningWorkflow
from carepath.engine.usecases.specs import resolve_specs
from carepath.engine.usecases.users import add_user


class ApiClient:
    def __init__(self, client: TestClient, engine: CarePath) -> None:
        self.client = client
        self.engine = engine
        self._tokens: dict[str, str] = {}

    def user(self, role: str, *groups: str, name: str | None = None) -> str:
        name = name or f"{role}-{uuid.uuid4().hex[:6]}"
        self._tokens[name] = add_user(self.engine, name, role, groups)
        return name

    def headers(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._tokens[user]}"}

    def get(self, path: str, user: str, **kwargs: Any) -> Response:
        return self.client.get(path, headers=self.headers(user), **kwargs)

    def post(self, path: str, user: str, json: Any = None, **kwargs: Any) -> Response:
        return self.client.post(path, headers=self.headers(user), json=json, **kwargs)

    def deploy(self, user: str, *files: tuple[str, str | bytes]) -> Response:
        upload = [("files", (name, content if isinstance(content, bytes) else content.encode(), "application/xml"))
                  for name, content in files]
        return self.client.post("/api/pathways", headers=self.headers(user), files=upload)

    def start(self, user: str, key: str, business_key: str | None = None, **body: Any) -> Response:
        return self.post(f"/api/pathways/{key}/instances", user,
                         {"business_key": business_key or f"bk-{uuid.uuid4().hex[:8]}", **body})

    def workflow(self, instance_id: str) -> RunningWorkflow:
        """The instance's workflow as the engine restores it from the stored state."""
        with self.engine.db.read() as session:
            row = session.get(Instance, instance_id)
            assert row is not None, instance_id
            version = session.get(PathwayVersion, row.pathway_version_id)
            assert version is not None
            resolved = resolve_specs(self.engine, session, version, row.call_bindings)
            return RunningWorkflow.restore(row.state, resolved.spec, resolved.subprocess_specs, resolved.family,
                                           self.engine.script_engine)
