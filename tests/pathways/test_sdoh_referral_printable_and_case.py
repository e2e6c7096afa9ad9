"""The referral on paper for an organization without a system, and the patient's referrals on the case page
(GET /api/patients/{id}/case and /app/patients/{id}), with the same visibility as the episodes."""

from __future__ import annotations

from typing import Any

from carepath.engine.clock import ManualClock
from carepath.engine.usecases.passwords import set_password
from tests.pathways.test_sdoh_screening_referral_scenarios import Case, directory
from tests.support.api import ApiClient
from tests.support.web import PASSWORD, page, signed_in, text_of

__all__ = ["directory"]  # the fixture, imported for pytest


def _referral_views(api: ApiClient, auditor: str) -> list[tuple[str, str | None]]:
    found = api.get("/api/audit/events", auditor, params={"patient_id": "pat-sdoh", "type": "record_viewed"})
    assert found.status_code == 200, found.text
    return [(e["actor"], e["instance_id"]) for e in found.json()["items"] if e["data"].get("what") == "referral"]


def test_the_printable_referral_has_what_the_organization_needs_and_its_print_is_audited(
        directory: ApiClient, clock: ManualClock) -> None:
    case = Case(directory, clock)
    case.consent_and_choose("food", "fict-svc-food-pantry")
    food = case.referrals()["food"]
    sheet = directory.get(f"/api/referrals/{food['id']}/printable", case.manager)
    assert sheet.status_code == 200 and sheet.headers["content-type"].startswith("text/html")
    text = sheet.text
    assert "<script" not in text.lower() and "Northside Neighbors (fictional)" in text
    assert "Food" in text and case.manager in text and "02 Mar 2026" in text
    assert "Jordan Lee" in text and "1 Example Street" in text and "555-0101" in text and "09:00" in text
    assert "MRN-55120" not in text  # minimum necessary: name and phone, no record number
    assert "88122-7" not in text and "Often true" not in text  # the need, not the screening's answers
    auditor = directory.user("auditor")
    assert _referral_views(directory, auditor) == [(case.manager, case.id)]
    assert directory.get(f"/api/referrals/{food['id']}/printable", directory.user("integration")).status_code in (
        403, 404)
    assert directory.get("/api/referrals/nope/printable", case.manager).status_code == 404


def test_the_case_lists_the_patients_referrals_and_the_page_offers_print_and_withdrawal(
        directory: ApiClient, clock: ManualClock) -> None:
    case = Case(directory, clock)
    case.consent_and_choose("food", "fict-svc-food-pantry")
    case.consent_and_choose("transportation", "fict-svc-rides")
    patient = directory.get(f"/api/instances/{case.id}", case.lead).json()["patient_ref"]
    listed = directory.get(f"/api/patients/{patient}/case", case.manager)
    assert listed.status_code == 200, listed.text
    assert sorted((r["domain"], r["service_name"] != "", r["status"], r["outcome"])
                  for r in listed.json()["referrals"]) == [("food", True, "requested", None),
                                                           ("transportation", True, "requested", None)]
    outsider = directory.user("coordinator", "cardiology")
    hidden = directory.get(f"/api/patients/{patient}/case", outsider)
    assert hidden.status_code == 404 or hidden.json()["referrals"] == []

    set_password(directory.engine, case.manager, PASSWORD)
    browser = signed_in(directory.client.app, case.manager)
    html = page(browser.get(f"/app/patients/{patient}"))
    rows = html.xpath('//table[@class="case-referrals"]/tbody/tr')
    assert sorted(text_of(r.xpath("td")[0]) for r in rows) == ["food", "transportation"]
    food = case.referrals()["food"]
    assert browser.get(f"/app/referrals/{food['id']}/printable").status_code == 200
    done = browser.submit(f"/app/patients/{patient}", f"/app/referrals/{food['id']}/withdraw-consent")
    assert done.status_code == 303 and done.headers["location"] == f"/app/patients/{patient}"
    after = page(browser.get(f"/app/patients/{patient}"))
    assert "withdrawn" in text_of(after.xpath('//*[@role="status"]')[0])
    [food_row] = [r for r in after.xpath('//table[@class="case-referrals"]/tbody/tr')
                  if text_of(r.xpath("td")[0]) == "food"]
    assert "patient withdrew consent" in text_of(food_row) and food_row.xpath('.//*[@class="consent-withdrawn"]')


def test_the_social_needs_figures_count_screenings_and_the_share_that_got_help(directory: ApiClient,
                                                                               clock: ManualClock) -> None:
    from tests.pathways.test_sdoh_screening_referral_scenarios import NEGATIVE
    helped = Case(directory, clock)
    helped.consent_and_choose("food", "fict-svc-food-pantry")
    helped.consent_and_choose("transportation", "fict-svc-rides")
    referrals = helped.referrals()
    done = directory.post(f"/api/referrals/{referrals['food']['id']}/status", helped.manager,
                          {"status": "completed"})
    assert done.status_code == 200, done.text
    not_served = directory.post(f"/api/referrals/{referrals['transportation']['id']}/status", helped.manager,
                                {"status": "rejected", "status_reason": "full", "outcome": "no-capacity"})
    assert not_served.status_code == 200, not_served.text
    Case(directory, clock, screening=NEGATIVE)
    lead = directory.user("clinical_lead")
    figures = directory.get("/api/reports/social-needs", lead, params={"from": "2026-03-01", "to": "2026-03-31"})
    assert figures.status_code == 200, figures.text
    body = figures.json()
    assert (body["screened"], body["positive"]) == (2, 1)
    assert body["positive_by_domain"] == {"food": 1, "housing": 0, "transportation": 1, "utilities": 0, "safety": 0}
    assert (body["referrals_sent"], body["referrals_closed"], body["got_help_share"]) == (2, 2, 0.5)
    assert body["outcomes"] == {"got-help": 1, "no-capacity": 1}
    later = directory.get("/api/reports/social-needs", lead, params={"from": "2026-04-01"}).json()
    assert (later["screened"], later["referrals_sent"], later["got_help_share"]) == (0, 0, None)
    assert directory.get("/api/reports/social-needs", helped.manager).status_code == 403

    lead_browser = _browser(directory, lead)
    shown = page(lead_browser.get("/app/compliance/social-needs?from=2026-03-01&to=2026-03-31"))
    assert text_of(shown.xpath('//dd[@class="got-help"]')[0]) == "50%"
    assert text_of(shown.xpath('//dd[@class="screened"]')[0]) == "2"
    assert lead_browser.get("/app/compliance/social-needs?from=2026-03-31&to=2026-03-01").status_code == 422


def _browser(api: ApiClient, name: str) -> Any:
    set_password(api.engine, name, PASSWORD)
    return signed_in(api.client.app, name)


def test_the_case_page_offers_on_a_referral_only_what_the_rules_let_its_reader_do(directory: ApiClient,
                                                                                   clock: ManualClock) -> None:
    case = Case(directory, clock)
    case.consent_and_choose("food", "fict-svc-food-pantry")
    food = case.referrals()["food"]
    patient = directory.get(f"/api/instances/{case.id}", case.lead).json()["patient_ref"]

    def withdraw_buttons(name: str) -> list[Any]:
        html = page(_browser(directory, name).get(f"/app/patients/{patient}"))
        [row] = html.xpath(f'//table[@class="case-referrals"]/tbody/tr[@data-referral-id="{food["id"]}"]')
        return list(row.xpath('.//form[@class="withdraw-consent"]'))

    auditor = directory.user("auditor")  # reads the case; REFERRAL_RULES["withdraw_consent"] is not theirs
    assert withdraw_buttons(case.manager) and not withdraw_buttons(auditor)
    assert directory.post(f"/api/referrals/{food['id']}/withdraw-consent", auditor, {}).status_code == 403
    withdrawn = directory.post(f"/api/referrals/{food['id']}/withdraw-consent", case.manager, {})
    assert withdrawn.status_code == 200, withdrawn.text
    assert not withdraw_buttons(case.manager)  # again would change nothing: not offered
