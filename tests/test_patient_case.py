"""The patient's case (GET /api/patients/{id}/case and the page /app/patients/{id}): every episode across
pathways the reader may read, with its open tasks and the latest history; merged identities on the survivor;
the reader's visibility exactly; each view found by the auditors' "who viewed this patient's record"."""

from __future__ import annotations

from typing import Any

import pytest

from carepath.engine.clock import ManualClock
from carepath.engine.identity import Principal, Role
from carepath.engine.patients import DEFAULT_PATIENT_ID_SYSTEM
from carepath.engine.usecases.patients import merge_patients
from tests.support.api import ApiClient
from tests.support.episodes import Episodes, episodes
from tests.support.web import page, text_of

ADT = Principal("adt-feed", Role.INTEGRATION)
WHY = "same person registered twice at two sites"


@pytest.fixture
def made(api: ApiClient, clock: ManualClock) -> Episodes:
    return episodes(api, clock)


def _patient_of(made: Episodes, key: str) -> str:
    ref = made.api.get(f"/api/instances/{made.ids[key]}", made.lead).json()["patient_ref"]
    assert ref
    return str(ref)


def _case(made: Episodes, user: str, patient: str) -> Any:
    answer = made.api.get(f"/api/patients/{patient}/case", user)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _case_views(made: Episodes, patient_id: str) -> list[tuple[str, str]]:
    """What the auditors' search "who viewed this patient's record" finds: (who, what part) of case views."""
    found = made.api.get("/api/audit/events", made.auditor, params={"patient_id": patient_id, "type": "record_viewed"})
    assert found.status_code == 200, found.text
    return [(e["actor"], e["data"]["what"]) for e in found.json()["items"] if e["data"].get("what") == "case"]


def test_the_case_lists_every_episode_across_pathways_with_open_tasks_and_recent_history(made: Episodes) -> None:
    case = _case(made, made.lead, _patient_of(made, "enc-1"))
    assert [(e["business_key"], e["pathway_key"], e["status"]) for e in case["episodes"]] == [
        ("enc-4", "other", "running"), ("enc-1", "cohort", "completed")]  # newest first
    other = case["episodes"][0]
    assert [t["name"] for t in other["open_tasks"]] == ["Review"]
    assert other["open_tasks"][0]["offered_to"] and other["open_tasks"][0]["assignee"] is None
    assert case["episodes"][1]["open_tasks"] == []
    history = case["history"]
    assert [h["id"] for h in history] == sorted((h["id"] for h in history), reverse=True)
    assert {h["instance_id"] for h in history} == {made.ids["enc-1"], made.ids["enc-4"]}
    assert "record_viewed" not in {h["type"] for h in history}
    assert "task_completed" in {h["type"] for h in history}
    assert len(_case(made, made.lead, _patient_of(made, "enc-1"))["history"]) == len(history)
    short = made.api.get(f"/api/patients/{_patient_of(made, 'enc-1')}/case", made.lead, params={"history": 2})
    assert [h["id"] for h in short.json()["history"]] == [h["id"] for h in history[:2]]


def test_an_episode_the_reader_may_not_read_is_neither_shown_nor_counted(made: Episodes) -> None:
    patient = _patient_of(made, "enc-1")
    east = _case(made, made.east, patient)  # ana completed enc-1's task; enc-4's task is not offered to her
    assert [e["business_key"] for e in east["episodes"]] == ["enc-1"]
    assert east["patient"]["episodes"] == [made.ids["enc-1"]]
    assert {h["instance_id"] for h in east["history"]} == {made.ids["enc-1"]}
    page_ = made.browser(made.east).get(f"/app/patients/{patient}")
    assert page_.status_code == 200
    assert text_of(page(page_).xpath('//dd[@class="episode-count"]')[0]) == "1, 0 open tasks"
    assert "enc-4" not in page_.text
    refused = made.api.get(f"/api/patients/{patient}/case", made.west)
    assert refused.status_code == 404
    assert made.browser(made.west).get(f"/app/patients/{patient}").status_code == 404
    assert _case_views(made, "pat-1") == [("ana", "case")] * 2  # API and page; the refused reads recorded nothing


def test_a_merged_identitys_episodes_show_on_the_survivor(made: Episodes, clock: ManualClock) -> None:
    started = made.api.start(made.lead, "other", "enc-9", patient_id="pat-9")
    assert started.status_code == 201, started.text
    survivor, merged = _patient_of(made, "enc-1"), made.api.get(
        f"/api/instances/{started.json()['id']}", made.lead).json()["patient_ref"]
    merge_patients(made.api.engine, ADT, survivor, f"{DEFAULT_PATIENT_ID_SYSTEM}|pat-9", WHY)
    case = _case(made, made.lead, survivor)
    assert [e["business_key"] for e in case["episodes"]] == ["enc-9", "enc-4", "enc-1"]
    assert _case(made, made.lead, merged)["patient"]["id"] == survivor  # asked for the merged one: the survivor's
    browser = made.browser(made.lead)
    moved = browser.get(f"/app/patients/{merged}")
    assert moved.status_code == 303 and moved.headers["location"] == f"/app/patients/{survivor}"
    shown = page(browser.get(f"/app/patients/{survivor}"))
    assert [s.get("data-instance-id") for s in shown.xpath('//section[@class="case-episode"]')] == [
        started.json()["id"], made.ids["enc-4"], made.ids["enc-1"]]
    # Read three times (the API for each identity, the page; the redirect reads nothing), three episodes each:
    # found by a search for either patient id.
    assert _case_views(made, "pat-9") == _case_views(made, "pat-1") == [("lena", "case")] * 9


def test_the_case_page_says_the_episodes_tasks_and_history_in_words(made: Episodes) -> None:
    patient = _patient_of(made, "enc-1")
    response = made.browser(made.lead).get(f"/app/patients/{patient}")
    assert response.status_code == 200, response.text
    html = page(response)
    sections = html.xpath('//section[@class="case-episode"]')
    assert [text_of(s.xpath(".//dd[@class='business-key']")[0]) for s in sections] == ["enc-4", "enc-1"]
    assert sections[0].xpath(".//h3/a/@href") == [f"/app/episodes/{made.ids['enc-4']}"]
    [task_row] = sections[0].xpath(".//table[@class='case-tasks']/tbody/tr")
    assert text_of(task_row.xpath("td")[0]) == "Review" and text_of(task_row.xpath("td")[2]) == "no due date"
    assert sections[1].xpath(".//p[@class='no-open-tasks']")
    what = [text_of(r.xpath("td")[3]) for r in html.xpath('//table[contains(@class, "case-history")]/tbody/tr')]
    assert "Task completed" in what and "Episode started" in what and "task_completed" not in what
    assert text_of(html.xpath('//dd[@class="patient-ids"]')[0]) == "pat-1"
    assert not html.xpath('//a[contains(@href, "/views")]')  # who viewed it: for auditors
    audited = page(made.browser(made.auditor).get(f"/app/patients/{patient}"))
    assert audited.xpath('//a[@href="/app/patients/pat-1/views"]/@href')


def test_the_auditors_who_viewed_page_finds_the_case_views(made: Episodes) -> None:
    patient = _patient_of(made, "enc-1")
    assert made.browser(made.lead).get(f"/app/patients/{patient}").status_code == 200
    assert _case_views(made, "pat-1") == [("lena", "case"), ("lena", "case")]  # one per episode shown
    views = made.browser(made.auditor).get("/app/patients/pat-1/views")
    assert views.status_code == 200
    assert "Patient&#39;s case (every episode)" in views.text or "Patient's case (every episode)" in views.text


def test_lists_and_the_episode_page_link_the_patient_to_the_case_page(made: Episodes) -> None:
    patient = _patient_of(made, "enc-1")
    browser = made.browser(made.lead)
    listed = page(browser.get("/app/episodes?patient_id=pat-1"))
    assert set(listed.xpath('//td[@class="patient"]//a/@href')) == {f"/app/patients/{patient}"}
    episode = page(browser.get(f"/app/episodes/{made.ids['enc-1']}"))
    assert episode.xpath('//dd[@class="patient"]/a/@href') == [f"/app/patients/{patient}"]
    worklist = page(made.browser(made.east).get("/app/worklist?view=teams"))
    [row] = worklist.xpath('//tbody/tr')  # enc-3's call, for the patient whose id is markup
    assert row.xpath('td[@class="patient"]//a/@href') == [f"/app/patients/{_patient_of(made, 'enc-3')}"]


def test_an_unknown_patient_is_not_found(made: Episodes) -> None:
    assert made.api.get("/api/patients/nobody/case", made.lead).status_code == 404
    assert made.browser(made.lead).get("/app/patients/nobody").status_code == 404


def test_a_case_read_under_a_break_glass_grant_is_marked_with_it(made: Episodes) -> None:
    patient = _patient_of(made, "enc-1")
    assert made.api.get(f"/api/patients/{patient}/case", made.west).status_code == 404
    grant = made.api.post("/api/break-glass", made.west,
                          {"patient_id": "pat-1", "reason": "patient in the emergency room, team unreachable"})
    assert grant.status_code == 201, grant.text
    case = _case(made, made.west, patient)
    assert [e["business_key"] for e in case["episodes"]] == ["enc-4", "enc-1"]
    found = made.api.get("/api/audit/events", made.auditor, params={"patient_id": "pat-1", "type": "record_viewed",
                                                                    "user": made.west}).json()["items"]
    marks = [e["data"].get("break_glass") for e in found if e["data"]["what"] == "case"]
    assert marks == [grant.json()["id"]] * 2
