"""OpenID Connect bearer tokens, signed with keys the test makes itself; API tokens keep working."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from sqlalchemy import select

from carepath.api.app import create_app
from carepath.api.settings import Settings
from carepath.engine.application import CarePath
from carepath.engine.identity import SYSTEM
from carepath.engine.persistence.tables import Event
from carepath.engine.usecases.users import add_user, deactivate_user
from tests.support import diagrams as d

ISSUER, AUDIENCE = "https://login.hospital.test/realms/care", "carepath"


def _key(kid: str) -> tuple[Any, dict[str, Any]]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    return private, {**public, "kid": kid, "use": "sig", "alg": "RS256"}


@pytest.fixture(scope="module")
def keys() -> dict[str, Any]:
    signing, published = _key("k1")
    stranger, _ = _key("k2")
    return {"signing": signing, "stranger": stranger, "jwks": json.dumps({"keys": [published]})}


@pytest.fixture
def client(engine: CarePath, database_url: str, keys: dict[str, Any]) -> Iterator[TestClient]:
    settings = Settings(database_url=database_url, deploy_shipped_pathways=False, scheduler_enabled=False,
                        oidc_issuer=ISSUER, oidc_audience=AUDIENCE, oidc_jwks=keys["jwks"],
                        oidc_roles_claim="realm_access.roles")
    with TestClient(create_app(settings, engine), raise_server_exceptions=False) as test_client:
        yield test_client


def _token(key: Any, kid: str = "k1", **overrides: Any) -> str:
    claims = {"iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 300, "preferred_username": "dr-ng",
              "realm_access": {"roles": ["offline_access", "clinical_lead"]}, "groups": ["/care-coordinator"]}
    claims.update(overrides)
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


def _get(client: TestClient, token: str) -> Any:
    return client.get("/api/pathways", headers={"Authorization": f"Bearer {token}"})


def test_valid_token_maps_user_role_and_groups(client: TestClient, keys: dict[str, Any]) -> None:
    token = _token(keys["signing"])
    upload = [("files", ("fu.bpmn", d.linear_user_tasks("fu", "Call", lane="Care Coordinator").encode(),
                         "application/xml"))]
    deployed = client.post("/api/pathways", headers={"Authorization": f"Bearer {token}"}, files=upload)
    assert deployed.status_code == 201  # the clinical_lead role came from realm_access.roles
    started = client.post("/api/pathways/fu/instances", headers={"Authorization": f"Bearer {token}"},
                          json={"business_key": "b1"}).json()
    task = started["open_tasks"][0]["id"]
    done = client.post(f"/api/tasks/{task}/complete", headers={"Authorization": f"Bearer {token}"},
                       json={"data": {}})
    assert done.status_code == 200 and done.json()["status"] == "completed"  # group from the groups claim


@pytest.mark.parametrize(("case", "message"), [
    ("expired", "expired"), ("audience", "not valid"), ("issuer", "not valid"), ("stranger", "key"),
    ("no_role", "no CarePath role")])
def test_bad_tokens_are_401(client: TestClient, keys: dict[str, Any], case: str, message: str) -> None:
    token = {
        "expired": lambda: _token(keys["signing"], exp=int(time.time()) - 120),
        "audience": lambda: _token(keys["signing"], aud="someone-else"),
        "issuer": lambda: _token(keys["signing"], iss="https://evil.test"),
        "stranger": lambda: _token(keys["stranger"], kid="k2"),
        "no_role": lambda: _token(keys["signing"], realm_access={"roles": ["offline_access"]}),
    }[case]()
    response = _get(client, token)
    assert response.status_code == 401 and message in response.json()["message"]


def test_api_tokens_keep_working_and_deactivated_users_are_refused(client: TestClient, engine: CarePath,
                                                                   keys: dict[str, Any]) -> None:
    api_token = add_user(engine, "svc", "auditor")
    assert _get(client, api_token).status_code == 200
    add_user(engine, "dr-ng", "clinical_lead")
    deactivate_user(engine, SYSTEM, "dr-ng")
    assert _get(client, _token(keys["signing"])).status_code == 401


def _oidc_client(engine: CarePath, database_url: str, keys: dict[str, Any], **more: Any) -> TestClient:
    return TestClient(create_app(Settings(
        database_url=database_url, deploy_shipped_pathways=False, scheduler_enabled=False, oidc_issuer=ISSUER,
        oidc_audience=AUDIENCE, oidc_jwks=keys["jwks"], oidc_roles_claim="realm_access.roles", **more), engine),
        raise_server_exceptions=False)


def _events_of(engine: CarePath, kind: str) -> list[Any]:
    with engine.db.read() as session:
        return list(session.scalars(select(Event).where(Event.type == kind).order_by(Event.id)))


def test_a_bearer_token_that_changes_a_known_users_role_is_recorded(engine: CarePath, database_url: str,
                                                                   keys: dict[str, Any]) -> None:
    """The provider is the source of truth (the default): a local record the claims no longer match is
    brought in line, and the change is in the history; a user with no record stays without one."""
    with _oidc_client(engine, database_url, keys) as client:
        assert _get(client, _token(keys["signing"], preferred_username="dr-new")).status_code == 200
        assert _events_of(engine, "user_added") == []
        add_user(engine, "dr-ng", "coordinator", ["care-coordinator"])
        assert _get(client, _token(keys["signing"])).status_code == 200
        assert _get(client, _token(keys["signing"])).status_code == 200  # in line now: recorded once
    [changed] = _events_of(engine, "user_role_changed")
    assert (changed.data["old"], changed.data["new"], changed.data["by"]) == ("coordinator", "clinical_lead", "oidc")
    assert _events_of(engine, "user_groups_changed") == []


def test_with_roles_not_from_the_provider_a_bearer_token_acts_as_the_local_record(
        engine: CarePath, database_url: str, keys: dict[str, Any]) -> None:
    upload = [("files", ("fu.bpmn", d.linear_user_tasks("fu", "Call", lane="Care Coordinator").encode(),
                         "application/xml"))]
    with _oidc_client(engine, database_url, keys, oidc_roles_from_provider=False) as client:
        first = _token(keys["signing"], preferred_username="dr-first")
        assert _get(client, first).status_code == 200  # the first use makes the record from the claims
        assert [e.data["role"] for e in _events_of(engine, "user_added")] == ["clinical_lead"]
        add_user(engine, "dr-ng", "auditor")
        token = _token(keys["signing"])  # claims clinical_lead; the local record says auditor
        deployed = client.post("/api/pathways", headers={"Authorization": f"Bearer {token}"}, files=upload)
        assert deployed.status_code == 403 and "auditor" in deployed.json()["message"]
    assert _events_of(engine, "user_role_changed") == []
