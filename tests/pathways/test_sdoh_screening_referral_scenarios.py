"""A social-needs case through the shipped 'sdoh-screening-referral' pathway, over the API, with a controlled
clock: screening, one referral loop per positive need, the organizations' updates, follow-up, outcomes and
the HEDIS SNS-E measures.

Dates are in the pathway's zone (America/New_York, us-federal calendar). The cases start on Monday 2 March
2026 at 10:00; five business days later is Monday 9 March 10:00 (no holiday in between).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update

from carepath.engine.clock import ManualClock
from carepath.engine.directory import ResourceFiles
from carepath.engine.identity import SYSTEM
from carepath.engine.persistence.referral_tables import Referral
from carepath.engine.usecases.resources import import_resources
from carepath.engine.usecases.timers import fire_due_timers
from tests.support.api import ApiClient

KEY = "sdoh-screening-referral"
NY = ZoneInfo("America/New_York")
ROOT = Path(__file__).resolve().parents[2]
DIRECTORY = ROOT / "engine" / "directory" / "examples" / "fictional-resources-example.json"
FOOD_AND_TRANSPORT = {"71802-3": "I have a steady place to live", "96778-6": ["None of the above"],
                      "88122-7": "Often true", "88123-5": "LA28398-8", "93030-5": "yes", "96779-4": "No",
                      "95618-5": "Never", "95617-7": "Rarely", "95616-9": "never", "95615-1": 1}
NEGATIVE = {**FOOD_AND_TRANSPORT, "88122-7": "Never true", "93030-5": "No"}


def ny(month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=NY)


class Case:
    """One patient's case: the people working it, and one-line steps over the public API."""

    def __init__(self, api: ApiClient, clock: ManualClock, screening: dict[str, Any] | None = FOOD_AND_TRANSPORT,
                 **data: Any) -> None:
        self.api, self.clock = api, clock
        self.lead = api.user("clinical_lead")
        self.manager = api.user("coordinator", "case-manager")
        self.chw = api.user("coordinator", "community-health-worker")
        self.case_id = f"CASE-{uuid.uuid4().hex[:8]}"
        self.at(ny(3, 2))
        start = {"case_id": self.case_id, "patient": {"name": "Jordan Lee", "mrn": "MRN-55120"}, **data}
        if screening is not None:
            start |= {"screening": screening, "screening_date": "2026-03-02"}
        self.started = api.start(self.lead, KEY, business_key=self.case_id, patient_id="pat-sdoh", data=start)
        self.id = self.started.json().get("id") if self.started.status_code == 201 else None

    def at(self, when: datetime) -> None:
        self.clock.set(when.astimezone(UTC))
        fire_due_timers(self.api.engine)

    def view(self) -> dict[str, Any]:
        return self.api.get(f"/api/instances/{self.id}", self.lead).json()

    def open_tasks(self) -> list[str]:
        return sorted(t["name"] for t in self.view()["open_tasks"])

    def complete(self, name: str, user: str, **data: Any) -> Any:
        [task] = [t for t in self.view()["open_tasks"] if t["name"] == name]
        return self.api.post(f"/api/tasks/{task['id']}/complete", user, {"data": data})

    def consent_and_choose(self, domain: str, service_id: str) -> None:
        consent = self.complete(f"Confirm need and consent — {domain}", self.manager, need_confirmed=True,
                                consent_to_share=True)
        assert consent.status_code == 200, consent.text
        chosen = self.complete(f"Choose a service — {domain}", self.manager, service_id=service_id)
        assert chosen.status_code == 200, chosen.text

    def referrals(self, **params: Any) -> dict[str, dict[str, Any]]:
        """Each domain's latest referral."""
        listed = self.api.get("/api/referrals", self.manager, params={"patient": "pat-sdoh", **params})
        assert listed.status_code == 200, listed.text
        newest: dict[str, dict[str, Any]] = {}  # the list is newest first
        for referral in listed.json()["items"]:
            if referral["case_id"] == self.case_id:
                newest.setdefault(referral["domain"], referral)
        return newest

    def measures(self) -> dict[str, str]:
        results = self.api.get(f"/api/instances/{self.id}/measures", self.lead).json()
        return {m["measure_id"]: m["status"] for m in results}


@pytest.fixture
def directory(shipped: ApiClient) -> ApiClient:
    result = import_resources(shipped.engine, SYSTEM, ResourceFiles(DIRECTORY.name, json=DIRECTORY.read_bytes()))
    assert not result.problems
    return shipped


def owned_by(api: ApiClient, referral_id: str, account: str) -> None:
    """What the partner-organization registry does when the organization has a system: its integration
    account owns the referral Task."""
    with api.engine.db.write_sessions() as session, session.begin():
        session.execute(update(Referral).where(Referral.id == referral_id).values(partner_account=account))


def test_food_and_transportation_each_get_a_referral_tracked_to_a_closed_loop(directory: ApiClient,
                                                                               clock: ManualClock) -> None:
    case = Case(directory, clock)
    assert case.started.status_code == 201, case.started.text
    data = case.view()["data"]
    assert data["positive_domains"] == ["food", "transportation"] and data["screen_result"] == "positive"
    assert data["sdoh_z_codes"] == ["Z59.41", "Z59.82"]
    assert data["screening"]["88122-7"] == "LA28397-0" and data["screening"]["95614-4"] == 5
    assert case.open_tasks() == ["Confirm need and consent — food", "Confirm need and consent — transportation"]
    confirm = next(t for t in case.view()["open_tasks"] if t["name"].endswith("food"))
    assert confirm["lane"] == "Case Manager" and confirm["candidate_groups"] == ["case-manager"]

    case.at(ny(3, 12))  # day 10 after the screen: both referrals are sent
    case.consent_and_choose("food", "fict-svc-food-pantry")
    case.consent_and_choose("transportation", "fict-svc-rides")
    referrals = case.referrals()
    assert {d: (r["status"], r["service_id"], r["consent"]) for d, r in referrals.items()} == {
        "food": ("requested", "fict-svc-food-pantry", True), "transportation": ("requested", "fict-svc-rides", True)}
    assert referrals["food"]["organization_name"] == "Northside Neighbors (fictional)"
    assert case.open_tasks() == []  # both wait for the organizations

    # The food pantry's system accepts, then completes: the pathway moves with each update.
    pantry = directory.user("integration", name="northside-pantry-system")
    food_id = referrals["food"]["id"]
    owned_by(directory, food_id, pantry)
    accepted = directory.post(f"/api/referrals/{food_id}/status", pantry, {"status": "accepted"})
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "accepted" and "food_loop_closed_at" not in case.view()["data"]
    done = directory.post(f"/api/referrals/{food_id}/status", pantry,
                          {"status": "completed", "outcome": "got-help", "version": accepted.json()["version"]})
    assert done.status_code == 200, done.text
    assert case.view()["data"]["food_outcome"] == "got-help"

    # The rides program is silent: five business days after the referral, a follow-up task for the CHW.
    case.at(ny(3, 19, 9, 59))
    assert case.open_tasks() == []
    case.at(ny(3, 19, 10, 0))
    assert case.open_tasks() == ["Follow up on the referral — transportation"]
    [follow_up] = case.view()["open_tasks"]
    assert follow_up["lane"] == "Community Health Worker"
    closed = case.complete("Follow up on the referral — transportation", case.chw, contacted="patient",
                           status="completed", outcome="got-help")
    assert closed.status_code == 200, closed.text
    assert case.view()["status"] == "completed"
    assert case.referrals()["transportation"]["outcome"] == "got-help"
    measures = case.measures()
    assert measures["sns-e-food"] == measures["sns-e-transportation"] == "met"
    assert measures["sns-e-housing"] == "not_applicable"
    assert measures["referral-loop-closed-food"] == measures["referral-loop-closed-transportation"] == "met"


@pytest.mark.parametrize(("day", "expected"), [((3, 12), "met"), ((4, 1), "met"), ((4, 2), "not_met")])
def test_sns_e_counts_an_intervention_through_day_30_of_the_positive_screen(
        directory: ApiClient, clock: ManualClock, day: tuple[int, int], expected: str) -> None:
    case = Case(directory, clock)
    case.at(ny(*day, hour=23, minute=30))
    case.consent_and_choose("food", "fict-svc-food-pantry")
    assert case.measures()["sns-e-food"] == expected
    assert case.measures()["sns-e-transportation"] == ("not_met" if expected == "not_met" else "open")


def test_sns_e_flows_into_the_compliance_report(directory: ApiClient, clock: ManualClock) -> None:
    on_time, late = Case(directory, clock), Case(directory, clock)
    on_time.at(ny(3, 12))
    on_time.consent_and_choose("food", "fict-svc-food-pantry")
    late.at(ny(4, 2))
    late.consent_and_choose("food", "fict-svc-food-pantry")
    auditor = directory.user("auditor")
    report = directory.get("/api/reports/compliance", auditor, params={"pathway": KEY})
    assert report.status_code == 200, report.text
    rows = {row["measure_id"]: row for row in report.json()["measures"]}
    assert (rows["sns-e-food"]["met"], rows["sns-e-food"]["not_met"]) == (1, 1)
    assert [m["business_key"] for m in rows["sns-e-food"]["misses"]] == [late.case_id]
    assert (rows["sns-e-transportation"]["met"], rows["sns-e-transportation"]["not_met"]) == (0, 2)


def test_a_negative_screen_ends_the_episode_at_once(directory: ApiClient, clock: ManualClock) -> None:
    case = Case(directory, clock, NEGATIVE)
    view = case.view()
    assert view["status"] == "completed" and view["data"]["screen_result"] == "negative"
    assert view["data"]["positive_domains"] == [] and case.referrals() == {}
    assert set(case.measures().values()) == {"not_applicable"}


def test_an_unknown_question_or_answer_is_refused_naming_it(directory: ApiClient, clock: ManualClock) -> None:
    unknown_question = Case(directory, clock, {**FOOD_AND_TRANSPORT, "12345-6": "Yes"})
    assert unknown_question.started.status_code == 422
    assert "'12345-6' is not a question of the AHC HRSN" in unknown_question.started.text
    unknown_answer = Case(directory, clock, {**FOOD_AND_TRANSPORT, "88122-7": "Maybe"})
    assert unknown_answer.started.status_code == 422
    assert "'Maybe' is not an answer to 88122-7" in unknown_answer.started.text


def test_the_screening_task_asks_the_questions_when_the_start_data_has_none(directory: ApiClient,
                                                                           clock: ManualClock) -> None:
    case = Case(directory, clock, None)
    assert case.open_tasks() == ["Screen for health-related social needs"]
    [task] = case.view()["open_tasks"]
    assert task["lane"] == "Community Health Worker"
    form = directory.get(f"/api/tasks/{task['id']}/form", case.chw).json()["schema"]
    assert form["properties"]["screening"]["properties"]["88122-7"]["title"].startswith("Within the past 12 months")
    # The form's choices are the answer codes, each shown with its words.
    screening = {"71802-3": "LA31994-9", "96778-6": ["LA28580-1", "LA31998-0"], "88122-7": "LA28398-8",
                 "88123-5": "LA28398-8", "93030-5": "LA32-8", "96779-4": "LA32-8", "95618-5": "LA6270-8",
                 "95617-7": "LA6270-8", "95616-9": "LA6270-8", "95615-1": "LA6270-8"}
    assert {"const": "LA31994-9", "title": "I have a place to live today, but I am worried about losing it in the "
            "future"} in form["properties"]["screening"]["properties"]["71802-3"]["oneOf"]
    done = case.complete("Screen for health-related social needs", case.chw, screening=screening,
                         screening_date="2026-03-02")
    assert done.status_code == 200, done.text
    data = case.view()["data"]
    assert data["positive_domains"] == ["housing"] and data["sdoh_z_codes"] == ["Z59.811", "Z59.19", "Z59.11"]
    assert case.open_tasks() == ["Confirm need and consent — housing"]


def test_no_referral_without_consent_and_a_rejection_leads_to_another_service_or_a_reason(
        directory: ApiClient, clock: ManualClock) -> None:
    case = Case(directory, clock)
    declined = case.complete("Confirm need and consent — transportation", case.manager, need_confirmed=True,
                             consent_to_share=False)
    assert declined.status_code == 200, declined.text
    case.consent_and_choose("food", "fict-svc-meals")
    assert set(case.referrals()) == {"food"}  # no referral for transportation without consent
    food = case.referrals()["food"]
    rejected = directory.post(f"/api/referrals/{food['id']}/status", case.manager, {"status": "rejected"})
    assert rejected.status_code == 422 and "status_reason" in rejected.text  # Gravity: a reason is required
    rejected = directory.post(f"/api/referrals/{food['id']}/status", case.manager,
                              {"status": "rejected", "status_reason": "outside our service area"})
    assert rejected.status_code == 200, rejected.text
    assert case.open_tasks() == ["Referral not taken — decide next step — food"]
    case.at(ny(3, 3))
    case.complete("Referral not taken — decide next step — food", case.manager, next_step="choose-another-service")
    chosen = case.complete("Choose a service — food", case.manager, service_id="fict-svc-food-pantry")
    assert chosen.status_code == 200, chosen.text
    second = case.referrals()["food"]
    assert second["service_id"] == "fict-svc-food-pantry" and second["id"] != food["id"]
    stale = directory.post(f"/api/referrals/{food['id']}/status", case.manager,
                           {"status": "rejected", "outcome": "not-eligible"})
    assert stale.status_code == 200  # the first referral's outcome: the pathway follows the second one
    assert "food_loop_closed_at" not in case.view()["data"]
    cancel = directory.post(f"/api/referrals/{second['id']}/status", case.manager,
                            {"status": "cancelled", "status_reason": "patient moved away"})
    assert cancel.status_code == 200
    stop = case.complete("Referral not taken — decide next step — food", case.manager,
                         next_step="no-longer-interested")
    assert stop.status_code == 200, stop.text
    assert case.view()["status"] == "completed" and case.view()["data"]["food_outcome"] == "no-longer-interested"
    assert case.referrals(status="cancelled")["food"]["outcome"] == "no-longer-interested"


def test_an_integration_account_updates_only_its_own_referrals_and_only_the_organizations_statuses(
        directory: ApiClient, clock: ManualClock) -> None:
    case = Case(directory, clock)
    case.consent_and_choose("food", "fict-svc-food-pantry")
    food = case.referrals()["food"]
    other = directory.user("integration", name="another-org-system")
    assert directory.post(f"/api/referrals/{food['id']}/status", other, {"status": "accepted"}).status_code == 404
    owner = directory.user("integration", name="pantry-system")
    owned_by(directory, food["id"], owner)
    mine = directory.get("/api/referrals", owner).json()["items"]
    assert [r["id"] for r in mine] == [food["id"]]
    error = directory.post(f"/api/referrals/{food['id']}/status", owner, {"status": "entered-in-error"})
    assert error.status_code == 403  # the requester's status
    stale = directory.post(f"/api/referrals/{food['id']}/status", owner, {"status": "accepted", "version": 99})
    assert stale.status_code == 409
    unknown = directory.post(f"/api/referrals/{food['id']}/status", owner, {"status": "teleported"})
    assert unknown.status_code == 422
    wrong = directory.post(f"/api/referrals/{food['id']}/status", owner, {"status": "in-progress"})
    assert wrong.status_code == 409  # not accepted yet
    auditor = directory.user("auditor")
    assert directory.get(f"/api/referrals/{food['id']}", auditor).status_code == 200
    assert directory.get("/api/referrals", auditor, params={"status": "lost"}).status_code == 422
    assert directory.get("/api/referrals", auditor, params={"domain": "money"}).status_code == 422
    assert directory.post(f"/api/referrals/{food['id']}/status", auditor, {"status": "accepted"}).status_code == 403


def test_a_service_that_is_not_in_the_directory_is_refused(directory: ApiClient, clock: ManualClock) -> None:
    case = Case(directory, clock)
    case.complete("Confirm need and consent — food", case.manager, need_confirmed=True, consent_to_share=True)
    for service in ("no-such-service", "fict-svc-closed"):
        refused = case.complete("Choose a service — food", case.manager, service_id=service)
        assert refused.status_code == 422 and service in refused.text
    assert case.referrals() == {} and "Choose a service — food" in case.open_tasks()


def test_the_example_start_data_runs(directory: ApiClient, clock: ManualClock) -> None:
    sidecar = json.loads((ROOT / "bpmn" / f"{KEY}.pathway.json").read_text())
    lead = directory.user("clinical_lead")
    started = directory.start(lead, KEY, business_key="CASE-EXAMPLE", data=sidecar["example_data"])
    assert started.status_code == 201, started.text


def test_the_follow_up_delay_comes_from_the_start_data(directory: ApiClient, clock: ManualClock) -> None:
    case = Case(directory, clock, follow_up_within="P2BD")
    case.consent_and_choose("food", "fict-svc-food-pantry")  # Monday 2 March 10:00
    case.at(ny(3, 4, 9, 59))
    assert "Follow up on the referral — food" not in case.open_tasks()
    case.at(ny(3, 4, 10, 0))  # two business days later
    assert "Follow up on the referral — food" in case.open_tasks()
    waiting = case.complete("Follow up on the referral — food", case.chw, contacted="nobody")
    assert waiting.status_code == 200, waiting.text
    assert case.referrals()["food"]["status"] == "requested"  # nothing learned: the wait starts again
    case.at(ny(3, 6, 10, 0))
    assert "Follow up on the referral — food" in case.open_tasks()
