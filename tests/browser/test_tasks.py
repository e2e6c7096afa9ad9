"""A coordinator works a task in a real browser: completes it through its form (with the mouse, and with
the keyboard only), and the API sees the completion; the draft is saved when a field is left; the task
page, the done page and the start page pass an axe-core scan."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, expect

from carepath.engine.application import CarePath
from carepath.engine.bounds import MAX_COMMENT_CHARS
from carepath.engine.queries import visible_task
from carepath.engine.usecases.passwords import set_password
from carepath.engine.usecases.users import add_user
from tests.support.task_pathway import KEY, deploy_call_pathway, start_call
from tests.support.web import PASSWORD, web_user

from .conftest import Visit

pytestmark = pytest.mark.browser






def _coordinator(engine: CarePath, name: str) -> str:
    """A coordinator who signs in to the web app, and their API token."""
    token = add_user(engine, name, "coordinator", ["care-coordinator"])
    set_password(engine, name, PASSWORD)
    return token


def _task_state(engine: CarePath, task_id: str) -> tuple[str, str | None]:
    with engine.db.read() as session:
        task = visible_task(session, task_id, None)
    assert task is not None
    return task.state, task.completed_by


def test_a_coordinator_completes_the_patients_task_through_its_form(engine: CarePath, visit: Visit) -> None:
    token = _coordinator(engine, "sam")
    deploy_call_pathway(engine)
    task_id = start_call(engine, "enc-1", "pat-1")
    page = visit.sign_in("sam", "/app/worklist")
    link = page.locator(f'a[href="/app/tasks/{task_id}"]')
    if link.count():  # the worklist links its rows (the worklist's part of the app)
        link.first.click()
    else:
        page.goto(visit.url(f"/app/tasks/{task_id}"))
    page.wait_for_url(f"**/app/tasks/{task_id}")
    assert page.locator("h1").inner_text() == "Call patient" and "pat-1" in page.locator(".patient").inner_text()
    assert visit.serious("task") == []
    page.click("#complete-button")  # nothing answered: the errors at their fields
    page.locator("[role=alert]").wait_for()
    assert page.locator("#field-reached").get_attribute("aria-invalid") == "true"
    expect(page.locator(".error-summary")).to_be_focused()  # read out first
    assert visit.serious("task-errors") == []
    page.check("input[name=reached][value=true]")
    page.check("input[name=outcome][value=booked]")
    page.select_option("#field-clinic", "clinic-B")
    page.fill("#field-visit_date", "2026-03-05")
    page.fill("#field-attempts", "2")
    page.fill("#field-call_notes", "Booked with <b>Dr Adams</b>")
    # Leaving the field saves the draft; waiting for it keeps its request from being cut off by the
    # completion's page load (which Chromium would log as an htmx error, a race of the test, not a fault).
    page.keyboard.press("Tab")
    page.locator("#draft-status").filter(has_text="Draft saved").wait_for()
    page.click("#complete-button")
    page.wait_for_url(f"**/app/tasks/{task_id}/done")
    assert "Review the call" in page.locator("main").inner_text()  # the episode moved on
    assert visit.serious("task-done") == []
    answer = httpx.get(visit.url(f"/api/tasks/{task_id}"), headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200 and answer.json()["state"] == "completed"
    assert answer.json()["completed_by"] == "sam"
    refused_form = "status of 422"  # the form refused above, as Chromium logs it
    assert visit.outside == [] and [e for e in visit.console_errors if refused_form not in e] == []


def _tab_to(page: Page, selector: str, limit: int = 60) -> None:
    """Press Tab until the element matching `selector` has the focus."""
    for _ in range(limit):
        if page.evaluate("(s) => document.activeElement && document.activeElement.matches(s)", selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {selector}")


def test_a_task_is_completed_with_the_keyboard_only_and_the_next_one_is_a_keystroke_away(
        engine: CarePath, visit: Visit) -> None:
    _coordinator(engine, "sam")
    deploy_call_pathway(engine)
    first = start_call(engine, "enc-1", "pat-1")
    second = start_call(engine, "enc-2", "pat-2")
    page = visit.page
    page.goto(visit.url(f"/signin?next=/app/tasks/{first}"))
    _tab_to(page, "#username")
    page.keyboard.type("sam")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(visit.url(f"/app/tasks/{first}"))
    _tab_to(page, "input[name=reached]")
    page.keyboard.press("Space")  # the first choice: yes
    _tab_to(page, "input[name=outcome]")
    page.keyboard.press("Space")  # the first choice: booked
    _tab_to(page, "#field-visit_date")
    page.keyboard.type("03052026")  # month, day, year in an en-US date input
    _tab_to(page, "#complete-button")
    page.locator("#draft-status").filter(has_text="Draft saved").wait_for()  # the answers left (see above)
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/app/tasks/{first}/done")
    assert _task_state(engine, first) == ("completed", "sam")
    assert page.evaluate("document.activeElement.id") == "next-task"
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/app/tasks/{second}")
    assert visit.console_errors == []


def test_the_draft_is_saved_when_a_field_is_left(engine: CarePath, visit: Visit) -> None:
    _coordinator(engine, "sam")
    deploy_call_pathway(engine)
    task_id = start_call(engine, "enc-1", "pat-1")
    page = visit.sign_in("sam", f"/app/tasks/{task_id}")
    page.fill("#field-provider", "Dr Adams")
    page.keyboard.press("Tab")  # leaving the field: its change saves the draft
    status = page.locator("#draft-status")
    status.filter(has_text="Draft saved").wait_for()
    assert status.get_attribute("aria-live") == "polite"
    with engine.db.read() as session:
        task = visible_task(session, task_id, None)
    assert task is not None and task.draft is not None and task.draft["provider"] == "Dr Adams"
    assert task.state == "in-progress"
    assert visit.console_errors == []


def test_the_start_page_passes_axe_and_starts_an_episode(engine: CarePath, visit: Visit) -> None:
    web_user(engine, "lee", "clinical_lead")
    deploy_call_pathway(engine)
    page = visit.sign_in("lee", f"/app/pathways/{KEY}/start")
    assert visit.serious("start") == []
    page.click("main button[type=submit]")  # nothing filled in: errors at the fields
    assert page.locator("[role=alert]").count() == 1
    assert page.locator("#field-episode-business_key").get_attribute("aria-invalid") == "true"
    assert visit.serious() == []
    page.fill("#field-episode-business_key", "enc-5")
    page.fill("#field-episode-patient_id", "pat-5")
    page.fill("#field-ed_visit_date", "2026-03-02")
    page.fill("#field-conditions", "1")
    with page.expect_response(lambda r: "/app/episodes/" in r.url):
        page.click("main button[type=submit]")
    assert "/app/episodes/" in page.url


def test_the_draft_is_saved_every_half_minute_while_typing_and_not_at_each_keystroke(engine: CarePath,
                                                                                    visit: Visit) -> None:
    _coordinator(engine, "sam")
    deploy_call_pathway(engine)
    task_id = start_call(engine, "enc-1", "pat-1")
    visit.page.clock.install()  # the page's timers run when the test says
    page = visit.sign_in("sam", f"/app/tasks/{task_id}")
    page.focus("#field-call_notes")
    page.keyboard.type("No answer at 9")  # still in the field: no change event yet
    page.clock.run_for(5_000)
    assert _draft(engine, task_id) is None  # typing alone saves nothing
    page.clock.run_for(30_000)
    page.locator("#draft-status").filter(has_text="Draft saved").wait_for()
    assert _draft(engine, task_id) == {"call_notes": "No answer at 9", "interpreter": False}
    assert visit.console_errors == []


def _draft(engine: CarePath, task_id: str) -> dict[str, object] | None:
    with engine.db.read() as session:
        task = visible_task(session, task_id, None)
    assert task is not None
    return task.draft


def test_a_comment_counts_down_the_characters_left_and_an_over_long_one_comes_back_kept(
        engine: CarePath, visit: Visit) -> None:
    _coordinator(engine, "sam")
    deploy_call_pathway(engine)
    task_id = start_call(engine, "enc-1", "pat-1")
    page = visit.sign_in("sam", f"/app/tasks/{task_id}")
    count = page.locator("#action-comment-text-count")
    expect(count).to_have_text(f"You have {MAX_COMMENT_CHARS:,} characters remaining.")
    assert count.get_attribute("aria-live") == "polite"
    page.fill("#action-comment-text", "left voicemail")
    expect(count).to_have_text(f"You have {MAX_COMMENT_CHARS - 14:,} characters remaining.")
    long = "x" * (MAX_COMMENT_CHARS + 2)
    page.fill("#action-comment-text", long)  # pasted: nothing is cut
    expect(count).to_have_text("You have 2 characters too many.")
    assert visit.serious() == []
    page.get_by_role("button", name="Add comment").click()
    page.wait_for_load_state()
    expect(page.locator("#action-comment-text-error")).to_contain_text(f"at most {MAX_COMMENT_CHARS:,} characters")
    assert page.input_value("#action-comment-text") == long
    expect(count).to_have_text("You have 2 characters too many.")
    assert visit.serious() == []
