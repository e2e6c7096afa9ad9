"""Business-day arithmetic against known answers, time zones, DST and year ends (engine only)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from carepath.engine.calendars import (
    BusinessCalendar,
    Calendars,
    DeadlineError,
    TimeContext,
    deadline_syntax_problem,
    parse_retry,
)

NY = ZoneInfo("America/New_York")
US = Calendars.from_settings(None)


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NY)  # type: ignore[misc]


def context(**calendar: object) -> TimeContext:
    return Calendars.from_settings({"test": calendar}, default="test").context()


@pytest.mark.parametrize(("start", "days", "expected"), [
    (date(2026, 11, 23), 1, date(2026, 11, 24)),   # Monday -> Tuesday
    (date(2026, 11, 20), 2, date(2026, 11, 24)),   # Friday -> Tuesday (TCM: a Friday discharge is due Tuesday)
    (date(2026, 11, 25), 1, date(2026, 11, 27)),   # Wednesday before Thanksgiving -> Friday
    (date(2026, 11, 25), 2, date(2026, 11, 30)),   # ... -> Monday
    (date(2026, 1, 16), 2, date(2026, 1, 21)),     # Friday before MLK Day (Mon 19th) -> Wednesday
    (date(2026, 7, 2), 1, date(2026, 7, 6)),       # July 4th on a Saturday is observed Friday 3rd
    (date(2026, 12, 24), 1, date(2026, 12, 28)),   # Christmas Friday -> Monday
    (date(2026, 12, 31), 1, date(2027, 1, 4)),     # New Year's Day Friday; the weekend; year end
    (date(2027, 12, 30), 1, date(2028, 1, 3)),     # Dec 31 2027 is New Year's observed: two years' holidays
    (date(2026, 11, 21), 1, date(2026, 11, 23)),   # from a Saturday: the next business day is the first
    (date(2026, 11, 21), 0, date(2026, 11, 23)),   # zero business days from a Saturday: Monday
    (date(2026, 11, 24), 0, date(2026, 11, 24)),
    (date(2026, 11, 20), 10, date(2026, 12, 7)),   # across Thanksgiving
])
def test_business_days_known_answers(start: date, days: int, expected: date) -> None:
    assert US.context().calendar.add_business_days(start, days) == expected


def test_two_business_days_after_a_friday_2330_discharge_in_new_york() -> None:
    tcm = US.context(timezone="America/New_York")
    discharge = ny(2026, 11, 20, 23, 30)  # 04:30 UTC on Saturday: the discharge date is still Friday locally
    variables = {"discharge_at": discharge.astimezone(UTC).isoformat()}
    due = tcm.resolve("P2BD after discharge_at end of day", now=discharge, variables=variables)
    assert due == ny(2026, 11, 24, 23, 59, 59).astimezone(UTC)
    assert tcm.resolve("P2BD after discharge_at", now=discharge, variables=variables) == ny(2026, 11, 24, 23, 30)
    # A Thursday 21:00 discharge is Friday 02:00 in UTC: counted in a server's zone it would be due a day late.
    thursday = {"discharge_at": "2026-11-19T21:00:00-05:00"}
    assert tcm.resolve("P2BD after discharge_at end of day", now=discharge, variables=thursday) == \
        ny(2026, 11, 23, 23, 59, 59).astimezone(UTC)
    in_utc = US.context(timezone="UTC").resolve("P2BD after discharge_at end of day", now=discharge,
                                                variables=thursday)
    assert in_utc == datetime(2026, 11, 24, 23, 59, 59, tzinfo=UTC)


def test_a_monday_holiday_pushes_tcm_contact_to_wednesday() -> None:
    tcm = US.context()
    due = tcm.resolve("P2BD after discharge_date end of day", now=ny(2026, 1, 16, 12),
                      variables={"discharge_date": "2026-01-16"})  # Friday before MLK Day
    assert due == ny(2026, 1, 21, 23, 59, 59).astimezone(UTC)


def test_hedis_seven_days_after_the_visit_counts_the_whole_seventh_day() -> None:
    visit = "2026-03-02T14:10:00-05:00"
    due = US.context().resolve("P7D after ed_visit_at end of day", now=ny(2026, 3, 2, 15),
                               variables={"ed_visit_at": visit})
    assert due == ny(2026, 3, 9, 23, 59, 59).astimezone(UTC)
    # A date alone (no time) means whole days: the end of the day it lands on.
    assert US.context().resolve("P7D after ed_visit", now=ny(2026, 3, 2, 15),
                                variables={"ed_visit": "2026-03-02"}) == due


@pytest.mark.parametrize(("start", "duration", "expected"), [
    # Days keep the local time of day across DST (23 and 25 hour days)...
    (ny(2026, 3, 7, 10), "P1D", ny(2026, 3, 8, 10)),
    (ny(2026, 10, 31, 10), "P1D", ny(2026, 11, 1, 10)),
    (ny(2026, 3, 6, 10), "P1BD", ny(2026, 3, 9, 10)),
    # ... hours are elapsed time.
    (ny(2026, 3, 8, 1), "PT2H", ny(2026, 3, 8, 4)),
    (ny(2026, 11, 1, 0, 30), "PT2H", datetime(2026, 11, 1, 6, 30, tzinfo=UTC)),
    # Months are calendar months, clamped to the month's last day.
    (ny(2026, 1, 31, 9), "P1M", ny(2026, 2, 28, 9)),
    (ny(2026, 12, 31, 9), "P2M", ny(2027, 2, 28, 9)),
    (ny(2026, 12, 30, 9), "P1W", ny(2027, 1, 6, 9)),
])
def test_durations_in_the_local_calendar(start: datetime, duration: str, expected: datetime) -> None:
    result = US.context().add(start, duration)
    assert result == expected.astimezone(UTC)
    assert result.tzinfo is UTC


def test_a_wall_time_skipped_by_dst_moves_forward() -> None:
    # 02:30 does not exist on 2026-03-08 in New York: a day after 02:30 the day before lands at 03:30 EDT.
    assert US.context().add(ny(2026, 3, 7, 2, 30), "P1D") == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)


def test_end_of_day_across_the_dst_change() -> None:
    eod = US.context().end_of_day(date(2026, 3, 8))
    assert eod == datetime(2026, 3, 9, 3, 59, 59, tzinfo=UTC)  # EDT, UTC-4
    assert US.context().end_of_day(date(2026, 3, 7)) == datetime(2026, 3, 8, 4, 59, 59, tzinfo=UTC)  # EST


def test_naive_date_times_are_read_in_the_pathway_zone() -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    assert US.context().resolve("2026-06-02T09:00:00", now=now) == datetime(2026, 6, 2, 13, 0, tzinfo=UTC)
    assert US.context(timezone="Europe/Berlin").resolve("2026-06-02T09:00:00", now=now) == \
        datetime(2026, 6, 2, 7, 0, tzinfo=UTC)
    assert US.context().resolve("2026-06-02T09:00:00Z", now=now) == datetime(2026, 6, 2, 9, 0, tzinfo=UTC)
    assert US.context().resolve("2026-06-02", now=now) == datetime(2026, 6, 3, 3, 59, 59, tzinfo=UTC)


def test_local_closures_and_weekends_are_configurable() -> None:
    clinic = context(timezone="America/Chicago", closures=["2026-11-27"])  # closed the day after Thanksgiving
    assert clinic.calendar.add_business_days(date(2026, 11, 25), 1) == date(2026, 11, 30)
    sunday_to_thursday = context(country=None, weekend=[4, 5], timezone="Asia/Jerusalem")
    assert sunday_to_thursday.calendar.add_business_days(date(2026, 11, 26), 1) == date(2026, 11, 29)
    assert clinic.calendar.business_days_between(date(2026, 11, 20), date(2026, 11, 30)) == 4


@pytest.mark.parametrize(("settings", "message"), [
    ({"x": {"timezone": "Mars/Olympus"}}, "not an IANA time zone"),
    ({"x": {"closures": ["tomorrow"]}}, "closures must be a list of dates"),
    ({"x": {"weekend": [0, 1, 2, 3, 4, 5, 6]}}, "no working day"),
    ({"x": {"weekend": [None]}}, "weekend days are numbers"),
    ({"x": {"country": 5}}, "country and subdivision are codes"),
    ({"x": {"subdivision": "ZZ"}}, "no holiday data for subdivision 'ZZ' of 'US'"),
    ({"x": {"timezone": "America"}}, "not an IANA time zone"),
    ({"x": {"weekend": [9]}}, "weekend days are numbers"),
    ({"x": {"country": "ZZ"}}, "no holiday data for country 'ZZ'"),
    ({"x": {"colour": "red"}}, "unknown setting(s) colour"),
])
def test_bad_calendar_settings_are_named(settings: dict, message: str) -> None:
    with pytest.raises(DeadlineError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Calendars.from_settings(settings)


def test_unknown_calendar_and_zone_are_named() -> None:
    with pytest.raises(DeadlineError, match="calendar 'clinic-7' is not configured"):
        US.context("clinic-7")
    with pytest.raises(DeadlineError, match="'Nowhere/Town' is not an IANA time zone"):
        US.context(timezone="Nowhere/Town")


@pytest.mark.parametrize(("text", "problem"), [
    ("P2BD", None), ("P7D after ed_visit_at end of day", None), ("2026-12-01T17:00:00", None),
    ("2026-12-01", None), ("PT4H", None), ("end of day", None), ("discharge_at end of day", None),
    ("tomorrow", "is not an ISO 8601 date-time"), ("P2XD", "not a duration"), ("P-1BD", "not a duration"),
    ("", "empty"),
])
def test_deadline_syntax_is_checked_without_instance_data(text: str, problem: str | None) -> None:
    found = deadline_syntax_problem(text)
    assert (found is None) if problem is None else (problem in (found or ""))


def test_a_missing_or_bad_anchor_variable_is_named() -> None:
    ctx, now = US.context(), datetime(2026, 6, 1, tzinfo=UTC)
    with pytest.raises(DeadlineError, match="no variable 'discharge_at'"):
        ctx.resolve("P2BD after discharge_at", now=now, variables={})
    with pytest.raises(DeadlineError, match="variable 'discharge_at' is int"):
        ctx.resolve("P2BD after discharge_at", now=now, variables={"discharge_at": 5})
    with pytest.raises(DeadlineError, match=r"variable 'discharge_at' \('soon'\)"):
        ctx.resolve("P2BD after discharge_at", now=now, variables={"discharge_at": "soon"})
    assert ctx.resolve("P1D after visit.at", now=now, variables={"visit": {"at": "2026-06-01T10:00:00Z"}}) == \
        datetime(2026, 6, 2, 10, 0, tzinfo=UTC)


def test_retry_cycles() -> None:
    assert parse_retry("R3/PT5M") == (4, timedelta(minutes=5))
    assert parse_retry("r1/PT30S") == (2, timedelta(seconds=30))
    for bad in ("R3", "3/PT5M", "R3/P1BD", "R3/P1M", "R2/PT0S"):
        with pytest.raises(DeadlineError):
            parse_retry(bad)


def test_calendar_holidays_come_from_the_library_with_observed_days() -> None:
    calendar = BusinessCalendar("us", timezone="America/New_York")
    assert date(2027, 6, 18) in calendar.holidays_in(2027)  # Juneteenth (Saturday) observed Friday
    assert not calendar.is_business_day(date(2027, 7, 5))   # July 4th (Sunday) observed Monday
