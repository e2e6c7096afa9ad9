"""In a real browser: a case manager opens a patient's case from a list (every episode across pathways, its
open tasks, the recent history), and picks a community service for a task's field from the resource
directory search (Enter searches rather than completing the task; choosing fills the field and shows the
service), then completes the task with it. Both pages pass an axe-core scan."""

from __future__ import annotations

import pytest

from carepath.engine.application import CarePath
from carepath.engine.queries import completed_with
from tests.support.resource_pathway import deploy_and_start
from tests.support.task_pathway import deploy_call_pathway, start_call
from tests.support.web import web_user

from .conftest import Visit

pytestmark = pytest.mark.browser


def test_a_case_manager_opens_the_patients_case_from_the_episode_list(engine: CarePath, visit: Visit) -> None:
    web_user(engine, "lena", "clinical_lead")
    deploy_call_pathway(engine)
    start_call(engine, "enc-call", "pat-7")
    deploy_and_start(engine, "ref-7", "pat-7")
    page = visit.sign_in("lena", "/app/episodes?patient_id=pat-7")
    page.locator("td.patient a").first.click()
    page.wait_for_url("**/app/patients/*")
    episodes = page.locator("section.case-episode")
    assert episodes.count() == 2
    assert {episodes.nth(i).locator("dd.business-key").inner_text() for i in range(2)} == {"enc-call", "ref-7"}
    assert page.locator("table.case-tasks a", has_text="Choose a service — food").count() == 1
    assert page.locator("table.case-history").get_by_text("Episode started").count() == 2
    assert visit.serious("patient-case") == []
    assert visit.console_errors == [] and visit.outside == []


def test_a_coordinator_picks_a_service_from_the_directory_and_completes_the_task(engine: CarePath,
                                                                                visit: Visit) -> None:
    web_user(engine, "cara", "coordinator", "care-coordinator")
    task_id = deploy_and_start(engine)
    page = visit.sign_in("cara", f"/app/tasks/{task_id}")
    search = page.locator("#field-service_id-search")
    search.wait_for(state="visible")  # the script shows the search; without it, the field alone
    assert page.get_by_label("Need").input_value() == "food"  # the task's domain
    page.get_by_label("ZIP code served").fill("99990")
    page.get_by_label("ZIP code served").press("Enter")  # searches; does not complete the task
    choose = page.locator("#field-service_id-results button[data-pick-service]")
    choose.first.wait_for()
    assert choose.count() == 1 and page.url.endswith(f"/app/tasks/{task_id}")
    choose.first.click()
    page.locator("#field-service_id-chosen .resource-name").wait_for()
    assert page.locator("#field-service_id").input_value() == "fict-svc-food-pantry"
    chosen = page.locator("#field-service_id-chosen")
    assert "1 Example Street" in chosen.locator(".resource-address").inner_text()
    assert chosen.locator(".resource-hours").inner_text() == "MO,WE,FR 09:00-17:00"
    assert visit.serious("task-directory-search") == []
    page.click("#complete-button")
    page.wait_for_url(f"**/app/tasks/{task_id}/done")
    with engine.db.read() as session:
        assert completed_with(session, task_id) == {"service_id": "fict-svc-food-pantry"}
    assert visit.console_errors == [] and visit.outside == []
