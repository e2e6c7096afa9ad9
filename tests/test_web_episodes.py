"""The episode pages (api/web/episodes.py): finding episodes with exact filters and the API's visibility,
the episode page with its timeline, measures and history, one recorded read per page view, the diagram and
the printable report reached with the session cookie, input refused with a page naming the field."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from carepath.engine.clock import ManualClock
from carepath.engine.model import RECORD_VIEWED
from carepath.engine.persistence.tables import Event
from tests.support import diagrams as d
from tests.support.api import ApiClient
from tests.support.episodes import SCRIPT_PATIENT, Episodes, episodes, web_and_api_user
from tests.support.web import Browser, page, signed_in, text_of


@pytest.fixture
def made(api: ApiClient, clock: ManualClock) -> Episodes:
    return episodes(api, clock)


def _found(browser: Browser, query: str) -> list[str]:
    response = browser.get(f"/app/episodes?{query}")
    assert response.status_code == 200, response.text
    return [text_of(cell) for cell in page(response).xpath('//table[@class="episodes"]//td[@class="business-key"]')]


def _reads(made: Episodes, instance_id: str) -> list[dict[str, Any]]:
    with made.api.engine.db.read() as session:
        return list(session.scalars(select(Event.data).where(Event.type == RECORD_VIEWED,
                                                            Event.instance_id == instance_id).order_by(Event.id)))


FILTERS = [
    ("", ["enc-4", "enc-3", "enc-2", "enc-1"]),
    ("patient_id=pat-1", ["enc-4", "enc-1"]),
    ("patient_id=pat-1&pathway=cohort", ["enc-1"]),
    ("business_key=enc-2", ["enc-2"]),
    ("business_key=enc", []),  # a business key is matched whole, not as a prefix
    ("status=cancelled", ["enc-2"]),
    ("status=running", ["enc-4", "enc-3"]),
    ("pathway=other", ["enc-4"]),
    ("started_from=2026-01-06&started_to=2026-01-20", ["enc-3", "enc-2"]),  # both days included
    ("started_to=2026-01-05", ["enc-1"]),
    ("patient_id=+pat-2+&status=", ["enc-2"]),  # spaces around a value, and an empty field, do not filter
]


def test_each_filter_finds_exactly_its_episodes(made: Episodes) -> None:
    browser = made.browser(made.auditor)
    assert [(query, _found(browser, query)) for query, _ in FILTERS] == FILTERS


def test_a_coordinator_finds_only_the_episodes_they_may_read_and_gets_not_found_for_the_others(
        made: Episodes) -> None:
    west = made.browser(made.west)
    assert _found(west, "") == ["enc-2"]
    assert _found(west, "patient_id=pat-1") == []
    api_listed = made.api.get("/api/instances", made.west).json()["items"]
    assert [i["business_key"] for i in api_listed] == ["enc-2"]
    other = made.ids["enc-1"]
    before = len(_reads(made, other))
    for path in (f"/app/episodes/{other}", f"/app/episodes/{other}/diagram.svg", f"/app/episodes/{other}/report"):
        refused = west.get(path)
        assert refused.status_code == 404 and refused.headers["content-type"].startswith("text/html"), path
        assert "enc-1" not in refused.text and "pat-1" not in refused.text
    assert len(_reads(made, other)) == before  # nothing was read
    own = west.get(f"/app/episodes/{made.ids['enc-2']}")
    assert own.status_code == 200
    assert page(own).xpath('//a[contains(@href, "/views")]') == []  # who viewed it: for auditors
    assert page(made.browser(made.auditor).get(f"/app/episodes/{made.ids['enc-2']}")).xpath(
        '//a[@href="/app/patients/pat-2/views"]')


def test_the_episode_page_records_one_read_per_view_and_none_for_its_diagram(made: Episodes) -> None:
    browser = made.browser(made.auditor)
    episode = made.ids["enc-1"]
    before = _reads(made, episode)
    assert browser.get(f"/app/episodes/{episode}").status_code == 200
    assert browser.get(f"/app/episodes/{episode}/diagram.svg").status_code == 200
    assert browser.get(f"/app/episodes/{episode}?offset=50").status_code == 200  # another page: another view
    after = _reads(made, episode)[len(before):]
    assert [r["what"] for r in after] == ["instance", "instance"]
    assert after[0]["client"]["host"] == "testclient"


def test_the_episode_page_shows_who_did_what_when_and_the_measure_missed_by_how_much(made: Episodes) -> None:
    browser = made.browser(made.auditor)
    shown = page(browser.get(f"/app/episodes/{made.ids['enc-1']}"))
    facts = text_of(shown.xpath('//dl[@class="facts"]')[0])
    assert "completed" in facts and "pat-1" in facts and "enc-1" in facts and "cohort, version 1" in facts
    start = shown.xpath('//h2[@id="start-data"]/following-sibling::dl[1]')[0]
    assert dict(zip(start.xpath("dt/text()"), start.xpath("dd/text()"), strict=True)) == {
        "Visit date": "2026-01-05", "Team": "east"}
    task_row = text_of(shown.xpath('//table[@class="timeline"]//tbody/tr')[0])
    assert "Call patient" in task_row and "completed 22 Jan 2026 10:00 by ana" in task_row
    measure = shown.xpath('//table[@class="measures"]//tr[@data-measure-id="call-2bd"]')[0]
    # The call was due by the end of 7 Jan (2 business days after 5 Jan, New York) and made 22 Jan 10:00.
    assert "not met" in text_of(measure) and "14 d 10 h" in text_of(measure)
    changes = [text_of(c) for c in shown.xpath('//table[@class="history"]//td[@class="changed"]')]
    assert "Status: running → completed" in changes
    cancelled = page(browser.get(f"/app/episodes/{made.ids['enc-2']}"))
    ended = text_of(cancelled.xpath('//table[@class="timeline"]//td[@class="ended"]')[0])
    assert ended.startswith("cancelled 22 Jan 2026")


def test_the_history_is_paged_and_states_where_it_stands(made: Episodes, api: ApiClient) -> None:
    browser = made.browser(made.auditor)
    episode = made.ids["enc-1"]
    api_history = api.get(f"/api/instances/{episode}/history", made.auditor).json()
    shown = page(browser.get(f"/app/episodes/{episode}"))
    ids = [int(i) for i in shown.xpath('//table[@class="history"]//tr/@data-event-id')]
    assert ids == [e["id"] for e in api_history["items"]]
    assert text_of(shown.xpath('//table[@class="history"]/caption')[0]) == f"Changes 1 to {len(ids)} of {len(ids)}"
    beyond = page(browser.get(f"/app/episodes/{episode}?offset={len(ids)}"))
    assert beyond.xpath('//table[@class="history"]//tr/@data-event-id') == []
    assert beyond.xpath('//nav[@aria-label="Pages of the history"]//a[text()="Previous page"]')
    assert beyond.xpath('//h2[@id="start-data"]/following-sibling::dl[1]/dd/text()') == ["2026-01-05", "east"]


def test_the_report_is_the_apis_reached_with_the_cookie_and_allowed_its_own_styles(made: Episodes) -> None:
    browser = made.browser(made.auditor)
    episode = made.ids["enc-1"]
    report = browser.get(f"/app/episodes/{episode}/report")
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
    api_report = made.api.get(f"/api/instances/{episode}/report.html", made.auditor).text
    strip = "//dl"  # the report says when it was made and for whom: the same for both here
    assert text_of(page(report).xpath(strip)[0]) == text_of(page(made.api.client.get(
        f"/api/instances/{episode}/report.html", headers=made.api.headers(made.auditor))).xpath(strip)[0])
    assert page(report).xpath("//h2/text()") == page(made.api.client.get(
        f"/api/instances/{episode}/report.html", headers=made.api.headers(made.auditor))).xpath("//h2/text()")
    assert "enc-1" in api_report
    policy = report.headers["content-security-policy"]
    assert "'sha256-" in policy and "unsafe-inline" not in policy and "script-src 'self'" in policy
    assert [r["what"] for r in _reads(made, episode)][-1] == "report"
    assert Browser(made.api.client.app).get(f"/app/episodes/{episode}/report").status_code == 303  # no cookie


def test_the_diagram_shows_the_path_of_a_laid_out_pathway(shipped: ApiClient, clock: ManualClock) -> None:
    auditor = web_and_api_user(shipped, "auditor", name="audrey")
    lead = shipped.user("clinical_lead")
    with open("bpmn/post-ed-follow-up.pathway.json") as sidecar:
        data = json.load(sidecar)["example_data"]
    started = shipped.start(lead, "post-ed-follow-up", "enc-9", patient_id="pat-9", data=data)
    assert started.status_code == 201, started.text
    browser = signed_in(shipped.client.app, auditor)
    svg = browser.get(f"/app/episodes/{started.json()['id']}/diagram.svg")
    api_svg = shipped.get(f"/api/pathways/post-ed-follow-up/versions/1/diagram.svg?instance={started.json()['id']}",
                          auditor)
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert svg.text == api_svg.text and "highlight-current" in svg.text and "highlight-done" in svg.text


def test_a_diagram_without_layout_is_a_picture_that_says_so(made: Episodes) -> None:
    svg = made.browser(made.auditor).get(f"/app/episodes/{made.ids['enc-1']}/diagram.svg")
    assert svg.status_code == 200 and "no layout" in svg.text


def test_a_script_in_a_patient_id_shows_as_text(made: Episodes) -> None:
    browser = made.browser(made.auditor)
    for path in ("/app/episodes", f"/app/episodes/{made.ids['enc-3']}"):
        shown = page(browser.get(path))
        assert shown.xpath("//script[contains(text(), 'owned')]") == []
        assert SCRIPT_PATIENT in text_of(shown.xpath("//main")[0])


BAD_FILTERS = [("status=lost", "status"), ("started_from=2026-13-01", "started_from"),
               ("started_to=yesterday", "started_to"), ("offset=-1", "offset"),
               ("patient_id=" + "x" * 201, "patient_id"),
               ("started_from=2026-02-01&started_to=2026-01-01", "started_to")]  # an empty period, as compliance


def test_a_bad_filter_is_a_page_naming_the_field(made: Episodes) -> None:
    browser = made.browser(made.auditor)
    for query, field in BAD_FILTERS:
        refused = browser.get(f"/app/episodes?{query}")
        assert refused.status_code == 422 and refused.headers["content-type"].startswith("text/html"), query
        assert field in text_of(page(refused).xpath('//*[@role="alert"]')[0]), query
    # A value of the right kind but not allowed: the form again, the error at its field, what was typed kept.
    shown = page(browser.get("/app/episodes?status=lost&patient_id=pat-1"))
    assert shown.xpath('//select[@id="status"]/@aria-invalid') == ["true"]
    assert shown.xpath('//select[@id="status"]/@aria-describedby') == ["status-error"]
    assert "status must be one of" in text_of(shown.xpath('//p[@id="status-error"]')[0])
    assert shown.xpath('//*[@role="alert"]//a/@href') == ["#status"]
    assert shown.xpath('//input[@id="patient_id"]/@value') == ["pat-1"]
    assert shown.xpath('//table[@class="episodes"]') == []


def test_an_unknown_episode_is_a_not_found_page(made: Episodes) -> None:
    missing = made.browser(made.auditor).get("/app/episodes/no-such-episode")
    assert missing.status_code == 404 and "no-such-episode" in text_of(page(missing).xpath("//main")[0])


def test_the_search_is_paged(made: Episodes, api: ApiClient) -> None:
    for n in range(51):
        assert api.start(made.lead, "other", f"bulk-{n:02d}", patient_id="pat-bulk").status_code == 201
    browser = made.browser(made.auditor)
    first = page(browser.get("/app/episodes?patient_id=pat-bulk"))
    assert len(first.xpath('//table[@class="episodes"]/tbody/tr')) == 50
    following = first.xpath('//nav[@aria-label="Pages of episodes"]//a[text()="Next page"]/@href')[0]
    assert "patient_id=pat-bulk" in following and "offset=50" in following
    assert len(page(browser.get(following)).xpath('//table[@class="episodes"]/tbody/tr')) == 1


RAW_NOTATION = ("null", "[]", "{'", '{"', "None", "True", "False", "UTC")


def test_the_episode_page_and_report_show_values_in_words_and_times_in_the_zone(
        api: ApiClient, clock: ManualClock) -> None:
    """No programmer notation where a care team reads: start data titled by the start form, null as "—",
    an empty list as "none", an object as "Field: value" pairs, booleans Yes/No, instants in the zone."""
    lead = web_and_api_user(api, "clinical_lead", name="lena")
    auditor = web_and_api_user(api, "auditor", name="audrey")
    schema = {"type": "object", "properties": {
        "visit_date": {"type": "string", "title": "Date of the visit"}, "team": {"type": "string"},
        "notes": {"type": ["string", "null"]}, "flags": {"type": "array"}, "contact": {"type": "object"},
        "urgent": {"type": "boolean"}, "seen_at": {"type": "string"}}}
    sidecar = json.dumps({"start_data": schema})
    assert api.deploy(lead, ("plain.bpmn", d.linear_user_tasks("plain", "Review")),
                      ("plain.pathway.json", sidecar)).status_code == 201
    clock.set(datetime(2026, 1, 5, 15, tzinfo=UTC))
    started = api.start(lead, "plain", "enc-w", patient_id="pat-w", data={
        "visit_date": "2026-01-05", "team": "east", "notes": None, "flags": [], "urgent": True,
        "contact": {"phone": "555-0100", "consent": False}, "seen_at": "2026-01-05T15:30:00+00:00"})
    assert started.status_code == 201, started.text
    browser = Browser(api.client.app)
    browser.sign_in(auditor)
    shown = page(browser.get(f"/app/episodes/{started.json()['id']}"))
    start = shown.xpath('//h2[@id="start-data"]/following-sibling::dl[1]')[0]
    assert dict(zip(start.xpath("dt/text()"), start.xpath("dd/text()"), strict=True)) == {
        "Date of the visit": "2026-01-05", "Team": "east", "Notes": "—", "Flags": "none", "Urgent": "Yes",
        "Contact": "Phone: 555-0100; Consent: No", "Seen at": "05 Jan 2026 10:30"}  # New York, the setting's zone
    history = text_of(shown.xpath('//table[@class="history"]')[0])
    assert "Episode started" in history
    assert shown.xpath('//table[@class="history"]//span[@title="instance_started"]')
    for raw in RAW_NOTATION:
        assert raw not in text_of(shown.xpath("//main")[0]), raw
    report = page(browser.get(f"/app/episodes/{started.json()['id']}/report"))
    words = text_of(report.xpath("//body")[0])
    assert "05 Jan 2026 10:00" in words and "America/New_York" in words  # started 15:00 UTC
    assert "Episode started" in words and "Contact: Phone: 555-0100; Consent: No" in words
    for raw in RAW_NOTATION:
        assert raw not in words, raw


def test_an_episode_in_incident_is_retried_from_its_page_by_a_clinical_lead_and_not_by_an_auditor(
        api: ApiClient) -> None:
    from tests.test_external_tasks import fetch, started

    gateway, instance_id = started(api)
    [task] = fetch(api, gateway)
    assert api.post(f"/api/external-tasks/{task['id']}/failure", gateway,
                    {"worker_id": "w1", "error_message": "gateway down", "retries": 0}).status_code == 204
    path, retry = f"/app/episodes/{instance_id}", f"/app/episodes/{instance_id}/retry"
    auditor = signed_in(api.client.app, web_and_api_user(api, "auditor", name="aud-retry"))
    assert page(auditor.get(path)).xpath(f'//form[@action="{retry}"]') == []  # may not retry: no button
    lead = signed_in(api.client.app, web_and_api_user(api, "clinical_lead", name="lead-retry"))
    assert lead.submit(path, retry).status_code == 303
    shown = lead.get(path)
    assert "The failed step was run again" in shown.text
    assert page(shown).xpath('//div[@class="error-summary"]') == []  # the problem is gone, and its button
    assert text_of(page(shown).xpath('//span[contains(@class, "status")]')[0]) == "running"
    [again] = fetch(api, gateway)  # the task is handed to a worker again
    assert again["id"] == task["id"]
