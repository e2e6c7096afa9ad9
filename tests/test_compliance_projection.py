"""The `measure_outcomes` projection the compliance report counts: written when outcomes are recorded,
equal to what evaluating the episode live gives, rebuilt from the history by its migration, and the
report's misses listed a page at a time."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, select

from carepath.api.web import audit as web_audit
from carepath.engine.clock import ManualClock
from carepath.engine.identity import Principal, Role
from carepath.engine.persistence import migrate
from carepath.engine.persistence.tables import MeasureOutcome
from carepath.engine.usecases.measures import instance_measures
from carepath.engine.usecases.timers import fire_due_timers
from tests.support import diagrams as d
from tests.support.api import ApiClient
from tests.support.episodes import web_and_api_user
from tests.support.web import page, signed_in, text_of

AUDITOR = Principal("auditor-1", Role.AUDITOR)
VISIT = d.VISIT_MEASURE


def _cohort(api: ApiClient, clock: ManualClock, count: int = 24) -> list[str]:
    """`count` episodes: calls reached, not reached or never made, follow-ups in time, late or none,
    some declined, some cancelled, a few still running; every window closed and its timer fired."""
    lead, admin = api.user("clinical_lead"), api.user("admin")
    caller = api.user("coordinator", "east")
    sidecar = json.dumps({"measures": [d.CALL_MEASURE, VISIT]})
    assert api.deploy(lead, ("cohort.bpmn", d.team_call()), ("cohort.pathway.json", sidecar)).status_code == 201
    clock.set(datetime(2026, 1, 1, 12, tzinfo=UTC))
    ids = []
    for n in range(count):
        visit = date(2026, 1, 5) + timedelta(days=n % 9)
        data: dict[str, Any] = {"visit_date": visit.isoformat(), "team": "east", "declined": n % 7 == 0}
        if n % 3 == 0:
            data["follow_up_date"] = (visit + timedelta(days=n % 20)).isoformat()
        started = api.start(lead, "cohort", patient_id=f"pat-{n}", business_key=f"enc-{n:02}", data=data)
        assert started.status_code == 201, started.text
        ids.append(started.json()["id"])
        if n % 8 == 7:
            continue  # still running
        clock.set(datetime.combine(visit, datetime.min.time(), tzinfo=UTC) + timedelta(days=1 + n % 4, hours=15))
        if n % 10 == 3:
            assert api.post(f"/api/instances/{ids[-1]}/cancel", admin, {"reason": "readmitted"}).status_code == 200
        else:
            task_id = started.json()["open_tasks"][0]["id"]
            done = api.post(f"/api/tasks/{task_id}/complete", caller, {"data": {"reached": n % 5 != 1}})
            assert done.status_code == 200, done.text
        clock.set(datetime(2026, 1, 1, 12, tzinfo=UTC))
    clock.set(datetime(2026, 3, 1, 12, tzinfo=UTC))
    while fire_due_timers(api.engine):
        pass
    return ids


def _projection(api: ApiClient) -> dict[tuple[str, str], tuple[Any, ...]]:
    with api.engine.db.read() as session:
        return {(r.instance_id, r.measure_id): (r.status, r.clock_started, r.met_at, r.deadline, r.detail,
                                                r.days_to_meet, r.final, r.recorded_at)
                for r in session.scalars(select(MeasureOutcome))}


def test_the_projection_holds_what_live_evaluation_gives_for_every_ended_episode(
        api: ApiClient, clock: ManualClock) -> None:
    ids = _cohort(api, clock)
    projection = _projection(api)
    finals = 0
    for n, instance_id in enumerate(ids):
        live = {r.measure_id: r for r in instance_measures(api.engine, instance_id, AUDITOR)}
        rows = {m: row for (i, m), row in projection.items() if i == instance_id}
        if n % 8 == 7:
            assert rows == {}  # still running: nothing recorded yet
            continue
        assert set(rows) == set(live) and all(row[6] for row in rows.values())
        for measure_id, (status, clock_started, met_at, deadline, detail, days, final, _) in rows.items():
            result = live[measure_id]
            assert (status, clock_started) == (result.status.value, result.clock_started)
            if final:
                finals += 1
                assert met_at == (result.met_at if status == "met" else None)
                assert (deadline, detail) == ((result.deadline, result.detail) if status == "not_met" else (None, ""))
                if status == "met" and result.met_at and result.clock_started:
                    assert days == (result.met_at - result.clock_started).total_seconds() / 86400
    running = sum(1 for n in range(len(ids)) if n % 8 == 7)
    assert finals == 2 * (len(ids) - running)
    assert {row[0] for row in projection.values()} >= {"met", "not_met", "not_applicable", "excluded"}


def test_the_migration_rebuilds_the_projection_from_the_history(api: ApiClient, clock: ManualClock) -> None:
    _cohort(api, clock, count=12)
    before = _projection(api)
    assert before
    database = api.engine.db.engine
    with database.begin() as connection:
        connection.execute(delete(MeasureOutcome))
    migrate.downgrade(database, "0026")
    migrate.upgrade(database)  # 0027 again: the table and its rows from each episode's last record
    assert _projection(api) == before


def _misses(api: ApiClient, user: str, **params: Any) -> Any:
    answer = api.get("/api/reports/compliance", user, params={"pathway": "cohort", **params})
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_the_misses_come_a_page_at_a_time_and_the_csv_has_them_all(api: ApiClient, clock: ManualClock) -> None:
    _cohort(api, clock)
    auditor = api.user("auditor")
    everything = _misses(api, auditor, misses_limit=1000)
    listed = [(m["measure_id"], miss["business_key"]) for m in everything["measures"] for miss in m["misses"]]
    total = sum(m["not_met"] for m in everything["measures"])
    assert everything["misses"]["total"] == total == len(listed) > 5
    assert everything["misses"]["next"] is None

    paged: list[tuple[str, str]] = []
    page = _misses(api, auditor, misses_limit=3)
    while True:
        assert page["misses"]["total"] == total
        assert [m["not_met"] for m in page["measures"]] == [m["not_met"] for m in everything["measures"]]
        shown = [(m["measure_id"], miss["business_key"]) for m in page["measures"] for miss in m["misses"]]
        assert 0 < len(shown) <= 3
        paged += shown
        if page["misses"]["next"] is None:
            break
        answer = api.client.get(page["misses"]["next"], headers=api.headers(auditor))
        assert answer.status_code == 200, answer.text
        page = answer.json()
    assert paged == listed

    csv_lines = api.get("/api/reports/compliance", auditor,
                        params={"pathway": "cohort", "format": "csv", "lines": "misses"}).text.splitlines()
    assert len(csv_lines) == 1 + total
    default = _misses(api, auditor)
    assert default["misses"]["limit"] == 500


@pytest.mark.parametrize("cursor", ["nonsense", "W10", "WyJhIiwiYiIsIm5vdCBhIHRpbWUiLCJjIl0"])
def test_a_cursor_the_report_did_not_give_is_refused(api: ApiClient, cursor: str) -> None:
    answer = api.get("/api/reports/compliance", api.user("auditor"), params={"misses_after": cursor})
    assert answer.status_code == 422
    assert "misses_after" in answer.text


def test_the_web_page_lists_the_misses_a_screen_at_a_time(api: ApiClient, clock: ManualClock,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(web_audit, "MISSES_SCREEN", 4)
    _cohort(api, clock)
    auditor = web_and_api_user(api, "auditor", name="audrey")
    everything = _misses(api, auditor, misses_limit=1000)
    listed = [miss["business_key"] for m in everything["measures"] for miss in m["misses"]]
    browser = signed_in(api.client.app, auditor)
    seen: list[str] = []
    path: str | None = "/app/compliance?pathway=cohort"
    while path is not None:
        html = page(browser.get(path))
        rows = html.xpath('//table[@class="misses"]//tr[td]')
        assert 0 < len(rows) <= 4
        assert f"{len(listed)} misses of a measure" in text_of(html.xpath('//table[@class="misses"]/caption')[0])
        seen += [text_of(row.xpath("td")[0]) for row in rows]
        following = html.xpath('//a[@rel="next"]/@href')
        path = following[0] if following else None
    assert seen == listed
