"""In a real browser, the shipped social-needs pathway (`sdoh-screening-referral`) as its case manager works
it: the case starts with the screening in its start data (food and transportation positive); from the
worklist the case manager confirms the food need and consent, chooses the service with the directory
search, and completes; the referral shows on the patient's case page and its printable sheet opens; the
organization's update (its integration account, over the API) moves it, and the case page says so. Then
the pages around it: the social-needs figures, the partner organizations, a pathway-version migration
plan. Every page passes an axe-core scan."""

from __future__ import annotations

from carepath.engine.application import CarePath
from carepath.engine.clock import ManualClock
from carepath.engine.definitions import SourceFile
from carepath.engine.identity import SYSTEM
from carepath.engine.usecases.deploy import deploy_pathways
from carepath.engine.usecases.instances import start_instance
from carepath.engine.usecases.passwords import set_password
from tests.pathways.test_sdoh_screening_referral_scenarios import Case, directory, owned_by
from tests.support import migration_pathways
from tests.support.api import ApiClient
from tests.support.web import PASSWORD, web_user

from .conftest import Visit

__all__ = ["directory"]  # the fixture, imported for pytest


def _patient(case: Case) -> str:
    return str(case.view()["patient_ref"])


def _work_the_food_need(visit: Visit, case: Case) -> None:
    """From the worklist: confirm need and consent, then choose the food pantry with the directory search."""
    page = visit.sign_in(case.manager, "/app/worklist")
    page.get_by_role("link", name="Confirm need and consent — food").click()
    page.wait_for_url("**/app/tasks/*")
    for question in ("The patient confirms the need", "The patient consents to share information"):
        page.get_by_role("radiogroup", name=question).get_by_label("Yes").check()
    assert visit.serious() == []
    page.click("#complete-button")
    page.wait_for_url("**/done")
    page.goto(visit.url("/app/worklist"))
    page.get_by_role("link", name="Choose a service — food").click()
    page.wait_for_url("**/app/tasks/*")
    page.locator("#field-service_id-search").wait_for(state="visible")
    assert page.get_by_label("Need").input_value() == "food"
    page.get_by_label("ZIP code served").fill("99990")
    page.get_by_label("ZIP code served").press("Enter")
    choose = page.locator("#field-service_id-results button[data-pick-service]")
    choose.first.wait_for()
    assert visit.serious("sdoh-choose-service") == []
    choose.first.click()
    name = page.locator("#field-service_id-chosen .resource-name")
    name.wait_for()
    assert name.inner_text() == "Northside Community Food Pantry (fictional)"
    page.click("#complete-button")
    page.wait_for_url("**/done")


def test_a_case_manager_refers_the_food_need_and_follows_it_to_got_help(engine: CarePath, directory: ApiClient,
                                                                     clock: ManualClock, visit: Visit) -> None:
    case = Case(directory, clock)
    assert case.started.status_code == 201, case.started.text
    set_password(engine, case.manager, PASSWORD)
    _work_the_food_need(visit, case)
    food = case.referrals()["food"]
    assert (food["status"], food["service_id"]) == ("requested", "fict-svc-food-pantry")

    page = visit.page
    page.goto(visit.url(f"/app/patients/{_patient(case)}"))
    row = page.locator(f'table.case-referrals tr[data-referral-id="{food["id"]}"]')
    assert "Northside Community Food Pantry (fictional)" in row.inner_text()
    assert visit.serious("sdoh-case-referrals") == []
    row.get_by_role("link", name="Printable referral").click()
    page.wait_for_url(f"**/app/referrals/{food['id']}/printable")
    assert page.get_by_text("Northside Neighbors (fictional)").count() >= 1
    assert visit.serious() == []

    # The other need's loop has its own values: its form searches for transportation, nothing chosen yet.
    case.complete("Confirm need and consent — transportation", case.manager, need_confirmed=True,
                  consent_to_share=True)
    page.goto(visit.url("/app/worklist"))
    page.get_by_role("link", name="Choose a service — transportation").click()
    page.locator("#field-service_id-search").wait_for(state="visible")
    assert page.get_by_label("Need").input_value() == "transportation"
    assert page.locator("#field-service_id").input_value() == ""

    pantry = directory.user("integration", name="northside-pantry-system")
    owned_by(directory, food["id"], pantry)
    done = directory.post(f"/api/referrals/{food['id']}/status", pantry,
                          {"status": "completed", "outcome": "got-help", "version": food["version"]})
    assert done.status_code == 200, done.text
    assert "food_loop_closed_at" in case.view()["data"]  # the pathway moved with the update
    page.goto(visit.url(f"/app/patients/{_patient(case)}"))
    row = page.locator(f'table.case-referrals tr[data-referral-id="{food["id"]}"]')
    assert row.locator("td").nth(4).inner_text() == "Got help"  # the outcome in words, not its code
    # The page offers what the referral rules let the case manager do now, as the API's `actions` says.
    allowed = directory.get(f"/api/referrals/{food['id']}", case.manager).json()["actions"]
    offered = row.get_by_role("button", name="Patient withdrew consent").count()
    assert offered == ("withdraw_consent" in allowed)
    assert visit.serious() == []
    assert visit.console_errors == [] and visit.outside == []


def test_the_figures_partners_and_migration_plan_pages_pass_the_scan(engine: CarePath, directory: ApiClient,
                                                                    clock: ManualClock, visit: Visit) -> None:
    case = Case(directory, clock)
    case.consent_and_choose("food", "fict-svc-food-pantry")
    deploy_pathways(engine, SYSTEM, [SourceFile(f"{migration_pathways.KEY}.bpmn",
                                                migration_pathways.version_1().encode())])
    start_instance(engine, SYSTEM, migration_pathways.KEY, business_key="mig-1")
    deploy_pathways(engine, SYSTEM, [SourceFile(f"{migration_pathways.KEY}.bpmn",
                                                migration_pathways.version_2().encode())])
    web_user(engine, "lead", "clinical_lead")
    web_user(engine, "root", "admin")
    page = visit.sign_in("lead", "/app/compliance/social-needs")
    page.goto(visit.url("/app/compliance/social-needs?from=2026-03-01&to=2026-03-31"))
    assert page.locator("caption", has_text="Positive screens by domain").count() == 1
    assert visit.serious("social-needs") == []
    page.goto(visit.url(f"/app/pathways/{migration_pathways.KEY}/versions/1/move"))
    assert page.locator('[data-outcome="can_move"]').count() == 1
    assert visit.serious("pathway-migration-plan") == []
    page.get_by_role("button", name="Sign out").first.click()
    page.wait_for_url("**/signin**")
    visit.sign_in("root", "/app/admin/partners")
    assert page.get_by_role("heading", name="Partner organizations").count() == 1
    assert visit.serious("admin-partners") == []
    assert visit.console_errors == [] and visit.outside == []
