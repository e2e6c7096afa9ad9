"""The break-glass pages and the idle-logoff warning's endpoints, through the ASGI app with the HTML parsed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from carepath.api.app import create_app
from carepath.api.settings import Settings
from carepath.engine.application import CarePath
from carepath.engine.clock import ManualClock
from carepath.engine.persistence.tables import Event
from tests.support import diagrams as d
from tests.support.api import ApiClient
from tests.support.web import Browser, page, signed_in, text_of, web_user

REASON = "patient collapsed in the waiting room, their team is off site"


@pytest.fixture
def web(engine: CarePath, database_url: str) -> Iterator[Any]:
    settings = Settings(database_url=database_url, deploy_shipped_pathways=False, scheduler_enabled=False,
                        web_idle_minutes=15, web_idle_warning_seconds=120)
    yield create_app(settings, engine)


@pytest.fixture
def episode(api: ApiClient) -> str:
    lead = api.user("clinical_lead")
    assert api.deploy(lead, ("fu.bpmn", d.linear_user_tasks("fu", "Call patient", lane="Ward A"))).status_code == 201
    return str(api.start(lead, "fu", business_key="enc-77", patient_id="pat-7").json()["id"])


def _signed_in(web: Any, engine: CarePath, name: str, role: str, *groups: str) -> Browser:
    web_user(engine, name, role, *groups)
    return signed_in(web, name)


def _record_reads(engine: CarePath, actor: str) -> list[Event]:
    with engine.db.read() as session:
        return list(session.scalars(select(Event).where(Event.type == "record_viewed", Event.actor == actor)))


def test_a_coordinator_breaks_the_glass_and_sees_the_patients_episodes(web: Any, engine: CarePath,
                                                                        episode: str) -> None:
    nurse = _signed_in(web, engine, "nina", "coordinator", "ward-b")
    form = page(nurse.get("/app/break-glass"))
    assert form.xpath("//h1") and "None." in text_of(form.xpath("//main")[0])
    for field in form.xpath("//form[@action='/app/break-glass']//*[@name][not(@type='hidden')]"):
        assert form.xpath(f'//label[@for="{field.get("id")}"]'), field.get("name")
    done = nurse.submit("/app/break-glass", "/app/break-glass", patient_id="pat-7", reason=REASON, minutes="20")
    assert (done.status_code, done.headers["location"]) == (303, "/app/break-glass")
    shown = page(nurse.get("/app/break-glass"))
    [grant] = shown.xpath("//section[@class='grant']")
    assert "Patient pat-7" in text_of(grant) and REASON in text_of(grant)
    assert grant.xpath(f'.//a[@href="/app/episodes/{episode}"]')
    assert _record_reads(engine, "nina") == []  # a list of episodes is not a read of a record


def test_a_missing_reason_is_shown_at_its_field(web: Any, engine: CarePath, episode: str) -> None:
    nurse = _signed_in(web, engine, "nina", "coordinator", "ward-b")
    refused = nurse.submit("/app/break-glass", "/app/break-glass", patient_id="pat-7", reason="hurry", minutes="999")
    assert refused.status_code == 422
    html = page(refused)
    assert {a.get("href") for a in html.xpath("//*[@role='alert']//a")} == {"#reason", "#minutes"}
    reason = html.xpath("//textarea[@id='reason']")[0]
    assert reason.get("aria-invalid") == "true" and "reason-error" in reason.get("aria-describedby")
    assert reason.text == "hurry"  # what was typed stays
    assert "None." in text_of(html.xpath("//main")[0])


def test_a_role_that_may_not_is_told_why(web: Any, engine: CarePath) -> None:
    lead = _signed_in(web, engine, "lee", "clinical_lead")
    html = page(lead.get("/app/break-glass"))
    assert not html.xpath("//form[@action='/app/break-glass']")
    assert "read every patient's record" in text_of(html.xpath("//main")[0])


def test_the_auditors_review_lists_grants_and_the_reads_under_them(web: Any, engine: CarePath, api: ApiClient,
                                                                   episode: str, clock: ManualClock) -> None:
    nurse = _signed_in(web, engine, "nina", "coordinator", "ward-b")
    nurse.submit("/app/break-glass", "/app/break-glass", patient_id="pat-7", reason=REASON, minutes="20")
    token_user = api.user("coordinator", "ward-c", name="omar")
    api.post("/api/break-glass", token_user, {"patient_id": "pat-7", "reason": "<script>alert(1)</script> now!"})
    api.get(f"/api/instances/{episode}", token_user)
    clock.advance(minutes=1)

    assert nurse.get("/app/audit/break-glass").status_code == 403
    auditor = _signed_in(web, engine, "ada", "auditor")
    html = page(auditor.get("/app/audit/break-glass"))
    rows = html.xpath("//table[caption]/tbody/tr")
    assert [r.xpath("./td")[0].text for r in rows] == ["omar", "nina"]  # newest first
    omar = rows[0]
    assert "<script>alert(1)</script> now!" in text_of(omar)  # shown as text
    assert omar.xpath(f'.//a[@href="/app/episodes/{episode}"]') and "instance" in text_of(omar.xpath(".//ul")[0])
    assert "none" in text_of(rows[1].xpath("./td")[5])
    assert html.xpath("//th[@scope='col']")


def test_the_holder_ends_their_access_from_their_page(web: Any, engine: CarePath, episode: str) -> None:
    nurse = _signed_in(web, engine, "nina", "coordinator", "ward-b")
    nurse.submit("/app/break-glass", "/app/break-glass", patient_id="pat-7", reason=REASON, minutes="20")
    assert nurse.get(f"/app/episodes/{episode}").status_code == 200
    [grant] = page(nurse.get("/app/break-glass")).xpath("//section[@class='grant']")
    [form] = grant.xpath(".//form[contains(@action, '/end')]")
    done = nurse.submit("/app/break-glass", form.get("action"))
    assert (done.status_code, done.headers["location"]) == (303, "/app/break-glass")
    assert "None." in text_of(page(nurse.get("/app/break-glass")).xpath("//main")[0])
    assert nurse.get(f"/app/episodes/{episode}").status_code == 404
    other = _signed_in(web, engine, "otto", "coordinator", "ward-b")
    assert other.client.post(form.get("action"), data={"csrf_token": "x"}).status_code == 403  # CSRF first
    with engine.db.read() as session:
        assert session.scalars(select(Event.actor).where(Event.type == "break_glass_ended")).all() == ["nina"]


def test_the_auditors_review_offers_ending_a_running_grant_only(web: Any, engine: CarePath, api: ApiClient,
                                                                episode: str) -> None:
    nurse = _signed_in(web, engine, "nina", "coordinator", "ward-b")
    nurse.submit("/app/break-glass", "/app/break-glass", patient_id="pat-7", reason=REASON, minutes="20")
    lead = _signed_in(web, engine, "lee", "clinical_lead")
    assert lead.get("/app/audit/break-glass").status_code == 403
    auditor = _signed_in(web, engine, "ada", "auditor")
    [row] = page(auditor.get("/app/audit/break-glass")).xpath("//table[caption]/tbody/tr")
    [form] = row.xpath(".//form[contains(@action, '/end')]")
    done = auditor.submit("/app/audit/break-glass", form.get("action"))
    assert (done.status_code, done.headers["location"]) == (303, "/app/audit/break-glass")
    [row] = page(auditor.get("/app/audit/break-glass")).xpath("//table[caption]/tbody/tr")
    assert not row.xpath(".//form") and "ended early" in text_of(row)
    assert "None." in text_of(page(nurse.get("/app/break-glass")).xpath("//main")[0])
    again = auditor.client.post(form.get("action"), data={"csrf_token": _csrf(auditor), "back": "review"})
    assert again.status_code == 409


def _csrf(browser: Browser) -> str:
    return str(page(browser.get("/app/break-glass")).xpath("//input[@name='csrf_token']")[0].get("value"))


def test_the_error_page_of_a_missing_episode_links_to_break_glass(web: Any, engine: CarePath) -> None:
    nurse = _signed_in(web, engine, "nina", "coordinator", "ward-b")
    missing = nurse.get("/app/episodes/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404
    assert page(missing).xpath("//a[@href='/app/break-glass']")
    assert not page(nurse.get("/app/no-such-page")).xpath("//a[@href='/app/break-glass']")


def test_pages_carry_the_idle_limit_and_the_warning(web: Any, engine: CarePath) -> None:
    browser = _signed_in(web, engine, "nina", "coordinator")
    html = page(browser.get("/app/worklist"))
    body = html.xpath("//body")[0]
    assert (body.get("data-idle-seconds"), body.get("data-idle-warning-seconds"), body.get("data-user")) == (
        "900", "120", "nina")
    dialog = html.xpath("//dialog[@id='idle-warning']")[0]
    assert dialog.get("role") == "alertdialog" and dialog.get("aria-labelledby") == "idle-warning-title"
    assert dialog.xpath(".//button[@id='idle-warning-stay']") and dialog.xpath(".//form[@action='/signout']")
    assert html.xpath("//script[contains(@src, '/static/session.js')][@defer]")
    signin = page(Browser(web).get("/signin")).xpath("//body")[0]
    assert signin.get("data-idle-seconds") is None


def test_keepalive_extends_the_session_and_asking_does_not(web: Any, engine: CarePath, clock: ManualClock) -> None:
    browser = _signed_in(web, engine, "nina", "coordinator")
    csrf = page(browser.get("/app/worklist")).xpath("//input[@name='csrf_token']")[0].get("value")

    def remaining() -> float:
        return float(browser.get("/app/session").json()["remaining_seconds"])

    assert remaining() == 900
    clock.advance(seconds=30)  # within the minute: a page would not write last_seen_at; keepalive does
    assert remaining() == 870
    assert browser.client.post("/app/session/keepalive", data={"csrf_token": "wrong"}).status_code == 403
    assert browser.client.post("/app/session/keepalive", data={"csrf_token": csrf}).status_code == 204
    assert remaining() == 900
    clock.advance(minutes=14)
    assert remaining() == 60  # asking did not count
    background = browser.client.get("/app/worklist", headers={"X-CarePath-Background": "1"})
    assert background.status_code == 200 and remaining() == 60  # an automatic refresh does not count either
    browser.get("/app/worklist")
    assert remaining() == 900  # a page opened (here or in another tab) does
    clock.advance(minutes=15)
    assert remaining() == 0
    assert browser.get("/app/sessions").headers["location"] == "/signin?next=/app/sessions"
    assert browser.client.post("/app/session/keepalive", data={"csrf_token": csrf}).status_code == 303
    assert Browser(web).get("/app/session").json() == {"remaining_seconds": 0}
