"""The registry of partner organizations: admins manage it, the secret is shown once, endpoints are checked."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from carepath.api.cli import main
from carepath.engine.application import CarePath
from carepath.engine.identity import SYSTEM
from carepath.engine.persistence.unit_of_work import UnitOfWork
from carepath.engine.usecases.partners import add_partner, partner_for_account, partner_for_directory_organization
from tests.support.api import ApiClient

KEY = b"k" * 40


@pytest.fixture
def registry(api: ApiClient) -> Iterator[ApiClient]:
    api.engine.config = replace(api.engine.config, partner_secret_key=KEY, partner_allow_http_loopback=True)
    yield api


def _body(**overrides: object) -> dict[str, object]:
    return {"id": "eastside-food-bank", "name": "Eastside Food Bank", "endpoint_url": "https://cbo.example/hook",
            "directory_organizations": ["org-1"], **overrides}


def test_an_admin_registers_a_partner_and_sees_its_secret_only_once(registry: ApiClient) -> None:
    admin, coordinator = registry.user("admin"), registry.user("coordinator")
    made = registry.post("/api/partners", admin, _body())
    assert made.status_code == 201, made.text
    secret = made.json()["secret"]
    assert len(secret) > 30 and made.json()["partner"]["secret_fingerprint"] == hashlib.sha256(
        secret.encode()).hexdigest()[:12]
    for reader in (admin, coordinator):
        one = registry.get("/api/partners/eastside-food-bank", reader)
        listed = registry.get("/api/partners", reader)
        assert one.status_code == listed.status_code == 200
        assert one.json()["directory_organizations"] == ["org-1"] and one.json()["state"] == "active"
        assert secret not in one.text and secret not in listed.text and "secret\"" not in one.text
    history = registry.get("/api/audit/events", registry.user("auditor"))
    assert history.status_code == 200 and "partner_added" in history.text and secret not in history.text
    rotated = registry.post("/api/partners/eastside-food-bank/rotate-secret", admin)
    assert rotated.status_code == 200 and rotated.json()["secret"] != secret
    assert rotated.json()["partner"]["secret_fingerprint"] != made.json()["partner"]["secret_fingerprint"]


def test_only_admins_change_the_registry_and_workers_read_it(registry: ApiClient) -> None:
    admin = registry.user("admin")
    assert registry.post("/api/partners", admin, _body()).status_code == 201
    for role in ("coordinator", "supervisor", "clinical_lead", "integration"):
        user = registry.user(role)
        assert registry.post("/api/partners", user, _body(id="other")).status_code == 403
        assert registry.client.patch("/api/partners/eastside-food-bank", headers=registry.headers(user),
                                     json={"name": "x"}).status_code == 403
        assert registry.post("/api/partners/eastside-food-bank/rotate-secret", user).status_code == 403
        assert registry.post("/api/partners/eastside-food-bank/deactivate", user).status_code == 403
    assert registry.get("/api/partners", registry.user("auditor")).status_code == 403
    assert registry.get("/api/partners", registry.user("integration")).status_code == 403
    assert registry.get("/api/partners/nobody", admin).status_code == 404


@pytest.mark.parametrize("url", ["http://cbo.example/hook", "ftp://cbo.example/", "https://user:pw@cbo.example/",
                                 "not a url", "https:///no-host", "https://cbo.example/\x00"])
def test_a_bad_endpoint_is_refused_naming_the_field(registry: ApiClient, url: str) -> None:
    admin = registry.user("admin")
    answer = registry.post("/api/partners", admin, _body(endpoint_url=url))
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"] == "endpoint_url"
    registry.post("/api/partners", admin, _body(endpoint_url=None))
    changed = registry.client.patch("/api/partners/eastside-food-bank", headers=registry.headers(admin),
                                    json={"endpoint_url": url})
    assert changed.status_code == 422 and changed.json()["errors"][0]["field"] == "endpoint_url"


def test_plain_http_to_loopback_needs_the_setting(registry: ApiClient) -> None:
    admin = registry.user("admin")
    assert registry.post("/api/partners", admin, _body(endpoint_url="http://127.0.0.1:9/x")).status_code == 201
    registry.engine.config = replace(registry.engine.config, partner_allow_http_loopback=False)
    changed = registry.client.patch("/api/partners/eastside-food-bank", headers=registry.headers(admin),
                                    json={"endpoint_url": "http://localhost:9/x"})
    assert changed.status_code == 422 and "CAREPATH_PARTNER_ALLOW_HTTP_LOOPBACK" in changed.text


def test_the_acting_account_is_an_integration_account_of_one_partner(registry: ApiClient) -> None:
    admin, coordinator, system = registry.user("admin"), registry.user("coordinator"), registry.user("integration")
    refused = registry.post("/api/partners", admin, _body(account=coordinator))
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "account"
    assert registry.post("/api/partners", admin, _body(account=system)).status_code == 201
    taken = registry.post("/api/partners", admin, _body(id="second", account=system, directory_organizations=[]))
    assert taken.status_code == 422 and "acts for partner 'eastside-food-bank'" in taken.text
    org_taken = registry.post("/api/partners", admin, _body(id="third"))
    assert org_taken.status_code == 422 and org_taken.json()["errors"][0]["field"] == "directory_organizations"


def test_the_referral_lookups_find_active_partners_only(registry: ApiClient) -> None:
    admin, system = registry.user("admin"), registry.user("integration")
    assert registry.post("/api/partners", admin, _body(account=system)).status_code == 201
    with UnitOfWork(registry.engine) as uow:
        assert partner_for_account(uow, system) == "eastside-food-bank"
        assert partner_for_directory_organization(uow, "org-1") == "eastside-food-bank"
        assert partner_for_account(uow, admin) is None and partner_for_directory_organization(uow, "org-2") is None
    deactivated = registry.post("/api/partners/eastside-food-bank/deactivate", admin)
    assert deactivated.status_code == 200 and deactivated.json()["state"] == "inactive"
    assert registry.post("/api/partners/eastside-food-bank/deactivate", admin).status_code == 409
    with UnitOfWork(registry.engine) as uow:
        assert partner_for_account(uow, system) is None and partner_for_directory_organization(uow, "org-1") is None


def test_changes_name_the_fields_and_keep_the_others(registry: ApiClient) -> None:
    admin = registry.user("admin")
    registry.post("/api/partners", admin, _body())
    changed = registry.client.patch("/api/partners/eastside-food-bank", headers=registry.headers(admin),
                                    json={"directory_organizations": ["org-2", "org-3"], "endpoint_url": None})
    assert changed.status_code == 200, changed.text
    assert changed.json()["directory_organizations"] == ["org-2", "org-3"] and changed.json()["endpoint_url"] is None
    assert changed.json()["name"] == "Eastside Food Bank"


def test_no_partner_without_the_servers_key(api: ApiClient) -> None:
    refused = api.post("/api/partners", api.user("admin"), _body())
    assert refused.status_code == 409 and "CAREPATH_PARTNER_SECRET_KEY" in refused.text
    assert api.get("/api/partners", api.user("admin")).json() == []


def test_the_command_line_prints_the_secret_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CAREPATH_DATABASE_URL", f"sqlite:///{tmp_path / 'p.db'}")
    monkeypatch.setenv("CAREPATH_PARTNER_SECRET_KEY", "s" * 40)
    assert main(["partners", "add", "eastside", "--name", "Eastside", "--endpoint", "https://cbo.example/h",
                 "--directory-org", "org-1"]) == 0
    secret = capsys.readouterr().out.strip().splitlines()[-1]
    assert secret.startswith("cps_")
    assert main(["partners", "list"]) == 0
    listed = capsys.readouterr().out
    assert "eastside\tactive" in listed and secret not in listed
    assert main(["partners", "rotate-secret", "eastside"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] not in (secret, "")
    assert main(["partners", "deactivate", "eastside"]) == 0 and "inactive" in capsys.readouterr().out
    assert main(["partners", "add", "Bad Id", "--name", "x"]) == 1


def test_the_secret_is_derived_not_stored(engine: CarePath) -> None:
    """A copy of the database signs nothing: the secret comes from the server's key and the row's salt."""
    engine.config = replace(engine.config, partner_secret_key=KEY)
    made = add_partner(engine, SYSTEM, "eastside", "Eastside")
    with engine.db.engine.connect() as connection:
        dumped = "\n".join(str(row) for row in connection.exec_driver_sql("SELECT * FROM partner_organizations"))
    assert made.secret not in dumped and made.secret[4:20] not in dumped
