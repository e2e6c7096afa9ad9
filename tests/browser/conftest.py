"""Browser tests: a real uvicorn server with the app on a free loopback port (tests/support/server.py),
over the test database of the run (a SQLite file per test, or PostgreSQL when CAREPATH_TEST_DATABASE_URL
says so), driven by Debian's Chromium through Playwright.

Playwright launches /usr/bin/chromium (`apt-get install chromium chromium-driver`); `playwright install`
is never run (it downloads, and CI has no internet). Without Chromium the tests are skipped with a reason,
except in CI (CI set): there a missing browser is a failure, so that a green run means they ran.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, Route, sync_playwright

from carepath.api.app import create_app
from carepath.api.settings import Settings
from carepath.engine.application import CarePath

from ..support.server import running
from ..support.web import PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
# CI runs as root: Chromium's sandbox needs an unprivileged user; /dev/shm is small in containers.
CHROMIUM_ARGS = ["--disable-dev-shm-usage", "--no-sandbox"]
SCREENSHOTS = "CAREPATH_SCREENSHOTS"


def without_chromium(chromium: Path, in_ci: bool) -> tuple[str, str] | None:
    """What the browser tests do on a machine without Chromium: ("fail", why) in CI, where Chromium must be
    installed (.ci/run does), else ("skip", why) on a developer's machine; None when Chromium is there."""
    if chromium.exists():
        return None
    reason = f"{chromium} is absent: apt-get install chromium chromium-driver (.ci/run does)"
    return ("fail", f"browser tests cannot run in CI: {reason}") if in_ci else ("skip", reason)


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    verdict = without_chromium(CHROMIUM, bool(os.environ.get("CI")))
    if verdict is not None:
        action, reason = verdict
        (pytest.fail if action == "fail" else pytest.skip)(reason)
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield launched
    launched.close()


@pytest.fixture
def server(engine: CarePath, database_url: str) -> Iterator[str]:
    """The base URL of a real server running the app, as `carepath serve` would."""
    settings = Settings(database_url=database_url, deploy_shipped_pathways=False, scheduler_enabled=False)
    with running(create_app(settings, engine)) as url:
        yield url


def serious_violations(page: Page) -> list[tuple[str, str, list[str]]]:
    """What axe-core (axe-playwright-python, offline) finds serious or critical on the page."""
    violations = Axe().run(page).response["violations"]
    return [(v["id"], v["impact"], [str(n["target"]) for n in v["nodes"]]) for v in violations
            if v["impact"] in ("serious", "critical")]


@dataclass
class Visit:
    """A page in a fresh browser context that may talk to the server only: any request to another origin
    is aborted and recorded; so are the console's errors (a refused script or style shows there)."""

    page: Page
    base: str
    outside: list[str] = field(default_factory=list)
    requested: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def url(self, path: str) -> str:
        return self.base + path

    def sign_in(self, name: str, then: str = "/app/worklist") -> Page:
        """Open the sign-in page asked to go on to `then`, sign in as `name` and wait to land there."""
        self.page.goto(self.url(f"/signin?next={then}"))
        fill_sign_in(self.page, name)
        self.page.wait_for_url(self.url(then))
        return self.page

    def serious(self, shot: str | None = None) -> list[tuple[str, str, list[str]]]:
        """The page's serious and critical accessibility violations (axe-core): (rule, impact, elements).
        With `shot`, the page is also photographed for docs/ui.md (see `shoot`)."""
        if shot:
            self.shoot(shot)
        return serious_violations(self.page)

    def shoot(self, name: str) -> None:
        """A screenshot of the page for docs/ui.md, only when CAREPATH_SCREENSHOTS names a folder (the
        command `python -m tests.browser.screenshots` sets it); an ordinary test run writes nothing."""
        folder = os.environ.get(SCREENSHOTS)
        if folder:
            self.page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)

    def _route(self, route: Route) -> None:
        url = route.request.url
        parts = urlsplit(url)
        if f"{parts.scheme}://{parts.netloc}" != self.base:
            self.outside.append(url)
            route.abort()
            return
        self.requested.append(parts.path)
        route.continue_()

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)


def fill_sign_in(page: Page, name: str) -> None:
    """Fill in and send the sign-in form the page shows now (after a redirect to it, or a logoff)."""
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


@pytest.fixture
def visit(browser: Browser, server: str) -> Iterator[Visit]:
    context = browser.new_context()
    page = context.new_page()
    found = Visit(page, server)
    page.route("**/*", found._route)
    page.on("console", found._console)
    page.on("pageerror", lambda error: found.console_errors.append(str(error)))
    yield found
    # Route handlers still running (a page's own requests: polling, a diagram) must not hold the close:
    # drop them first, ignoring their errors (Playwright's documented way out of a close that waits on them).
    page.unroute_all(behavior="ignoreErrors")
    context.close()
