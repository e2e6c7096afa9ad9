"""Business-day calendars and deadline arithmetic in a care setting's time zone.

A deadline such as "within 2 business days following discharge" depends on where the patient is:
dates are local to the care setting (not the server), weekends and public holidays do not count,
and local closure days can be added. Holidays come from the maintained `holidays` library (US
federal holidays, with their observed days, by default).

Durations are ISO 8601 (`P7D`, `PT4H`, `P1M`) or business days (`P2BD`). Days, weeks, months and
years move the local calendar date and keep the local time of day (so `P1D` across a DST change is
23 or 25 hours); hours, minutes and seconds are elapsed time. `PnBD` is the n-th business day after
the start's local date, at the same local time. "end of day" moves a result to 23:59:59 local time
of its date: the TCM rule "by the end of the second business day after discharge" is
`P2BD after discharge_at end of day`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holiday_library

from .errors import ValidationFailed
from .labels import key_label

DEFAULT_CALENDAR = "us-federal"
END_OF_DAY = time(23, 59, 59)
_BUSINESS_DAYS = re.compile(r"^P(\d+)BD$", re.IGNORECASE)
_DURATION = re.compile(
    r"^P(?=\d|T\d)(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:[.,]\d+)?)S)?)?$",
    re.IGNORECASE)
_RELATIVE = re.compile(
    r"^(?P<duration>P\S+?)(?:\s+(?:after|from)\s+(?P<anchor>[A-Za-z_][\w.]*))?(?P<eod>\s+(?:at\s+)?end\s+of\s+day)?$",
    re.IGNORECASE)
_CYCLE = re.compile(r"^R(\d*)/(P[^/]+)$", re.IGNORECASE)  # a timer cycle: R3/PT1H
_END_OF_DAY_ONLY = re.compile(r"^(?P<anchor>[A-Za-z_][\w.]*)?\s*end\s+of\s+day$", re.IGNORECASE)


def is_duration(text: str) -> bool:
    """An ISO 8601 duration (P7D, PT4H) or business days (P2BD)."""
    return bool(_DURATION.match(text) or _BUSINESS_DAYS.match(text))


def is_relative_date(text: str) -> bool:
    """A date counted from an instance variable or ending at the end of a day ("P2BD after discharge_at",
    "P7D end of day", "ed_visit_at end of day"): resolved by TimeContext.resolve."""
    relative = _RELATIVE.match(text.strip())
    if relative is not None:
        return bool(relative.group("anchor") or relative.group("eod"))
    return _END_OF_DAY_ONLY.match(text.strip()) is not None


_UNITS = ("year", "month", "week", "day", "hour", "minute", "second")


def duration_words(text: str) -> str | None:
    """A duration as people say it ("P1BD" → "1 business day", "PT4H" → "4 hours", "P1DT2H" → "1 day 2 hours");
    None when `text` is not one (the parser's own patterns, so the words match what is counted)."""
    text = text.strip()
    business = _BUSINESS_DAYS.match(text)
    if business:
        count = int(business.group(1))
        return f"{count} business day{'' if count == 1 else 's'}"
    match = _DURATION.match(text)
    if match is None:
        return None
    parts = []
    for unit, amount in zip(_UNITS, match.groups(), strict=True):
        if amount is not None and float(amount.replace(",", ".")) != 0:
            parts.append(f"{amount} {unit}{'' if amount == '1' else 's'}")
    return " ".join(parts) or "no time"


def deadline_words(text: str, titles: Mapping[str, str] | None = None) -> str:
    """A due date, deadline or timer value from a diagram in words ("P7D after ed_visit_date end of day" →
    "7 days after Ed visit date, at the end of that day"; a variable named by its start-form title when
    `titles` has it); an expression or anything else as written."""
    text = text.strip()
    cycle = _CYCLE.match(text)
    if cycle and duration_words(cycle.group(2)):
        times = f", {cycle.group(1)} time{'' if cycle.group(1) == '1' else 's'}" if cycle.group(1) else ""
        return f"every {duration_words(cycle.group(2))}{times}"
    relative = _RELATIVE.match(text)
    spoken = duration_words(relative.group("duration")) if relative else None
    if relative is None or spoken is None:
        only = _END_OF_DAY_ONLY.match(text)
        if only:
            anchor = only.group("anchor")
            return f"the end of the day of {key_label(anchor, titles)}" if anchor else "the end of today"
        return text
    anchor = relative.group("anchor")
    words = f"{spoken} after {key_label(anchor, titles)}" if anchor else spoken
    return f"{words}, at the end of that day" if relative.group("eod") else words


class DeadlineError(ValueError):
    """A due date, follow-up date or timer value that cannot be worked out."""


MAX_BUSINESS_DAYS = 10_000  # about 40 years: more is a typo, and counting it day by day would take long


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError, OSError, TypeError):  # OSError: "America" is a folder
        raise DeadlineError(f"'{name}' is not an IANA time zone such as America/New_York") from None


@dataclass(frozen=True)
class BusinessCalendar:
    """Working days: Monday to Friday (by default) minus public holidays and local closures."""

    name: str
    timezone: str = "America/New_York"
    country: str | None = "US"
    subdivision: str | None = None
    closures: frozenset[date] = frozenset()
    weekend: frozenset[int] = frozenset({5, 6})  # date.weekday(): Saturday, Sunday
    _years: dict[int, frozenset[date]] = field(default_factory=dict, compare=False, hash=False, repr=False)

    @cached_property
    def zone(self) -> ZoneInfo:
        return zone(self.timezone)

    def holidays_in(self, year: int) -> frozenset[date]:
        days = self._years.get(year)
        if days is None:
            found = holiday_library.country_holidays(self.country, subdiv=self.subdivision, years=year) \
                if self.country else {}
            days = frozenset(found) | frozenset(d for d in self.closures if d.year == year)
            self._years[year] = days
        return days

    def is_business_day(self, day: date) -> bool:
        return day.weekday() not in self.weekend and day not in self.holidays_in(day.year)

    def add_business_days(self, start: date, count: int) -> date:
        """The `count`-th business day after `start` (0: start itself if a business day, else the next)."""
        if count < 0:
            raise DeadlineError("a number of business days cannot be negative")
        if count > MAX_BUSINESS_DAYS:
            raise DeadlineError(f"{count} business days is more than the {MAX_BUSINESS_DAYS:,} a deadline may span")
        day = start
        if count == 0:
            while not self.is_business_day(day):
                day += timedelta(days=1)
            return day
        for _ in range(count):
            day += timedelta(days=1)
            while not self.is_business_day(day):
                day += timedelta(days=1)
        return day

    def business_days_between(self, start: date, end: date) -> int:
        """Business days after `start` up to and including `end`."""
        count, day = 0, start
        while day < end:
            day += timedelta(days=1)
            count += self.is_business_day(day)
        return count


def calendar_from_settings(name: str, raw: Mapping[str, Any]) -> BusinessCalendar:
    """A calendar from configuration: {"timezone", "country", "subdivision", "closures": [dates],
    "weekend": [weekday numbers, Monday = 0]}; a bad entry is named in the error."""
    unknown = set(raw) - {"timezone", "country", "subdivision", "closures", "weekend"}
    if unknown:
        raise DeadlineError(f"calendar '{name}': unknown setting(s) {', '.join(sorted(unknown))}")
    try:
        closures = frozenset(date.fromisoformat(str(d)) for d in raw.get("closures", []))
    except (ValueError, TypeError) as exc:
        raise DeadlineError(f"calendar '{name}': closures must be a list of dates such as 2026-12-24 ({exc})") from None
    weekend_days = raw.get("weekend", [5, 6])
    if not isinstance(weekend_days, list) or not all(isinstance(d, int) and 0 <= d <= 6 for d in weekend_days):
        raise DeadlineError(f"calendar '{name}': weekend days are numbers from 0 (Monday) to 6 (Sunday)")
    weekend = frozenset(weekend_days)
    if len(weekend) == 7:
        raise DeadlineError(f"calendar '{name}': a week with no working day has no business days")
    country, subdivision = raw.get("country", "US"), raw.get("subdivision")
    if not isinstance(country, str | None) or not isinstance(subdivision, str | None):
        raise DeadlineError(f"calendar '{name}': country and subdivision are codes such as \"US\" and \"IL\"")
    calendar = BusinessCalendar(name=name, timezone=str(raw.get("timezone", "America/New_York")),
                                country=country or None, subdivision=subdivision, closures=closures,
                                weekend=weekend)
    calendar.zone  # noqa: B018 - fail now on a bad time zone, not when a deadline is first computed
    if country:
        try:
            calendar.holidays_in(2026)
        except NotImplementedError as exc:
            what = f"subdivision '{subdivision}' of '{country}'" if subdivision and "subdivision" in str(exc) else \
                f"country '{country}'"
            raise DeadlineError(f"calendar '{name}': no holiday data for {what}") from None
    return calendar


@dataclass(frozen=True)
class TimeContext:
    """How a pathway counts time: its business calendar and the care setting's time zone."""

    calendar: BusinessCalendar
    tz: ZoneInfo

    @classmethod
    def utc_weekdays(cls) -> TimeContext:
        return cls(BusinessCalendar("weekdays", timezone="UTC", country=None), ZoneInfo("UTC"))

    def localize(self, value: datetime) -> datetime:
        """An aware datetime; a naive one is read in the pathway's time zone, never the server's."""
        return value.replace(tzinfo=self.tz) if value.tzinfo is None else value

    def add(self, start: datetime, duration: str | timedelta) -> datetime:
        """start + a duration: ISO 8601, business days (`P2BD`) or a timedelta; aware UTC result."""
        try:
            return self._add(start, duration)
        except (OverflowError, ValueError) as exc:
            if isinstance(exc, DeadlineError):
                raise
            raise DeadlineError(f"'{duration}' from {start.isoformat()} is beyond the dates this calendar can "
                                "count (year 9999)") from None

    def end_of_day(self, day: date) -> datetime:
        try:
            return datetime.combine(day, END_OF_DAY, tzinfo=self.tz).astimezone(UTC)
        except (OverflowError, ValueError):
            raise DeadlineError(f"the end of {day.isoformat()} is beyond the dates this calendar can count") from None

    def _add(self, start: datetime, duration: str | timedelta) -> datetime:
        if isinstance(duration, timedelta):
            return self.localize(start).astimezone(UTC) + duration
        local = self.localize(start).astimezone(self.tz)
        text = duration.strip()
        business = _BUSINESS_DAYS.match(text)
        if business:
            day = self.calendar.add_business_days(local.date(), int(business.group(1)))
            return _wall(day, local.timetz().replace(tzinfo=None), self.tz)
        match = _DURATION.match(text)
        if match is None:
            raise DeadlineError(f"'{duration}' is not a duration such as P7D, PT4H or P2BD (business days)")
        years, months, weeks, days, hours, minutes, seconds = match.groups()
        month_index = local.month - 1 + int(months or 0) + 12 * int(years or 0)
        year, month = local.year + month_index // 12, month_index % 12 + 1
        moved = date(year, month, min(local.day, _days_in_month(year, month)))
        moved += timedelta(weeks=int(weeks or 0), days=int(days or 0))
        wall = _wall(moved, local.timetz().replace(tzinfo=None), self.tz)
        elapsed = timedelta(hours=int(hours or 0), minutes=int(minutes or 0),
                            seconds=float((seconds or "0").replace(",", ".")))
        return wall + elapsed

    def resolve(self, value: Any, *, now: datetime, variables: Mapping[str, Any] | None = None) -> datetime:
        """A due or follow-up date as the diagram states it, worked out now:
        an ISO date-time (naive: in the pathway's zone), a date (the end of that day), a duration from
        now (`P7D`, `P2BD`), a duration from an instance variable (`P2BD after discharge_at`), with an
        optional `end of day`."""
        try:
            return self._resolve(value, now, variables)
        except DeadlineError:
            raise
        except (OverflowError, ValueError):
            raise DeadlineError(f"'{value}' is beyond the dates this calendar can count (year 9999)") from None

    def _resolve(self, value: Any, now: datetime, variables: Mapping[str, Any] | None) -> datetime:
        if isinstance(value, datetime):
            return self.localize(value).astimezone(UTC)
        if isinstance(value, date):
            return self.end_of_day(value)
        if isinstance(value, timedelta):
            return self.add(now, value)
        text = str(value).strip()
        if not text:
            raise DeadlineError("the date is empty")
        relative = _RELATIVE.match(text)
        if relative:
            anchor_name = relative.group("anchor")
            anchor, date_only = self._anchor(anchor_name, now, variables if variables is not None else {})
            result = self.add(anchor, relative.group("duration"))
            if relative.group("eod") or date_only:
                result = self.end_of_day(result.astimezone(self.tz).date())
            return result
        only = _END_OF_DAY_ONLY.match(text)
        if only:
            anchor, _ = self._anchor(only.group("anchor"), now, variables if variables is not None else {})
            return self.end_of_day(anchor.astimezone(self.tz).date())
        moment, date_only = self._moment(text)
        return self.end_of_day(moment.date()) if date_only else moment.astimezone(UTC)

    def _anchor(self, name: str | None, now: datetime, variables: Mapping[str, Any]) -> tuple[datetime, bool]:
        if name is None:
            return now, False
        value: Any = variables
        for part in name.split("."):
            if not isinstance(value, Mapping) or part not in value:
                raise DeadlineError(f"the instance has no variable '{name}' to count from")
            value = value[part]
        if isinstance(value, _AnyVariable):  # the deploy-time probe: any name is a date-time
            return datetime(2026, 1, 5, tzinfo=UTC), False
        if isinstance(value, datetime):
            return self.localize(value), False
        if isinstance(value, date):
            return datetime.combine(value, time(), tzinfo=self.tz), True
        if not isinstance(value, str):
            raise DeadlineError(f"variable '{name}' is {type(value).__name__}, not a date or date-time")
        return self._moment(value, f"variable '{name}'")

    def _moment(self, text: str, what: str | None = None) -> tuple[datetime, bool]:
        """An ISO 8601 date-time or date; (aware datetime, whether it was a date alone)."""
        try:
            if len(text) == 10:
                day = date.fromisoformat(text)
                return datetime.combine(day, time(), tzinfo=self.tz), True
            return self.localize(datetime.fromisoformat(text.replace("Z", "+00:00"))), False
        except ValueError:
            subject = f"{what} ('{text}')" if what else f"'{text}'"
            raise DeadlineError(f"{subject} is not an ISO 8601 date-time, a date, or a duration such as P2BD or "
                                "'P7D after ed_visit_at'") from None


def _wall(day: date, clock: time, tz: ZoneInfo) -> datetime:
    """A local wall-clock time as aware UTC. A time that DST skips (02:30 on the spring-forward night)
    comes out an hour later; a time that occurs twice (fall back) is its first occurrence."""
    return datetime.combine(day, clock, tzinfo=tz).astimezone(UTC)


def _days_in_month(year: int, month: int) -> int:
    following = date(year + month // 12, month % 12 + 1, 1)
    return (following - timedelta(days=1)).day


class Calendars:
    """The configured calendars by name, and the time context for a pathway's settings."""

    def __init__(self, calendars: Iterable[BusinessCalendar], default: str = DEFAULT_CALENDAR) -> None:
        self.by_name = {c.name: c for c in calendars}
        if default not in self.by_name:
            raise DeadlineError(f"the default calendar '{default}' is not configured")
        self.default = default

    @classmethod
    def from_settings(cls, raw: Mapping[str, Mapping[str, Any]] | None, default: str = DEFAULT_CALENDAR) -> Calendars:
        configured = {DEFAULT_CALENDAR: {"country": "US", "timezone": "America/New_York"}, **(raw or {})}
        return cls([calendar_from_settings(name, spec) for name, spec in configured.items()], default)

    def check(self, calendar: str | None, timezone: str | None) -> None:
        """Raise ValidationFailed naming an unknown calendar or time zone (deploy-time check)."""
        try:
            self.context(calendar, timezone)
        except DeadlineError as exc:
            raise ValidationFailed(str(exc)) from None

    def context(self, calendar: str | None = None, timezone: str | None = None) -> TimeContext:
        name = calendar or self.default
        found = self.by_name.get(name)
        if found is None:
            raise DeadlineError(f"calendar '{name}' is not configured (known: {', '.join(sorted(self.by_name))})")
        return TimeContext(found, zone(timezone) if timezone else found.zone)


def parse_retry(value: str) -> tuple[int, timedelta]:
    """`R3/PT5M`: up to 3 retries after the first failure, the first 5 minutes later, each next one
    twice as long. Returns (attempts in all, first delay)."""
    match = re.match(r"^R(\d+)/(P\S+)$", value.strip(), re.IGNORECASE)
    duration = _DURATION.match(match.group(2)) if match else None
    if match is None or duration is None or _BUSINESS_DAYS.match(match.group(2)):
        raise DeadlineError(f"'{value}' is not a retry cycle such as R3/PT5M (3 retries, 5 minutes apart at first)")
    years, months, weeks, days, hours, minutes, seconds = duration.groups()
    if years or months:
        raise DeadlineError(f"'{value}': give the retry delay in weeks, days, hours, minutes or seconds")
    try:
        delay = timedelta(weeks=int(weeks or 0), days=int(days or 0), hours=int(hours or 0),
                          minutes=int(minutes or 0), seconds=float((seconds or "0").replace(",", ".")))
    except OverflowError:
        raise DeadlineError(f"'{value}': the retry delay is too long") from None
    if delay <= timedelta(0):
        raise DeadlineError(f"'{value}': the retry delay must be more than zero")
    if delay > timedelta(days=30) or int(match.group(1)) > 100:
        raise DeadlineError(f"'{value}': give at most 100 retries and a first delay of at most 30 days")
    return int(match.group(1)) + 1, delay


class _AnyVariable(dict[str, Any]):
    """Instance data at deploy time: every (dotted) name exists."""

    def __contains__(self, key: object) -> bool:
        return True

    def __getitem__(self, key: str) -> Any:
        return _AnyVariable()


def deadline_syntax_problem(text: str) -> str | None:
    """Why a literal due/follow-up value from a diagram cannot work, or None when it can (deploy check;
    `${...}` expressions are checked when they run). Instance variables are not known yet: any name passes."""
    probe = TimeContext.utc_weekdays()
    try:
        probe.resolve(text, now=datetime(2026, 1, 5, tzinfo=UTC), variables=_AnyVariable())
    except DeadlineError as exc:
        return str(exc)
    return None


_current_context: ContextVar[TimeContext] = ContextVar("carepath_time_context")


@contextmanager
def engine_time_context(context: TimeContext | None) -> Iterator[None]:
    """Publish the running pathway's calendar and zone to SpiffWorkflow callbacks (timer events)."""
    token = _current_context.set(context or TimeContext.utc_weekdays())
    try:
        yield
    finally:
        _current_context.reset(token)


def current_time_context() -> TimeContext:
    """The running pathway's calendar and zone; UTC weekdays when the engine runs without one."""
    try:
        return _current_context.get()
    except LookupError:
        return TimeContext.utc_weekdays()
