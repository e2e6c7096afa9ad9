"""What every page of the web app stands on (api/web/pages.py, api/web/errors.py): sign-in comes back to
the page asked for, errors on the web app's paths are pages (the API's stay JSON), a form without its
fields is a page too."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from carepath.api.app import create_app
from carepath.api.settings import Settings
from carepath.api.web.pages import safe_next
from carepath.engine.application import CarePath
from tests.support.web import Browser, page, signed_in, text_of, web_user


@pytest.fixture
def web(engine: CarePath, database_url: str) -> Iterator[Any]:
    settings = Settings(database_url=database_url, deploy_shipped_pathways=False, scheduler_enabled=False)
    yield create_app(settings, engine)


def test_sign_in_comes_back_to_the_page_asked_for(web: Any, engine: CarePath) -> None:
    web_user(engine, "alice", "coordinator", "care-coordinator")
    browser = Browser(web)
    assert browser.get("/app/sessions").headers["location"] == "/signin?next=/app/sessions"
    form = page(browser.get("/signin?next=/app/sessions"))
    assert form.xpath('//input[@name="next"]/@value') == ["/app/sessions"]
    signed = browser.submit("/signin?next=/app/sessions", "/signin", username="alice",
                            password="correct horse battery staple")
    assert signed.headers["location"] == "/app/sessions"


@pytest.mark.parametrize("value", ["https://evil.example/", "//evil.example/app/", "/api/tasks", "/app/\\evil",
                                   None, "", "/signin"])
def test_only_the_web_app_own_paths_are_followed_after_sign_in(value: str | None) -> None:
    assert safe_next(value) == "/app/worklist"


def test_errors_on_web_paths_are_pages_and_api_errors_stay_json(web: Any, engine: CarePath) -> None:
    web_user(engine, "alice", "coordinator", "care-coordinator")
    browser = signed_in(web, "alice")
    missing = browser.get("/app/no-such-page")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")
    assert "/app/no-such-page" in text_of(page(missing).xpath("//main")[0])
    assert page(missing).xpath('//a[@href="/app/worklist"]')  # the navigation is there: still signed in
    # A form posted without its fields (here: a session id that is no number) is a page, not JSON.
    bad = browser.client.post("/app/sessions/not-a-number/end", data={})
    assert bad.status_code == 404 and bad.headers["content-type"].startswith("text/html")
    api = browser.client.get("/api/no-such-thing")
    assert api.status_code == 404 and api.headers["content-type"].startswith("application/json")


def test_a_form_without_its_csrf_token_is_refused_as_a_page(web: Any, engine: CarePath) -> None:
    web_user(engine, "alice", "coordinator", "care-coordinator")
    browser = signed_in(web, "alice")
    sessions = page(browser.get("/app/sessions"))
    session_id = sessions.xpath("//tr/@data-session-id")[0]
    refused = browser.client.post(f"/app/sessions/{session_id}/end", data={})
    assert refused.status_code == 403 and "refused" in text_of(page(refused).xpath("//h1")[0])
    assert page(browser.get("/app/sessions")).xpath("//tr/@data-session-id") == [session_id]


@pytest.mark.parametrize("role", ["coordinator", "supervisor", "clinical_lead", "auditor", "admin"])
def test_the_navigation_links_exactly_the_areas_the_role_may_open(web: Any, engine: CarePath, role: str) -> None:
    web_user(engine, "pat", role, "care-coordinator")
    browser = signed_in(web, "pat")
    links = page(browser.get("/app/worklist")).xpath('//nav[@aria-label="Main"]//a/@href')
    assert links[0] == "/app/worklist" and "/app/sessions" in links
    for href in ("/app/team", "/app/notifications", "/app/pathways", "/app/episodes", "/app/compliance",
                 "/app/audit", "/app/admin/users"):
        status = browser.get(href).status_code
        assert (href in links) == (status == 200), (role, href, status)
