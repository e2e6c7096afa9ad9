"""The idle-logoff warning in a real browser, with a one-minute idle limit and the server's clock moved by
the test: the warning opens with the focus on "Stay signed in", which keeps the session; left alone the
page signs out, and after signing in again what was typed is back in its field. The warning and the
break-glass pages pass an axe-core scan."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from carepath.api.app import create_app
from carepath.api.settings import Settings
from carepath.engine.application import CarePath
from carepath.engine.clock import ManualClock
from carepath.engine.identity import Principal, Role
from carepath.engine.persistence.tables import Event, WebSession
from carepath.engine.usecases.break_glass import break_glass
from tests.support.server import running
from tests.support.web import web_user

from .conftest import Visit, fill_sign_in

pytestmark = pytest.mark.browser
TYPED = "Patient found on the floor; team unreachable by phone"


@pytest.fixture
def server(engine: CarePath, database_url: str) -> Iterator[str]:
    """A server signing out after one minute, warning 30 seconds before."""
    settings = Settings(database_url=database_url, deploy_shipped_pathways=False, scheduler_enabled=False,
                        web_idle_minutes=1, web_idle_warning_seconds=30)
    with running(create_app(settings, engine)) as url:
        yield url




def _looked_at(page: Page) -> None:
    """The user comes back to the window: the page asks the server how long is left (it also does so by
    itself on its timer, in real seconds, while the test moves the server's clock)."""
    page.evaluate("window.dispatchEvent(new Event('focus'))")


def test_warned_kept_signed_in_then_signed_out_with_nothing_typed_lost(engine: CarePath, visit: Visit,
                                                                       clock: ManualClock) -> None:
    web_user(engine, "nina", "coordinator", "ward-b")
    page = visit.page
    visit.sign_in("nina", "/app/break-glass")
    dialog = page.locator("#idle-warning")
    expect(dialog).to_be_hidden()

    clock.advance(seconds=35)
    _looked_at(page)
    expect(dialog).to_be_visible()
    assert page.evaluate("document.activeElement.id") == "idle-warning-stay"
    assert page.get_by_role("alertdialog", name="Are you still there?").is_visible()
    assert visit.serious("idle-warning") == []
    page.keyboard.press("Enter")  # "Stay signed in"
    expect(dialog).to_be_hidden()
    with engine.db.read() as session:
        assert session.scalars(select(WebSession.last_seen_at)).one() == clock()

    page.get_by_label("Patient id").fill("pat-9")
    page.get_by_label("Why you need this record now").fill(TYPED)
    clock.advance(seconds=61)
    _looked_at(page)
    page.wait_for_url("**/signin?next=*")
    with engine.db.read() as session:
        ended = session.scalars(select(Event.data).where(Event.type == "signed_out")).all()
    assert [e["reason"] for e in ended] == ["inactivity"]
    expect(page.get_by_role("status")).to_contain_text("You were signed out after a time without activity")

    fill_sign_in(page, "nina")
    page.wait_for_url("**/app/break-glass")
    expect(page.get_by_label("Why you need this record now")).to_have_value(TYPED)
    expect(page.get_by_label("Patient id")).to_have_value("pat-9")
    expect(page.get_by_role("status")).to_contain_text("What you typed before you were signed out")
    kept = page.evaluate("Object.keys(sessionStorage).filter(k => k.startsWith('carepath.typed:'))")
    assert kept == []  # restored once, then removed
    page.reload()
    expect(page.get_by_label("Why you need this record now")).to_have_value("")
    assert visit.outside == [] and visit.console_errors == []


def test_the_break_glass_pages_pass_axe(engine: CarePath, visit: Visit) -> None:
    web_user(engine, "nina", "coordinator", "ward-b")
    web_user(engine, "ada", "auditor")
    break_glass(engine, Principal("nina", Role.COORDINATOR), "pat-9", "patient arrived unconscious at night")
    page = visit.page
    visit.sign_in("nina", "/app/break-glass")
    page.get_by_label("Patient id").fill("pat-3")
    page.get_by_role("button", name="Open emergency access").click()  # no reason: refused at its field
    expect(page.get_by_role("alert")).to_contain_text("say why")
    assert visit.serious("break-glass") == []
    page.context.clear_cookies()
    visit.sign_in("ada", "/app/audit/break-glass")
    expect(page.get_by_role("table")).to_contain_text("patient arrived unconscious at night")
    assert visit.serious("break-glass-review") == []
    # the refused form answered 422, which Chromium reports on the console; nothing else may be there
    assert visit.outside == [] and [e for e in visit.console_errors if "status of 422" not in e] == []


POLLING_AND_CLICKED = """() => {
  for (const [trigger, query] of [["every 200ms", "polled"], ["click", "clicked"]]) {
    const element = document.createElement("button");
    element.id = query;
    element.textContent = query;
    element.setAttribute("hx-get", "/app/sessions?" + query);
    element.setAttribute("hx-trigger", trigger);
    element.setAttribute("hx-swap", "none");
    document.getElementById("main").appendChild(element);
    htmx.process(element);
  }
}"""


def test_a_pages_own_polling_is_not_activity_and_a_click_is(engine: CarePath, visit: Visit) -> None:
    web_user(engine, "nina", "coordinator", "ward-b")
    page = visit.page
    visit.sign_in("nina", "/app/sessions")
    marked: dict[str, set[str | None]] = {"polled": set(), "clicked": set()}

    def seen(request: Any) -> None:
        query = request.url.rsplit("?", 1)[-1]
        if query in marked:
            marked[query].add(request.headers.get("x-carepath-background"))

    page.on("request", seen)
    page.evaluate(POLLING_AND_CLICKED)
    page.locator("#clicked").click()
    page.wait_for_timeout(800)
    assert marked == {"polled": {"1"}, "clicked": {None}}
