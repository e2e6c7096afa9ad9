"""An admin in a real browser: signs in, adds a user (the token shown once), creates a token for them and
deactivates them; the engine sees each change; every admin screen passes an axe-core scan, errors shown too.
And signing in through an identity provider (a fake one on another loopback port) lands on the worklist."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser

from carepath.api.app import create_app
from carepath.api.settings import Settings
from carepath.engine.application import CarePath
from carepath.engine.identity import Principal, Role
from carepath.engine.usecases.users import authenticate, get_user, list_tokens
from tests.support.oidc_provider import CLIENT_ID, CLIENT_SECRET, FakeProvider, rsa_key, s256
from tests.support.server import running
from tests.support.web import web_user

from .conftest import Visit, serious_violations

pytestmark = pytest.mark.browser
ADMIN = Principal("ada", Role.ADMIN, frozenset())






def test_an_admin_adds_a_user_gives_them_a_token_and_deactivates_them(engine: CarePath, visit: Visit) -> None:
    web_user(engine, "ada", "admin", "admins")
    page = visit.sign_in("ada")
    page.get_by_role("link", name="Users").first.click()
    page.wait_for_url("**/app/admin/users")
    assert visit.serious("admin-users") == []

    page.get_by_label("Name").fill("<b>x")  # refused: the error at its field, the page scanned with it
    page.get_by_role("button", name="Add user").click()
    assert page.locator("#name-error").inner_text().endswith("is not allowed: a user name is 1 to 100 letters, "
                                                            "digits, '.', '_', '-' or '@', starting with a letter "
                                                            "or digit")
    assert visit.serious() == []

    page.get_by_label("Name").fill("nina")
    page.get_by_label("Role").select_option("coordinator")
    page.get_by_label("Groups").fill("care-coordinator, nursing")
    page.get_by_role("button", name="Add user").click()
    token = page.locator("#new-token").input_value()
    assert authenticate(engine, token).name == "nina"
    assert page.locator("tr[data-user='nina']").inner_text().split("\t")[:3] == [
        "nina", "Coordinator", "care-coordinator, nursing"]
    assert visit.serious() == []

    page.get_by_role("link", name="nina").click()
    page.wait_for_url("**/app/admin/users/nina")
    assert page.locator("#new-token").count() == 0  # shown once
    assert visit.serious("admin-user") == []
    page.get_by_label("Days the new token lasts (optional)").fill("30")
    page.get_by_role("button", name="Create token").click()
    second = page.locator("#new-token").input_value()
    assert second != token and authenticate(engine, second).name == "nina"
    assert "expires on" in page.locator(".admin-token").inner_text()
    assert len(list_tokens(engine, ADMIN, "nina")) == 2

    page.get_by_label("To confirm, type the user name").fill("nina")
    page.get_by_role("button", name="Deactivate nina").click()
    page.wait_for_url("**/app/admin/users/nina")
    assert "deactivated" in page.locator("#page-status").inner_text()
    assert not get_user(engine, ADMIN, "nina").active
    assert visit.serious() == []

    page.get_by_role("link", name="Groups").first.click()
    page.wait_for_url("**/app/admin/groups")
    assert page.locator("tr[data-group='nursing']").inner_text().split("\t")[1].strip() == "nina"
    assert visit.serious("admin-groups") == []
    # The refused name's page answered 422, which Chromium notes in the console; nothing else is there.
    assert visit.outside == [] and [e for e in visit.console_errors if "status of 422" not in e] == []


def test_signing_in_through_the_identity_provider_in_a_browser(engine: CarePath, database_url: str,
                                                                browser: Browser) -> None:
    signing, published = rsa_key("k1")
    fake = FakeProvider(signing, published)
    with running(fake.app()) as issuer:
        settings = Settings(database_url=database_url, deploy_shipped_pathways=False, scheduler_enabled=False,
                            oidc_issuer=issuer, oidc_client_id=CLIENT_ID, oidc_client_secret=CLIENT_SECRET,
                            oidc_roles_claim="realm_access.roles", oidc_provider_name="Hospital Login")
        with running(create_app(settings, engine)) as base:
            context = browser.new_context()
            page = context.new_page()
            page.goto(base + "/signin")
            assert serious_violations(page) == []
            page.get_by_role("link", name="Sign in with Hospital Login").click()
            page.wait_for_url(base + "/app/worklist")
            assert "dr-ng" in page.locator("header").inner_text()
            context.close()
    assert s256(fake.exchanges[0]["code_verifier"]) == fake.authorizations[0]["code_challenge"]
