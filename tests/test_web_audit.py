"""The auditor's screens (api/web/audit.py): who viewed a patient's record, the compliance report equal to
the API's, the audit-trail search and export with the API's filters, whether the history verifies; roles and
bad input answered with pages."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import select

from carepath.api.web.compliance_chart import chart_of
from carepath.engine.clock import ManualClock
from carepath.engine.labels import event_label
from carepath.engine.persistence.tables import Event
from carepath.engine.usecases.checkpoints import write_checkpoint
from carepath.engine.usecases.reports import MeasureCompliance
from tests.support.api import ApiClient
from tests.support.episodes import SCRIPT_PATIENT, Episodes, episodes
from tests.support.tamper import update_event
from tests.support.web import Browser, page, text_of


@pytest.fixture
def made(api: ApiClient, clock: ManualClock) -> Episodes:
    return episodes(api, clock)


def _rows(response: Any, table: str) -> list[Any]:
    assert response.status_code == 200, response.text
    return page(response).xpath(f'//table[@class="{table}"]/tbody/tr')


def _audit_uses(made: Episodes) -> list[dict[str, Any]]:
    with made.api.engine.db.read() as session:
        return list(session.scalars(select(Event.data).where(Event.type == "audit_log_used").order_by(Event.id)))


def test_who_viewed_lists_every_read_of_the_patients_record_including_the_web_pages(made: Episodes) -> None:
    made.browser(made.east).get(f"/app/episodes/{made.ids['enc-1']}")  # the coordinator reads it on a page
    made.api.get(f"/api/instances/{made.ids['enc-4']}", made.lead)  # the lead through the API
    auditor = made.browser(made.auditor)
    rows = _rows(auditor.get("/app/patients/pat-1/views"), "views")
    seen = [(text_of(r.xpath('td[@class="who"]')[0]), text_of(r.xpath('td[@class="what"]')[0])) for r in rows]
    assert seen[:2] == [("lena", "Episode"), ("ana", "Episode")]
    assert all(text_of(r.xpath('td[@class="client"]')[0]).startswith("testclient") for r in rows)
    api_views = made.api.get("/api/audit/events?patient_id=pat-1&type=record_viewed", made.auditor).json()
    assert [int(r.get("data-event-id")) for r in rows] == [e["id"] for e in api_views["items"]][:len(rows)]
    assert _audit_uses(made)[-2]["filters"] == {"patient_id": "pat-1", "types": ["record_viewed"]}


def test_who_viewed_is_for_auditors_and_shows_a_script_as_text(made: Episodes) -> None:
    refused = made.browser(made.east).get("/app/patients/pat-1/views")
    assert refused.status_code == 403 and "auditor" in text_of(page(refused).xpath("//main")[0])
    made.browser(made.east).get(f"/app/episodes/{made.ids['enc-3']}")
    shown = made.browser(made.auditor).get(f"/app/patients/{SCRIPT_PATIENT}/views")
    assert shown.status_code == 200
    assert SCRIPT_PATIENT in text_of(page(shown).xpath("//h1")[0])
    assert page(shown).xpath("//script[contains(text(), 'owned')]") == []
    assert len(_rows(shown, "views")) == 1


@pytest.mark.parametrize("query", ["", "pathway=cohort", "from=2026-01-06", "to=2026-01-05", "group=east",
                                   "pathway=cohort&from=2026-01-01&to=2026-01-31&group=west"])
def test_the_compliance_figures_are_the_apis_for_the_same_parameters(made: Episodes, query: str) -> None:
    api = made.api.get(f"/api/reports/compliance?{query}", made.auditor).json()["measures"]
    browser = made.browser(made.auditor)
    rows = _rows(browser.get(f"/app/compliance?{query}"), "compliance")
    shown = [{"measure_id": r.get("data-measure-id"), "pathway": r.get("data-pathway"),
              **{cell.get("class"): text_of(cell) for cell in r.xpath("td[@class]")}} for r in rows]
    assert shown == [{"measure_id": m["measure_id"], "pathway": m["pathway"], "denominator": str(m["denominator"]),
                      "met": str(m["met"]), "not-met": str(m["not_met"]),
                      "rate": "—" if m["rate"] is None else f"{m['rate'] * 100:.1f} %"} for m in api]
    csv_link = page(browser.get(f"/app/compliance?{query}")).xpath('//a[contains(@href, "/app/compliance.csv")]/@href')
    for link, lines in zip(csv_link, ("measures", "misses"), strict=True):
        api_csv = made.api.get(f"/api/reports/compliance?{query}&format=csv&lines={lines}", made.auditor)
        assert browser.get(link).text == api_csv.text


def test_the_compliance_charts_are_svg_with_words_and_no_style_attributes(made: Episodes) -> None:
    shown = page(made.browser(made.auditor).get("/app/compliance?pathway=cohort"))
    charts = shown.xpath("//figure[@class='chart']/svg")
    assert len(charts) == 2 and shown.xpath("//*[@style]") == []
    words = [text_of(t) for t in charts[0].xpath(".//text")]
    assert words == ["Patient reached within 2 business days (cohort)", "0 % met (0 of 3)"]
    assert [text_of(t) for t in charts[1].xpath(".//text")][1] == "3 not met"


def test_the_compliance_report_refuses_what_the_api_refuses(made: Episodes) -> None:
    browser = made.browser(made.auditor)
    backwards = browser.get("/app/compliance?from=2026-02-01&to=2026-01-01")
    assert backwards.status_code == 422
    assert page(backwards).xpath('//input[@id="to"]/@aria-invalid') == ["true"]  # beside its field, as the API names it
    api = made.api.get("/api/reports/compliance?from=2026-02-01&to=2026-01-01", made.auditor)
    assert api.status_code == 422 and "'to' must be after 'from'" in api.text
    assert browser.get("/app/compliance?pathway=never-deployed").status_code == 404
    refused = made.browser(made.east).get("/app/compliance")
    assert refused.status_code == 403


SEARCHES = [
    ("type=task_completed", {"task_completed"}, None),
    ("user=ana", None, {"ana"}),
    ("patient_id=pat-2&type=cancelled", {"cancelled"}, None),
    ("pathway=other&type=instance_started", {"instance_started"}, None),
]


def test_each_audit_filter_finds_what_the_apis_finds(made: Episodes) -> None:
    browser = made.browser(made.auditor)
    for query, types, actors in SEARCHES:
        rows = _rows(browser.get(f"/app/audit?{query}"), "events")
        api = made.api.get(f"/api/audit/events?{query}", made.auditor).json()["items"]
        assert [int(r.get("data-event-id")) for r in rows] == [e["id"] for e in api] and rows, query
        assert types is None or {r.xpath('td[@class="type"]/span/@title')[0] for r in rows} == types
        assert types is None or {text_of(r.xpath('td[@class="type"]')[0]) for r in rows} == {
            event_label(t) for t in types}  # the name in words, the recorded one in its title
        assert actors is None or {text_of(r.xpath('td[@class="who"]')[0]) for r in rows} == actors
    oldest = _rows(browser.get("/app/audit?order=oldest&type=instance_started"), "events")
    assert [text_of(r.xpath('td[@class="patient"]')[0]) for r in oldest] == ["pat-1", "pat-2", SCRIPT_PATIENT,
                                                                              "pat-1"]
    window = _rows(browser.get("/app/audit?type=instance_started&from=2026-01-06&to=2026-01-20"), "events")
    assert [text_of(r.xpath('td[@class="patient"]')[0]) for r in window] == [SCRIPT_PATIENT, "pat-2"]
    assert _audit_uses(made)[-1]["what"] == "events"


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "fhir"])
def test_the_export_is_the_apis_reached_with_the_cookie_and_recorded(made: Episodes, fmt: str) -> None:
    browser = made.browser(made.auditor)
    links = page(browser.get("/app/audit?patient_id=pat-1")).xpath(f'//a[contains(@href, "format={fmt}")]/@href')
    exported = browser.get(links[0])
    api = made.api.get(f"/api/audit/export?patient_id=pat-1&format={fmt}", made.auditor)
    assert exported.status_code == 200 and exported.headers["content-type"] == api.headers["content-type"]
    assert exported.headers["content-disposition"] == api.headers["content-disposition"]
    lines = [json.loads(line) for line in exported.text.splitlines()] if fmt != "csv" else exported.text.splitlines()
    api_lines = [json.loads(line) for line in api.text.splitlines()] if fmt != "csv" else api.text.splitlines()
    assert len(lines) == len(api_lines) > 3
    used = _audit_uses(made)[-2]  # the web export; the API's is the last
    assert used["what"] == "export" and used["format"] == fmt and used["filters"] == {"patient_id": "pat-1"}


def test_the_audit_trail_is_for_auditors_and_refuses_bad_filters_naming_them(made: Episodes) -> None:
    assert made.browser(made.east).get("/app/audit").status_code == 403
    assert made.browser(made.east).get("/app/audit/export?format=csv").status_code == 403
    assert made.browser(made.east).get("/app/audit/verify").status_code == 403
    browser = made.browser(made.auditor)
    for query, field in (("type=nothing", "type"), ("from=2026-02-30", "from"), ("to=soon", "to"),
                         ("order=sideways", "order"), ("user=" + "u" * 201, "user")):
        refused = browser.get(f"/app/audit?{query}")
        assert refused.status_code == 422, query
        assert field in text_of(page(refused).xpath('//*[@role="alert"]')[0]), query
    assert browser.get("/app/audit/export?format=xml").status_code == 422
    after = page(browser.get("/app/audit?type=nothing&user=ana"))
    assert after.xpath('//select[@id="type"]/@aria-invalid') == ["true"]
    assert after.xpath('//input[@id="user"]/@value') == ["ana"] and after.xpath('//table[@class="events"]') == []
    assert browser.get("/app/audit?from=2026-02-01&to=2026-01-01").status_code == 422


def test_verify_says_intact_then_names_the_first_broken_link_after_tampering(made: Episodes) -> None:
    browser = made.browser(made.auditor)
    intact = page(browser.get("/app/audit/verify"))
    verdict = text_of(intact.xpath('//*[contains(@class, "verdict")]')[0])
    # No audit key in this test's configuration: the chains link up, but nothing was signed to check.
    assert verdict.startswith("Chains intact, signatures not checked") and " events in " in verdict
    with made.api.engine.db.read() as session:
        target = session.scalars(select(Event).where(Event.type == "task_completed")).one()
    update_event(made.api.engine, target.id, actor="mallory")
    broken = page(browser.get("/app/audit/verify"))
    problem = text_of(broken.xpath('//*[@role="alert"]//p[@class="problem"]')[0])
    assert f"event {target.id}" in problem
    assert text_of(broken.xpath('//*[@role="alert"]/h2')[0]) == "Broken"


def test_not_signed_in_every_screen_leads_to_sign_in(made: Episodes) -> None:
    anonymous = Browser(made.api.client.app)
    for path in ("/app/patients/pat-1/views", "/app/compliance", "/app/compliance.csv", "/app/audit",
                 "/app/audit/export", "/app/audit/verify"):
        assert anonymous.get(path).headers["location"].startswith("/signin?next="), path


def test_verify_names_the_last_checkpoint_and_checks_it_with_the_configured_key(made: Episodes) -> None:
    engine = made.api.engine
    engine.config = replace(engine.config, audit_key=b"k" * 32, audit_key_id="ward-2026")
    checkpoint = write_checkpoint(engine)
    assert checkpoint is not None
    shown = page(made.browser(made.auditor).get("/app/audit/verify"))
    verdict = text_of(shown.xpath('//*[contains(@class, "verdict")]')[0])
    assert verdict.startswith("Intact") and "1 checkpoint checked with its key" in verdict
    facts = shown.xpath('//h2[text()="Last checkpoint"]/following-sibling::dl[1]')[0]
    assert dict(zip(facts.xpath("dt/text()"), (text_of(dd) for dd in facts.xpath("dd")), strict=True)) == {
        "Number": "1 (full: every chain)", "Written": "01 Feb 2026 07:00", "Signed with key": "ward-2026",
        "Signs": f"{len(checkpoint.heads)} chain heads, up to event {checkpoint.last_event_id}"}


def _checked(browser: Browser, path: str = "/app/audit/verify") -> tuple[str, str]:
    shown = page(browser.get(path))
    return (text_of(shown.xpath('//*[contains(@class, "verdict")]')[0]),
            text_of(shown.xpath('//p[@class="checked-range"]')[0]))


def test_verify_checks_from_the_last_checkpoint_found_intact_and_the_button_checks_everything(
        made: Episodes, clock: ManualClock) -> None:
    engine = made.api.engine
    engine.config = replace(engine.config, audit_key=b"k" * 32, audit_key_id="ward-2026")
    assert write_checkpoint(engine) is not None
    browser = made.browser(made.auditor)
    verdict, checked = _checked(browser)  # no check passed yet: the whole history
    assert verdict.startswith("Intact") and "the whole history" in checked
    with engine.db.read() as session:
        old = session.scalars(select(Event).where(Event.type == "task_completed")).one()
    update_event(engine, old.id, actor="mallory")  # signed by checkpoint 1, in a chain that changes no more
    clock.advance(minutes=5)
    made.api.user("coordinator", "ward-9")  # new events after the checkpoint
    verdict, checked = _checked(browser)
    assert verdict.startswith("Intact") and "the events recorded since checkpoint 1" in checked
    assert "01 Feb 2026 07:00" in checked  # when the check that vouched for the rest ran
    [button] = page(browser.get("/app/audit/verify")).xpath('//form[@action="/app/audit/verify"]//button')
    assert "whole history" in text_of(button)
    verdict, checked = _checked(browser, "/app/audit/verify?full=true")
    assert verdict.startswith("Broken") and f"event {old.id}" in verdict and "the whole history" in checked


def test_verify_since_the_last_check_finds_a_change_made_after_it(made: Episodes) -> None:
    engine = made.api.engine
    engine.config = replace(engine.config, audit_key=b"k" * 32, audit_key_id="ward-2026")
    assert write_checkpoint(engine) is not None
    browser = made.browser(made.auditor)
    assert _checked(browser)[0].startswith("Intact")
    newcomer = made.api.user("coordinator", "ward-9")
    assert write_checkpoint(engine) is not None
    with engine.db.read() as session:
        added = session.scalars(select(Event).where(Event.type == "user_added", Event.data["user"].as_string()
                                                    == newcomer)).one()
    update_event(engine, added.id, actor="mallory")
    verdict, checked = _checked(browser)
    assert "since checkpoint 1" in checked and verdict.startswith("Broken") and f"event {added.id}" in verdict


def test_the_outcome_chart_gives_each_outcome_its_share_of_the_bar() -> None:
    row = MeasureCompliance("p", "m", "A measure", "local", denominator=2, met=1, not_met=1, open=2)
    chart = chart_of([row, MeasureCompliance("p", "n", "B" * 150, "local")])
    first, second = chart.bars
    assert [(s.outcome, s.x, s.width) for s in first.segments] == [("met", 0, 100), ("not_met", 100, 100),
                                                                   ("open", 200, 200)]
    assert first.rate_width == 200 and first.rate_words == "50 % met (1 of 2)"
    assert first.outcome_words == "1 met, 1 not met, 2 open"
    assert second.segments == [] and second.rate_words == "no decided episode yet" and len(second.label) == 100
    assert (second.y, chart.height) == (60, 120)


def test_a_miss_detail_reads_in_the_zone_also_when_recorded_with_iso_times(made: Episodes) -> None:
    """enc-1's call was due by the end of 7 Jan (New York) and made 22 Jan 10:00; its outcome was recorded
    when it ended. A detail recorded before details were worded (ISO with an offset) reads the same."""
    browser = made.browser(made.auditor)

    def detail() -> str:
        rows = page(browser.get("/app/compliance?pathway=cohort")).xpath('//table[@class="misses"]//tr[td]')
        enc_1 = [r for r in rows if text_of(r.xpath("td")[0]) == "enc-1"][0]
        return text_of(enc_1.xpath("td")[-1])

    assert detail() == "patient reached on 22 Jan 2026 10:00, after the window closed at 07 Jan 2026 23:59"
    with made.api.engine.db.read() as session:
        recorded = session.scalars(select(Event).where(Event.type == "measure_outcomes",
                                                       Event.instance_id == made.ids["enc-1"])).one()
    old = {**recorded.data, "measures": [
        {**m, "detail": "patient reached on 2026-01-22T10:00-05:00, after the window closed at 2026-01-07T23:59-05:00"}
        for m in recorded.data["measures"]]}
    update_event(made.api.engine, recorded.id, data=old)
    assert detail() == "patient reached on 22 Jan 2026 10:00, after the window closed at 07 Jan 2026 23:59"
