"""The compliance report counts an ended episode from the final outcomes its history recorded
(`measure_outcomes`) and evaluates the others live: both must give the same figures as evaluating
every episode live, including outcomes recorded again when a window still open at the end closed,
outcomes still open when last recorded, and clock values the period pre-filter does not read."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import carepath.pathways as carepath_pathways
from carepath.api.bootstrap import deploy_directory
from carepath.api.compliance_files import report_csv
from carepath.bench.compliance import load_episodes
from carepath.engine.application import CarePath
from carepath.engine.clock import ManualClock
from carepath.engine.identity import Principal, Role
from carepath.engine.usecases import reports
from carepath.engine.usecases.reports import compliance_report
from carepath.engine.usecases.timers import fire_due_timers
from tests.support import diagrams as d
from tests.support.api import ApiClient
from tests.support.measure_counting import CountingEvaluations

AUDITOR = Principal("auditor-1", Role.AUDITOR)
CALL = d.CALL_MEASURE
VISIT = d.VISIT_MEASURE


def _figures(rows: list[Any]) -> list[dict[str, Any]]:
    return [row.as_dict() for row in rows]


def _both(app: CarePath, **filters: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return (_figures(compliance_report(app, AUDITOR, use_recorded=True, **filters)),
            _figures(compliance_report(app, AUDITOR, use_recorded=False, **filters)))


FILTERS: list[dict[str, Any]] = [
    {}, {"pathway": "cohort"}, {"group": "west"}, {"group": "nobody"},
    {"start": datetime(2026, 1, 12, 5, tzinfo=UTC), "end": datetime(2026, 1, 19, 5, tzinfo=UTC)},
    {"start": datetime(2026, 1, 14, tzinfo=UTC)}, {"end": datetime(2026, 1, 9, 5, tzinfo=UTC)},
    {"start": datetime(2026, 1, 12, 5, tzinfo=UTC), "end": datetime(2026, 1, 26, 5, tzinfo=UTC), "group": "east"},
]


def test_recorded_and_live_outcomes_agree_through_the_windows_closing(
        api: ApiClient, clock: ManualClock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reports, "PAGE", 7)  # several pages, a page boundary inside a run of equal start times
    lead, admin = api.user("clinical_lead"), api.user("admin")
    callers = {"east": api.user("coordinator", "east"), "west": api.user("coordinator", "west")}
    sidecar = json.dumps({"measures": [CALL, VISIT]})
    assert api.deploy(lead, ("cohort.bpmn", d.team_call()), ("cohort.pathway.json", sidecar)).status_code == 201
    clock.set(datetime(2026, 1, 1, 12, tzinfo=UTC))
    episodes = []
    for n in range(60):
        visit = date(2026, 1, 5) + timedelta(days=n % 21)
        data: dict[str, Any] = {"visit_date": visit.isoformat(), "team": "east" if n % 3 else "west",
                                "declined": n % 11 == 0}
        if n % 4 == 0:
            data["follow_up_date"] = (visit + timedelta(days=n % 20)).isoformat()  # in the window or late
        if n % 17 == 5:
            data["visit_date"] = f"{visit.isoformat()}T23:30:00-11:00"  # another day in UTC
        if n % 19 == 7:
            data["visit_date"] = visit.strftime("%Y%m%d")  # not the form the period pre-filter reads
        if n == 13:
            del data["visit_date"]
        started = api.start(lead, "cohort", patient_id=f"pat-{n}", business_key=f"enc-{n}", data=data)
        assert started.status_code == 201, started.text
        episodes.append((n, visit, started.json()["id"], started.json()["open_tasks"][0]["id"], data["team"]))
    for n, visit, instance_id, task_id, team in sorted(episodes, key=lambda e: (e[1], e[0])):
        if n % 7 == 6:
            continue  # still running: counted from its standing
        clock.set(datetime.combine(visit, datetime.min.time(), tzinfo=UTC) + timedelta(days=1 + n % 4, hours=15))
        if n % 10 == 3:
            assert api.post(f"/api/instances/{instance_id}/cancel", admin, {"reason": "readmitted"}).status_code == 200
        else:
            done = api.post(f"/api/tasks/{task_id}/complete", callers[team], {"data": {"reached": n % 5 != 1}})
            assert done.status_code == 200, done.text

    # Every window closed, but no `measure` timer has fired: the follow-up outcomes recorded as open
    # at the end are stale, and those episodes are counted from their standing (measure_states), as
    # are the running ones: nothing is evaluated live.
    clock.set(datetime(2026, 3, 1, 12, tzinfo=UTC))
    counting = CountingEvaluations()
    monkeypatch.setattr(reports, "evaluate", counting)
    for filters in FILTERS:
        recorded, live = _both(api.engine, **filters)
        assert recorded == live, filters
    figures = _figures(compliance_report(api.engine, AUDITOR))
    assert {row["measure_id"]: row["not_met"] > 0 and row["met"] > 0 for row in figures} == {
        "call-2bd": True, "visit-14": True}
    counting.calls = 0
    compliance_report(api.engine, AUDITOR)
    assert counting.calls == 0

    # The windows' timers fire: the outcomes are recorded again, final, and counted from that record.
    while fire_due_timers(api.engine):
        pass
    for filters in FILTERS:
        recorded, live = _both(api.engine, **filters)
        assert recorded == live, filters
    assert _figures(compliance_report(api.engine, AUDITOR)) == figures
    counting.calls = 0
    compliance_report(api.engine, AUDITOR)
    assert counting.calls == 0
    assert report_csv(compliance_report(api.engine, AUDITOR, use_recorded=True)) == report_csv(
        compliance_report(api.engine, AUDITOR, use_recorded=False))


def test_a_record_not_final_or_not_matching_the_declaration_is_not_used(
        api: ApiClient, clock: ManualClock, monkeypatch: pytest.MonkeyPatch) -> None:
    lead = api.user("clinical_lead")
    caller = api.user("coordinator", "east")
    sidecar = json.dumps({"measures": [CALL]})
    assert api.deploy(lead, ("cohort.bpmn", d.team_call()), ("cohort.pathway.json", sidecar)).status_code == 201
    clock.set(datetime(2026, 1, 5, 12, tzinfo=UTC))
    started = api.start(lead, "cohort", business_key="enc-1", data={"visit_date": "2026-01-05", "team": "east"})
    clock.set(datetime(2026, 1, 6, 12, tzinfo=UTC))
    assert api.post(f"/api/tasks/{started.json()['open_tasks'][0]['id']}/complete", caller,
                    {"data": {"reached": True}}).status_code == 200
    recorded = ("call-2bd", "met", "2026-01-05T05:00:00+00:00", "2026-01-06T12:00:00+00:00",
                "2026-01-08T04:59:59+00:00", None)
    absent = (None,) * 6
    assert reports._results([recorded, absent], ["call-2bd"]) is not None
    assert reports._results([("call-2bd", "open", *recorded[2:]), absent], ["call-2bd"]) is None
    assert reports._results([("call-2bd", "unknown", *recorded[2:]), absent], ["call-2bd"]) is None
    assert reports._results([recorded, ("other", *recorded[1:])], ["call-2bd"]) is None  # one more than declared
    assert reports._results([recorded, absent], ["call-2bd", "other"]) is None
    assert reports._results([absent, absent], ["call-2bd"]) is None
    counting = CountingEvaluations()
    monkeypatch.setattr(reports, "evaluate", counting)
    clock.set(datetime(2026, 2, 1, tzinfo=UTC))
    recorded_rows, live_rows = _both(api.engine)
    assert recorded_rows == live_rows and live_rows[0]["met"] == 1
    assert counting.calls == 1  # the live pass only: the record was used
    counting.calls = 0
    clock.set(datetime(2026, 1, 6, 11, tzinfo=UTC))  # a clock behind the record: evaluated live
    compliance_report(api.engine, AUDITOR)
    assert counting.calls == 1


def test_the_benchmark_cohort_agrees_recorded_and_live(engine: CarePath, clock: ManualClock,
                                                       database_url: str) -> None:
    """The benchmark's year of transition-of-care episodes (outcomes recorded at the end and again as
    windows close, some still running): every report the benchmark asks gives the same figures."""
    deploy_directory(engine, Path(carepath_pathways.__file__).parent)
    now = datetime(2026, 6, 15, 14, tzinfo=UTC)
    clock.set(now)
    loaded = load_episodes(database_url, 240, now)
    assert loaded["episodes"] == 240
    from carepath.bench.compliance import report_queries

    for _, params in report_queries(now):
        filters = {"pathway": params["pathway"], "group": params.get("group"),
                   "start": datetime.fromisoformat(params["from"]), "end": datetime.fromisoformat(params["to"])}
        recorded, live = _both(engine, **filters)
        assert recorded == live, params
        assert sum(row["denominator"] for row in recorded) > 0
    recorded, live = _both(engine)
    assert recorded == live
    tcm = [row for row in recorded if row["pathway"] == "transition-of-care"]
    assert {row["measure_id"] for row in tcm} == {"tcm-interactive-contact", "tcm-face-to-face-7",
                                                  "tcm-face-to-face-14", "hedis-mrp"}
    assert all(row["misses"] for row in tcm) and sum(row["open"] for row in tcm) > 0
    assert all(row["denominator"] == 0 for row in recorded if row["pathway"] != "transition-of-care")  # no episodes
