"""An admin in a real browser: signs in, adds a user (the token shown once), creates a token for them and
deactivates them; the engine sees each change; every admin screen passes an axe-core scan, errors shown too."""

from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe

from carepath.engine.application import CarePath
from carepath.engine.identity import Principal, Role
from carepath.engine.usecases.users import authenticate, get_user, list_tokens
from tests.support.web import PASSWORD, web_user

from .conftest import Visit

pytestmark = pytest.mark.browser
ADMIN = Principal("ada", Role.ADMIN, frozenset())


def _serious(visit: Visit) -> list[tuple[str, str]]:
    violations = Axe().run(visit.page).response["violations"]
    return [(v["id"], v["impact"]) for v in violations if v["impact"] in ("serious", "critical")]


def test_an_admin_adds_a_user_gives_them_a_token_and_deactivates_them(engine: CarePath, visit: Visit) -> None:
    web_user(engine, "ada", "admin", "admins")
    page = visit.page
    page.goto(visit.url("/signin"))
    page.get_by_label("User name").fill("ada")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/app/worklist")
    page.get_by_role("link", name="Users").first.click()
    page.wait_for_url("**/app/admin/users")
    assert _serious(visit) == []

    page.get_by_label("Name").fill("<b>x")  # refused: the error at its field, the page scanned with it
    page.get_by_role("button", name="Add user").click()
    assert page.locator("#name-error").inner_text().endswith("is not allowed: a user name is 1 to 100 letters, "
                                                            "digits, '.', '_', '-' or '@', starting with a letter "
                                                            "or digit")
    assert _serious(visit) == []

    page.get_by_label("Name").fill("nina")
    page.get_by_label("Role").select_option("coordinator")
    page.get_by_label("Groups").fill("care-coordinator, nursing")
    page.get_by_role("button", name="Add user").click()
    token = page.locator("#new-token").input_value()
    assert authenticate(engine, token).name == "nina"
    assert page.locator("tr[data-user='nina']").inner_text().split("\t")[:3] == [
        "nina", "coordinator", "care-coordinator, nursing"]
    assert _serious(visit) == []

    page.get_by_role("link", name="nina").click()
    page.wait_for_url("**/app/admin/users/nina")
    assert page.locator("#new-token").count() == 0  # shown once
    assert _serious(visit) == []
    page.get_by_label("Days the new token lasts (optional)").fill("30")
    page.get_by_role("button", name="Create token").click()
    second = page.locator("#new-token").input_value()
    assert second != token and authenticate(engine, second).name == "nina"
    assert "expires on" in page.locator(".admin-token").inner_text()
    assert len(list_tokens(engine, ADMIN, "nina")) == 2

    page.get_by_role("button", name="Deactivate nina").click()
    page.wait_for_url("**/app/admin/users/nina?changed=deactivated")
    assert "deactivated" in page.get_by_role("status").inner_text()
    assert not get_user(engine, ADMIN, "nina").active
    assert _serious(visit) == []

    page.get_by_role("link", name="Groups").first.click()
    page.wait_for_url("**/app/admin/groups")
    assert page.locator("tr[data-group='nursing']").inner_text().split("\t")[1].strip() == "nina"
    assert _serious(visit) == []
    # The refused name's page answered 422, which Chromium notes in the console; nothing else is there.
    assert visit.outside == [] and [e for e in visit.console_errors if "status of 422" not in e] == []
