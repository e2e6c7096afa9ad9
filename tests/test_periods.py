"""`from`/`to` of the compliance report and the audit trail accept a date: that whole day in the pathway's
time zone (`from` its start, `to` the day included); an empty value is the parameter left out."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import update

from carepath.engine.clock import ManualClock
from carepath.engine.persistence.tables import PathwayVersion
from tests.support.api import ApiClient
from tests.test_task_assignment import camunda_task


def _deploy(api: ApiClient) -> str:
    admin = api.user("admin")
    assert api.deploy(admin, ("a.bpmn", camunda_task("alpha", candidateGroups="pharmacy"))).status_code == 201
    return admin


def test_a_compliance_period_of_days_is_read_in_the_pathways_time_zone(api: ApiClient) -> None:
    admin = _deploy(api)
    one_day = {"from": "2026-11-30", "to": "2026-11-30"}
    report = api.get("/api/reports/compliance", admin, params=one_day).json()  # no pathway: the default calendar's
    assert (report["from"], report["to"]) == ("2026-11-30T05:00:00+00:00", "2026-12-01T05:00:00+00:00")
    with api.engine.db.engine.begin() as connection:
        connection.execute(update(PathwayVersion).where(PathwayVersion.key == "alpha")
                           .values(time_settings={"timezone": "Asia/Tokyo"}))
    report = api.get("/api/reports/compliance", admin, params={"pathway": "alpha", **one_day}).json()
    assert (report["from"], report["to"]) == ("2026-11-29T15:00:00+00:00", "2026-11-30T15:00:00+00:00")
    empty = api.get("/api/reports/compliance", admin, params={"pathway": "", "from": "", "to": ""})
    assert empty.status_code == 200 and empty.json()["from"] is None


def test_an_audit_period_of_days_holds_that_local_day(api: ApiClient, clock: ManualClock) -> None:
    clock.set(datetime(2026, 1, 5, 3, 0, tzinfo=UTC))  # still 4 January in New York (the default zone)
    admin = _deploy(api)
    api.start(admin, "alpha")

    def started(**period: str) -> int:
        page = api.get("/api/audit/events", admin, params={"pathway": "alpha", "type": "instance_started", **period})
        assert page.status_code == 200, page.text
        return int(page.json()["total"])

    assert started(**{"from": "2026-01-04", "to": "2026-01-04"}) == 1
    assert started(**{"from": "2026-01-05"}) == 0
    assert started(to="2026-01-03") == 0
    assert started(**{"from": "2026-01-05T02:59:59Z", "to": "2026-01-05T03:00:01Z"}) == 1


def test_a_time_without_an_offset_is_refused_saying_what_is_accepted(api: ApiClient) -> None:
    admin = _deploy(api)
    for path in ("/api/reports/compliance", "/api/audit/events"):
        refused = api.get(path, admin, params={"from": "2026-11-30T17:00:00"})
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "from"
        assert "or is a date alone (2026-11-30" in refused.json()["message"]
