"""Measure declarations and their evaluation against the published window semantics (engine only)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from carepath.engine.calendars import Calendars
from carepath.engine.measures import (
    Completion,
    Episode,
    Measure,
    MeasureStatus,
    evaluate,
    measure_from_dict,
    parse_measures,
)
from carepath.engine.sandbox import check_expression, evaluate_expression

NY = ZoneInfo("America/New_York")
CONTEXT = Calendars.from_settings(None).context(None, "America/New_York")

FUM_7 = {"id": "fum-7", "name": "Follow-up within 7 days after the ED visit", "source": "NCQA HEDIS FUM",
         "applies_when": "measure == 'FUM'",
         "clock_starts": {"variable": "ed_visit_date", "event": "ED visit"},
         "met_by": {"variable": "follow_up_visit_date", "event": "follow-up visit"},
         "deadline": "P7D after ed_visit_date end of day", "same_day_counts": True}
FUH_7 = {**FUM_7, "id": "fuh-7", "source": "NCQA HEDIS FUH", "applies_when": None, "same_day_counts": False,
         "clock_starts": {"variable": "discharge_date", "event": "discharge"},
         "deadline": "P7D after discharge_date end of day"}
TCM_CONTACT = {"id": "tcm-contact", "name": "Interactive contact within 2 business days", "source": "CMS TCM",
               "clock_starts": {"variable": "discharge_at", "event": "discharge"},
               "met_by": {"task": "contact_patient", "when": "contact_made or attempt >= 2",
                          "event": "interactive contact or two documented attempts"},
               "deadline": "P2BD after discharge_at end of day"}


def measure(raw: dict[str, Any]) -> Measure:
    measures, problems = parse_measures([{k: v for k, v in raw.items() if v is not None}],
                                        check_expression=check_expression, task_ids=["contact_patient"])
    assert problems == []
    return measures[0]


def run(raw: dict[str, Any], data: dict[str, Any], now: datetime, completions: tuple[Completion, ...] = (),
        cancelled_at: datetime | None = None) -> Any:
    return evaluate(measure(raw), Episode(data, completions, cancelled_at), now=now, time_context=CONTEXT,
                    evaluate_expression=evaluate_expression)


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NY)  # type: ignore[misc]


@pytest.mark.parametrize(("visit", "status"), [
    ("2026-03-02", MeasureStatus.MET),   # same day as the ED visit: FUM counts it
    ("2026-03-09", MeasureStatus.MET),   # visit date + 7: the last day of the 8
    ("2026-03-10", MeasureStatus.NOT_MET),  # one day late
    ("2026-03-01", MeasureStatus.NOT_MET),  # before the ED visit, and the window has closed by now
])
def test_hedis_fum_window_is_the_visit_date_through_seven_days_after(visit: str, status: MeasureStatus) -> None:
    data = {"measure": "FUM", "ed_visit_date": "2026-03-02", "follow_up_visit_date": visit}
    outcome = run(FUM_7, data, now=ny(2026, 4, 1))
    assert outcome.status is status, outcome.detail
    assert outcome.deadline == ny(2026, 3, 9, 23, 59, 59).astimezone(UTC)


def test_a_same_day_visit_does_not_count_for_fuh_but_the_next_day_does() -> None:
    same_day = run(FUH_7, {"discharge_date": "2026-03-02", "follow_up_visit_date": "2026-03-02"}, ny(2026, 3, 3))
    assert same_day.status is MeasureStatus.OPEN  # not met by the same-day visit; still time left
    closed = run(FUH_7, {"discharge_date": "2026-03-02", "follow_up_visit_date": "2026-03-02"}, ny(2026, 3, 10))
    assert closed.status is MeasureStatus.NOT_MET and "before the window opened" in closed.detail
    next_day = run(FUH_7, {"discharge_date": "2026-03-02", "follow_up_visit_date": "2026-03-03"}, ny(2026, 3, 10))
    assert next_day.status is MeasureStatus.MET
    assert next_day.window_opens == ny(2026, 3, 3).astimezone(UTC)


def test_measures_that_do_not_apply_or_cannot_start_say_so() -> None:
    other = run(FUM_7, {"measure": "FUA", "ed_visit_date": "2026-03-02"}, ny(2026, 4, 1))
    assert other.status is MeasureStatus.NOT_APPLICABLE
    assert other.detail == "does not apply: this episode is not one the measure counts"  # not "measure == 'FUM'"
    unknown = run(FUM_7, {"measure": "FUM"}, ny(2026, 4, 1))
    assert unknown.status is MeasureStatus.UNKNOWN and "ed_visit_date" in unknown.detail
    still_open = run(FUM_7, {"measure": "FUM", "ed_visit_date": "2026-03-02"}, ny(2026, 3, 9, 23, 0))
    assert still_open.status is MeasureStatus.OPEN and still_open.detail == "open until 09 Mar 2026 23:59"
    cancelled = run(FUM_7, {"measure": "FUM", "ed_visit_date": "2026-03-02"}, ny(2026, 3, 5),
                    cancelled_at=ny(2026, 3, 4))
    assert cancelled.status is MeasureStatus.EXCLUDED


@pytest.mark.parametrize(("discharge", "contact", "status"), [
    # TCM: by the end of the second business day after the discharge date.
    (ny(2026, 11, 20, 23, 30), ny(2026, 11, 24, 23, 59), MeasureStatus.MET),      # Friday -> end of Tuesday
    (ny(2026, 11, 20, 23, 30), ny(2026, 11, 25, 0, 1), MeasureStatus.NOT_MET),    # Wednesday is late
    (ny(2026, 1, 16, 14, 0), ny(2026, 1, 21, 17, 0), MeasureStatus.MET),          # MLK Monday: end of Wednesday
    (ny(2026, 11, 25, 10, 0), ny(2026, 11, 30, 16, 0), MeasureStatus.MET),        # Thanksgiving: Friday, Monday
])
def test_tcm_contact_is_met_by_the_task_by_the_end_of_the_second_business_day(
        discharge: datetime, contact: datetime, status: MeasureStatus) -> None:
    data = {"discharge_at": discharge.isoformat()}
    done = (Completion("contact_patient", contact, {"contact_made": True}),)
    outcome = run(TCM_CONTACT, data, now=ny(2027, 1, 1), completions=done)
    assert outcome.status is status, outcome.detail


def test_two_documented_attempts_meet_tcm_contact_and_one_does_not() -> None:
    data = {"discharge_at": ny(2026, 11, 20, 23, 30).isoformat()}
    first = Completion("contact_patient", ny(2026, 11, 23, 10), {"contact_made": False, "attempt": 1})
    second = Completion("contact_patient", ny(2026, 11, 24, 15), {"contact_made": False, "attempt": 2})
    one = run(TCM_CONTACT, data, now=ny(2026, 12, 1), completions=(first,))
    assert one.status is MeasureStatus.NOT_MET
    two = run(TCM_CONTACT, data, now=ny(2026, 12, 1), completions=(second, first))
    assert two.status is MeasureStatus.MET and two.met_at == ny(2026, 11, 24, 15).astimezone(UTC)


def test_declarations_round_trip_and_bad_ones_name_the_measure_and_field() -> None:
    declared = measure(TCM_CONTACT)
    assert measure_from_dict(declared.as_dict()) == declared
    bad = [{**FUM_7, "id": "Bad Id", "deadline": "P7X after ed_visit_date"},
           {**FUM_7, "met_by": {"variable": "a", "task": "b"}, "applies_when": "__import__('os')"},
           {**FUM_7, "deadline": "P7D"},
           {**TCM_CONTACT, "met_by": {"task": "no_such_task"}, "extra": 1},
           {**FUM_7}, {**FUM_7}]
    _, problems = parse_measures(bad, check_expression=check_expression, task_ids=["contact_patient"])
    text = "\n".join(problems)
    for expected in ("'Bad Id'", "P7X", "either a \"variable\"", "applies_when", "must count from the clock",
                     "no_such_task", "extra", "used twice"):
        assert expected in text, (expected, text)
    assert parse_measures({"not": "a list"}, check_expression=check_expression)[1]


def test_a_moment_in_the_last_second_of_an_end_of_day_window_is_in_it() -> None:
    done = (Completion("contact_patient", ny(2026, 11, 24, 23, 59, 59) .replace(microsecond=500_000),
                       {"contact_made": True}),)
    outcome = run(TCM_CONTACT, {"discharge_at": ny(2026, 11, 20, 23, 30).isoformat()}, ny(2027, 1, 1), done)
    assert outcome.status is MeasureStatus.MET, outcome.detail
