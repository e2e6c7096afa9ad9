"""The web app's foundation in a real browser: the offline API docs, and a page built on base.html that
runs htmx under the strict Content-Security-Policy and passes an axe-core scan."""

from __future__ import annotations

import pytest

from carepath.api.web.assets import STATIC_DIR

from .conftest import Visit

pytestmark = pytest.mark.browser


def test_the_api_docs_render_with_nothing_fetched_from_elsewhere(visit: Visit) -> None:
    visit.page.goto(visit.url("/docs"))
    visit.page.locator(".swagger-ui .info .title", has_text="CarePath").wait_for()
    visit.page.locator(".opblock-tag-section").first.wait_for()  # the operations: /openapi.json was read
    assert visit.outside == []
    assert "/openapi.json" in visit.requested
    assert visit.console_errors == []


def test_htmx_runs_under_the_strict_policy_without_eval_or_injected_styles(visit: Visit) -> None:
    visit.page.goto(visit.url("/app/about"))
    visit.page.wait_for_function("() => window.htmx !== undefined && document.readyState === 'complete'")
    version = visit.page.evaluate("() => htmx.version")
    assert f'version:"{version}"' in (STATIC_DIR / "htmx.min.js").read_text()
    config = visit.page.evaluate("() => [htmx.config.allowEval, htmx.config.allowScriptTags]")
    assert config == [False, False]
    # htmx's indicator style would be an inline <style>: the policy refuses it and the console says so.
    assert visit.page.locator("style").count() == 0
    assert visit.console_errors == []
    assert visit.outside == []


def test_a_page_on_base_html_has_no_serious_accessibility_violation(visit: Visit) -> None:
    visit.page.goto(visit.url("/app/about"))
    assert visit.serious("about") == []


def test_the_skip_link_is_first_visible_when_focused_and_leads_to_the_content(visit: Visit) -> None:
    page = visit.page
    page.goto(visit.url("/app/about"))
    page.keyboard.press("Tab")
    skip = page.locator(".skip-link")
    assert skip.evaluate("element => element === document.activeElement")
    box = skip.bounding_box()
    assert box is not None and box["y"] >= 0  # on screen, not parked above it
    assert skip.evaluate("element => getComputedStyle(element).outlineStyle") != "none"
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement.id") == "main"


@pytest.mark.parametrize("width", [768, 640, 320])
def test_the_page_reflows_at_tablet_width_and_at_zoom(visit: Visit, width: int) -> None:
    """768 CSS px is a portrait tablet; a 1280 px screen at 200 % zoom is 640 CSS px wide, at 400 % 320
    (WCAG 1.4.10 Reflow): nothing may need scrolling sideways."""
    visit.page.set_viewport_size({"width": width, "height": 800})
    visit.page.goto(visit.url("/app/about"))
    overflow = visit.page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0


def test_the_visit_records_and_refuses_a_request_to_another_host(visit: Visit) -> None:
    """The guard the offline tests rely on does catch a request that leaves the server (from a response
    without a policy: a page's policy would refuse the request before it is made)."""
    visit.page.goto(visit.url("/healthz"))
    visit.page.evaluate("() => fetch('http://cdn.example.invalid/lib.js').catch(() => null)")
    assert visit.outside == ["http://cdn.example.invalid/lib.js"]
