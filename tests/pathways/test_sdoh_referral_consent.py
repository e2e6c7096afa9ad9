"""Withdrawing a patient's consent to share information with a community organization, over the API with
the controlled clock: the open referral to it is cancelled with the reason, the pathway moves on, the
delivery not yet sent is never sent, and no later referral goes to that organization."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import select

from carepath.engine.clock import ManualClock
from carepath.engine.identity import SYSTEM
from carepath.engine.persistence.partner_tables import OutboundDelivery
from carepath.engine.usecases.outbox import deliver_outbound
from carepath.engine.usecases.partners import add_partner
from tests.pathways.test_sdoh_screening_referral_scenarios import Case, directory, ny
from tests.support.api import ApiClient

__all__ = ["directory"]  # the fixture, imported for pytest
WITHDRAWN = "patient withdrew consent"


def _partner_with_endpoint(api: ApiClient) -> list[tuple[str, bytes]]:
    """Northside Neighbors (fict-org-1) has a system; what CarePath posts to it is recorded."""
    api.engine.config = replace(api.engine.config, partner_secret_key=b"k" * 40)
    add_partner(api.engine, SYSTEM, "northside", "Northside Neighbors", endpoint_url="https://cbo.example/hook",
                directory_organizations=["fict-org-1"])
    posted: list[tuple[str, bytes]] = []

    def poster(url: str, body: bytes, headers: dict[str, str]) -> int:
        posted.append((url, body))
        return 200

    api.engine.outbound_poster = poster
    return posted


def _deliveries(api: ApiClient) -> list[tuple[str, str, str | None]]:
    with api.engine.db.read() as session:
        rows = session.scalars(select(OutboundDelivery).order_by(OutboundDelivery.id))
        return [(row.idempotency_key, row.state, row.last_error) for row in rows]


def _withdraw(api: ApiClient, referral_id: str, user: str, **body: Any) -> Any:
    return api.post(f"/api/referrals/{referral_id}/withdraw-consent", user, body or None)


def test_withdrawn_consent_cancels_the_referral_moves_the_pathway_and_sends_nothing(directory: ApiClient,
                                                                                   clock: ManualClock) -> None:
    posted = _partner_with_endpoint(directory)
    case = Case(directory, clock)
    case.at(ny(3, 3))
    case.consent_and_choose("food", "fict-svc-food-pantry")
    food = case.referrals()["food"]
    assert [(key, state) for key, state, _ in _deliveries(directory)] == [
        (f"referral:{food['id']}:requested", "pending")]
    assert "withdraw_consent" in food["actions"]

    withdrawn = _withdraw(directory, food["id"], case.manager, note="patient called: does not want Northside involved")
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["cancelled"] == [food["id"]]
    after = directory.get(f"/api/referrals/{food['id']}", case.manager).json()
    assert (after["status"], after["status_reason"], after["consent"]) == ("cancelled", WITHDRAWN, False)
    assert case.open_tasks() == ["Confirm need and consent — transportation",
                                 "Referral not taken — decide next step — food"]
    assert deliver_outbound(directory.engine) == 0 and posted == []  # the queued referral is never sent
    [(_, state, error)] = _deliveries(directory)
    assert state == "dead" and error is not None and WITHDRAWN in error
    admin = directory.user("admin")
    [delivery] = directory.get("/api/outbound-deliveries", admin).json()["items"]
    retried = directory.post(f"/api/outbound-deliveries/{delivery['id']}/retry", admin)
    assert retried.status_code == 409 and "withheld" in retried.text  # an admin cannot send it either

    history = directory.get(f"/api/instances/{case.id}/history", case.lead).text
    assert "referral_consent_withdrawn" in history and WITHDRAWN in history

    # No later referral goes to that organization for the patient, whatever its service.
    case.complete("Referral not taken — decide next step — food", case.manager, next_step="choose-another-service")
    again = case.complete("Choose a service — food", case.manager, service_id="fict-svc-meals")
    assert again.status_code == 409 and "withdrew consent" in again.text
    assert [r["id"] for r in case.referrals().values()] == [food["id"]] and len(_deliveries(directory)) == 1

    repeated = _withdraw(directory, food["id"], case.manager)
    assert repeated.status_code == 200 and repeated.json()["cancelled"] == []


def test_only_the_episodes_staff_may_withdraw_consent(directory: ApiClient, clock: ManualClock) -> None:
    case = Case(directory, clock)
    case.consent_and_choose("food", "fict-svc-food-pantry")
    food = case.referrals()["food"]
    auditor = _withdraw(directory, food["id"], directory.user("auditor"))
    assert auditor.status_code == 403 and "coordinator" in auditor.text  # reads, never acts
    other_organization = _withdraw(directory, food["id"], directory.user("integration"))
    assert other_organization.status_code in (403, 404)  # not its referral: not even told it exists
    assert _withdraw(directory, "no-such-referral", case.manager).status_code == 404
    too_long = _withdraw(directory, food["id"], case.manager, note="x" * 2001)
    assert too_long.status_code == 422
    assert directory.get(f"/api/referrals/{food['id']}", case.manager).json()["status"] == "requested"
