"""A referral to an organization of the partner registry goes out electronically: the FHIR ServiceRequest and
referral Task (SDOH Clinical Care shapes, R4) on the signed-webhook outbox, sent once the step's transaction
commits; the organization's integration account then owns the referral and its status updates move the
pathway. An organization that is not a partner gets nothing sent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace

import pytest
from fhir.resources.R4B.bundle import Bundle

from carepath.api.outbound_http import HttpPoster
from carepath.engine.clock import ManualClock
from carepath.engine.identity import SYSTEM
from carepath.engine.usecases.outbox import deliver_outbound
from carepath.engine.usecases.partners import add_partner
from tests.pathways.test_sdoh_screening_referral_scenarios import Case, directory, ny  # noqa: F401 - the fixture
from tests.support.api import ApiClient
from tests.support.partner_endpoint import Endpoint, partner_endpoint

KEY = b"referral-delivery-test-key-at-least-32-bytes"


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    with partner_endpoint() as running:
        yield running


def _partner(api: ApiClient, endpoint: Endpoint | None, organization: str = "fict-org-1") -> str:
    app = api.engine
    app.config = replace(app.config, partner_secret_key=KEY, partner_allow_http_loopback=True)
    app.outbound_poster = HttpPoster(timeout_s=5)
    account = api.user("integration", name="northside-system")
    add_partner(app, SYSTEM, "northside", "Northside Neighbors", endpoint_url=endpoint.url if endpoint else None,
                account=account, directory_organizations=[organization])
    return account


def test_a_partners_referral_is_sent_as_service_request_and_task_and_its_account_moves_it(
        directory: ApiClient, clock: ManualClock, endpoint: Endpoint) -> None:  # noqa: F811
    account = _partner(directory, endpoint)
    case = Case(directory, clock)
    case.at(ny(3, 12))
    case.consent_and_choose("food", "fict-svc-food-pantry")
    food = case.referrals()["food"]
    assert deliver_outbound(directory.engine) == 1
    [received] = endpoint.received
    assert received.headers["Idempotency-Key"] == f"referral:{food['id']}:requested"
    assert received.headers["Content-Type"].startswith("application/fhir+json")
    bundle = json.loads(received.body)
    Bundle.model_validate(bundle)  # valid FHIR (R4B models; wire-compatible with R4 for these resources)
    request, task = (entry["resource"] for entry in bundle["entry"])
    assert request["resourceType"] == "ServiceRequest" and request["intent"] == "order"
    assert request["category"][0]["coding"][0]["code"] == "food-insecurity"
    assert task["resourceType"] == "Task" and task["status"] == "requested" and task["id"] == food["id"]
    assert task["focus"]["reference"] == f"ServiceRequest/{request['id']}"
    assert task["code"]["coding"][0]["code"] == "fulfill"
    assert task["owner"]["identifier"]["value"] == "fict-org-1"
    assert "screening" not in received.body.decode() and "Often true" not in received.body.decode()

    accepted = directory.post(f"/api/referrals/{food['id']}/status", account, {"status": "accepted"})
    assert accepted.status_code == 200, accepted.text
    done = directory.post(f"/api/referrals/{food['id']}/status", account,
                          {"status": "completed", "outcome": "got-help", "version": accepted.json()["version"]})
    assert done.status_code == 200, done.text
    assert case.view()["data"]["food_outcome"] == "got-help"
    # the rides program is not a partner: nothing was sent for it, and the partner cannot touch it
    case.consent_and_choose("transportation", "fict-svc-rides")
    rides = case.referrals()["transportation"]
    assert deliver_outbound(directory.engine) == 0 and len(endpoint.received) == 1
    refused = directory.post(f"/api/referrals/{rides['id']}/status", account, {"status": "accepted"})
    assert refused.status_code == 404


def test_a_partner_without_an_endpoint_owns_its_referrals_but_is_sent_nothing(
        directory: ApiClient, clock: ManualClock) -> None:  # noqa: F811
    account = _partner(directory, None)
    case = Case(directory, clock)
    case.at(ny(3, 12))
    case.consent_and_choose("food", "fict-svc-food-pantry")
    food = case.referrals()["food"]
    assert deliver_outbound(directory.engine) == 0
    assert directory.post(f"/api/referrals/{food['id']}/status", account, {"status": "accepted"}).status_code == 200
