"""The admin's pages through the ASGI app, HTML parsed: every change through its form reaches the engine
(the same use case and history entry as /api/users), non-admins are refused, refusals are pages with their
status and the problem beside its field, a new token is shown once, CSRF, hostile names shown as text."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from carepath.api.app import create_app
from carepath.api.settings import Settings
from carepath.engine.application import CarePath
from carepath.engine.clock import ManualClock
from carepath.engine.identity import Principal, Role
from carepath.engine.persistence.tables import Event
from carepath.engine.usecases.passwords import verified_user
from carepath.engine.usecases.users import add_user, authenticate, get_user, list_tokens
from tests.support.web import Browser, page, signed_in, text_of, web_user

ADMIN = Principal("ada", Role.ADMIN, frozenset())


@pytest.fixture
def web(engine: CarePath, database_url: str) -> Iterator[Any]:
    settings = Settings(database_url=database_url, deploy_shipped_pathways=False, scheduler_enabled=False)
    yield create_app(settings, engine)


@pytest.fixture
def admin(web: Any, engine: CarePath) -> Browser:
    web_user(engine, "ada", "admin")
    return signed_in(web, "ada")


def _events(engine: CarePath, kind: str) -> list[Event]:
    with engine.db.read() as session:
        return list(session.scalars(select(Event).where(Event.type == kind).order_by(Event.id)))


def _error_at(response: Any, field: str) -> str:
    """The error shown beside a field: the field says it is invalid and points at its message."""
    html = page(response)
    control = html.xpath(f'//*[@id="{field}"]')[0]
    assert control.get("aria-invalid") == "true"
    assert f"{field}-error" in control.get("aria-describedby").split()
    assert html.xpath(f'//*[@role="alert"]//a[@href="#{field}"]')
    return text_of(html.xpath(f'//*[@id="{field}-error"]')[0])


def test_the_users_page_lists_role_groups_state_and_last_sign_in(admin: Browser, engine: CarePath,
                                                                  web: Any) -> None:
    web_user(engine, "sam", "coordinator", "care-coordinator", "nursing")
    add_user(engine, "feed", "integration")
    signed_in(web, "sam")
    html = page(admin.get("/app/admin/users"))
    rows = {row.get("data-user"): [text_of(c) for c in row.xpath("./th|./td")] for row in html.xpath("//tbody/tr")}
    assert rows["sam"][:4] == ["sam", "Coordinator", "care-coordinator, nursing", "active"]
    assert rows["feed"][1] == "Integration (a system)"
    assert rows["sam"][4] != "never in the web app" and rows["feed"][4] == "never in the web app"
    assert html.xpath("//caption") and "America/New_York" in text_of(html.xpath("//caption")[0])
    assert html.xpath('//a[@href="/app/admin/users/sam"]')


def test_only_admins_see_the_admin_pages(web: Any, engine: CarePath) -> None:
    web_user(engine, "ada", "admin")
    for role in ("coordinator", "supervisor", "auditor", "clinical_lead"):
        web_user(engine, role, role)
        browser = signed_in(web, role)
        for path in ("/app/admin/users", "/app/admin/users/ada", "/app/admin/groups"):
            answer = browser.get(path)
            assert answer.status_code == 403, (role, path)
            assert "Managing users needs" in text_of(page(answer))
        token = page(browser.get("/app/worklist")).xpath('//input[@name="csrf_token"]')[0].get("value")
        forged = browser.client.post("/app/admin/users/ada/deactivate", data={"csrf_token": token})
        assert forged.status_code == 403
        assert not page(browser.get("/app/worklist")).xpath('//a[@href="/app/admin/users"]')
    assert get_user(engine, ADMIN, "ada").active
    assert Browser(web).get("/app/admin/users").headers["location"] == "/signin?next=/app/admin/users"


def test_adding_a_user_through_the_form_shows_the_token_once(admin: Browser, engine: CarePath) -> None:
    added = admin.submit("/app/admin/users", "/app/admin/users", name="nina", role="supervisor",
                         groups="care-coordinator, nursing", expires_in_days="30")
    assert added.status_code == 201
    token = page(added).xpath('//input[@id="new-token"]')[0].get("value")
    assert authenticate(engine, token) == Principal("nina", Role.SUPERVISOR, frozenset({"care-coordinator", "nursing"}))
    assert "expires on" in text_of(page(added).xpath('//section[@class="admin-token"]')[0])
    assert get_user(engine, ADMIN, "nina").groups == ["care-coordinator", "nursing"]
    (event,) = _events(engine, "user_added")[-1:]
    assert (event.actor, event.data["user"]) == ("ada", "nina")
    for path in ("/app/admin/users", "/app/admin/users/nina"):
        assert token not in admin.get(path).text


@pytest.mark.parametrize(("fields", "field", "status", "says"), [
    ({"name": "<script>alert(1)</script>"}, "name", 422, "user name '<script>alert(1)</script>' is not allowed"),
    ({"name": "../../etc"}, "name", 422, "is not allowed"),
    ({"name": "ada"}, "name", 409, "already exists"),
    ({"name": "bo", "groups": "ok, <script>x</script>"}, "groups", 422, "group name '<script>x</script>'"),
    ({"name": "bo", "role": "god"}, "role", 422, "unknown role 'god'"),
    ({"name": "bo", "expires_in_days": "forever"}, "expires_in_days", 422, "whole number"),
    ({"name": "bo", "expires_in_days": "9999"}, "expires_in_days", 422, "1 to 3650 days"),
])
def test_a_refused_user_is_a_page_with_the_problem_at_its_field(admin: Browser, engine: CarePath,
                                                                 fields: dict[str, str], field: str, status: int,
                                                                 says: str) -> None:
    answer = admin.submit("/app/admin/users", "/app/admin/users", **{"role": "coordinator", **fields})
    assert answer.status_code == status
    assert says in _error_at(answer, field)
    html = page(answer)
    assert not html.xpath("//main//script") and html.xpath('//input[@id="name"]')[0].get("value") == fields["name"]
    assert _events(engine, "user_added")[-1].data["user"] == "ada"  # nothing added


def test_changing_groups_and_setting_a_password(admin: Browser, engine: CarePath, web: Any) -> None:
    web_user(engine, "sam", "coordinator", "care-coordinator")
    moved = admin.submit("/app/admin/users/sam", "/app/admin/users/sam/groups", groups="nursing social-work")
    assert (moved.status_code, moved.headers["location"]) == (303, "/app/admin/users/sam")
    assert get_user(engine, ADMIN, "sam").groups == ["nursing", "social-work"]
    said = page(admin.get(moved.headers["location"])).xpath('//*[@id="page-status"]')[0]
    assert text_of(said) == "The groups were saved."
    event = _events(engine, "user_groups_changed")[-1]
    assert (event.actor, event.data["old"], event.data["new"]) == ("ada", ["care-coordinator"],
                                                                   ["nursing", "social-work"])
    bad = admin.submit("/app/admin/users/sam", "/app/admin/users/sam/groups", groups="a/b")
    assert bad.status_code == 422 and "group name 'a/b'" in _error_at(bad, "groups")
    weak = admin.submit("/app/admin/users/sam", "/app/admin/users/sam/password", password="short")
    assert weak.status_code == 422 and "12 to 1000 characters" in _error_at(weak, "password")
    done = admin.submit("/app/admin/users/sam", "/app/admin/users/sam/password", password="a new long passphrase")
    assert done.status_code == 303
    assert verified_user(engine, "sam", "a new long passphrase") is not None
    assert _events(engine, "password_set")[-1].actor == "ada"


def test_an_integration_account_is_offered_no_password(admin: Browser, engine: CarePath) -> None:
    add_user(engine, "feed", "integration")
    assert not page(admin.get("/app/admin/users/feed")).xpath('//input[@name="password"]')
    token = page(admin.get("/app/admin/users/feed")).xpath('//input[@name="csrf_token"]')[0].get("value")
    forced = admin.client.post("/app/admin/users/feed/password",
                               data={"csrf_token": token, "password": "a long enough password"})
    assert forced.status_code == 409 and "integration account" in text_of(page(forced))


def test_tokens_are_created_shown_once_and_revoked(admin: Browser, engine: CarePath, clock: ManualClock) -> None:
    add_user(engine, "feed", "integration")
    made = admin.submit("/app/admin/users/feed", "/app/admin/users/feed/tokens", expires_in_days="7")
    assert made.status_code == 201
    token = page(made).xpath('//input[@id="new-token"]')[0].get("value")
    assert text_of(page(made).xpath("//h2[@id='new-token-title']")[0]) == "New API token for feed"
    assert authenticate(engine, token).name == "feed"
    assert "expires on" in text_of(page(made).xpath('//section[@class="admin-token"]')[0])
    again = admin.get("/app/admin/users/feed")
    assert token not in again.text and not page(again).xpath('//input[@id="new-token"]')
    newest = list_tokens(engine, ADMIN, "feed")[-1]
    assert newest["expires_at"] is not None
    rows = page(again).xpath(f'//tr[@data-token-id="{newest["id"]}"]')
    assert rows and "valid" in text_of(rows[0])
    revoked = admin.submit("/app/admin/users/feed", f"/app/admin/users/feed/tokens/{newest['id']}/revoke")
    assert revoked.status_code == 303
    assert list_tokens(engine, ADMIN, "feed")[-1]["revoked_at"] is not None
    assert _events(engine, "token_revoked")[-1].actor == "ada"
    assert admin.client.post("/app/admin/users/feed/tokens/999999/revoke",
                             data={"csrf_token": _csrf(admin)}).status_code == 404


def _csrf(browser: Browser) -> str:
    return str(page(browser.get("/app/admin/users")).xpath('//input[@name="csrf_token"]')[0].get("value"))


def test_deactivating_a_user_and_the_engines_refusals(admin: Browser, engine: CarePath, web: Any) -> None:
    web_user(engine, "sam", "coordinator")
    # Not confirmed (one click): refused at the confirmation field, nothing changed.
    unconfirmed = admin.submit("/app/admin/users/sam", "/app/admin/users/sam/deactivate", confirm="sa")
    assert unconfirmed.status_code == 422
    assert page(unconfirmed).xpath('//input[@id="confirm"]/@aria-invalid') == ["true"]
    assert get_user(engine, ADMIN, "sam").active
    gone = admin.submit("/app/admin/users/sam", "/app/admin/users/sam/deactivate", confirm="sam")
    assert gone.status_code == 303
    assert not get_user(engine, ADMIN, "sam").active
    assert _events(engine, "user_deactivated")[-1].actor == "ada"
    assert not page(admin.get("/app/admin/users/sam")).xpath('//form[@action="/app/admin/users/sam/deactivate"]')
    assert Browser(web).sign_in("sam").status_code == 401
    # Deactivating yourself is not offered (rule `deactivate`, condition "not themself"): the page says why,
    # and a form posted anyway is refused with the same words.
    own = page(admin.get("/app/admin/users/ada"))
    assert not own.xpath('//form[@action="/app/admin/users/ada/deactivate"]')
    assert "you cannot deactivate yourself" in text_of(own.xpath('//p[@class="refusal"]')[0])
    self_ = admin.client.post("/app/admin/users/ada/deactivate", data={"csrf_token": _csrf(admin), "confirm": "ada"})
    assert self_.status_code == 409
    assert "you cannot deactivate yourself" in text_of(page(self_).xpath('//*[@role="alert"]')[0])
    assert get_user(engine, ADMIN, "ada").active
    # A deactivated user is offered no password, no token and no deactivation; groups and revoking stay.
    gone_page = page(admin.get("/app/admin/users/sam"))
    assert [f.get("action") for f in gone_page.xpath("//main//form")] == ["/app/admin/users/sam/groups"]


def test_a_form_without_its_csrf_token_changes_nothing(admin: Browser, engine: CarePath) -> None:
    web_user(engine, "sam", "coordinator", "care-coordinator")
    for path, data in (("/app/admin/users", {"name": "eve", "role": "admin"}),
                       ("/app/admin/users/sam/groups", {"groups": "x"}),
                       ("/app/admin/users/sam/deactivate", {}),
                       ("/app/admin/users/sam/tokens", {}),
                       ("/app/admin/users/sam/password", {"password": "a long enough password"})):
        for token in ({}, {"csrf_token": "forged"}):
            answer = admin.client.post(path, data={**data, **token})
            assert answer.status_code == 403 and "refused" in text_of(page(answer).xpath("//h1")[0]), path
    sam = get_user(engine, ADMIN, "sam")
    assert (sam.active, sam.groups) == (True, ["care-coordinator"])
    assert len(list_tokens(engine, ADMIN, "sam")) == 1


@pytest.mark.parametrize("path", ["/app/admin/users/nobody", "/app/admin/users/%3Cscript%3E",
                                  "/app/admin/users/" + "x" * 201, "/app/admin/users/a%00b",
                                  "/app/admin/users/%E2%80%AE%F0%9F%98%80", "/app/admin/users/..%2F..%2Fetc"])
def test_unknown_or_hostile_user_names_are_pages_not_errors(admin: Browser, path: str) -> None:
    answer = admin.get(path)
    assert answer.status_code in (400, 404, 422), answer.status_code
    assert answer.headers["content-type"].startswith("text/html")
    assert not page(answer).xpath("//main//script")


def test_the_groups_page_lists_members(admin: Browser, engine: CarePath) -> None:
    web_user(engine, "sam", "coordinator", "care-coordinator", "nursing")
    web_user(engine, "lee", "supervisor", "nursing")
    html = page(admin.get("/app/admin/groups"))
    members = {row.get("data-group"): [text_of(li) for li in row.xpath(".//li")] for row in html.xpath("//tbody/tr")}
    assert members == {"care-coordinator": ["sam"], "nursing": ["lee", "sam"]}
