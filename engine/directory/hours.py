"""Opening hours: HSDS schedules unfolded into weekly open intervals, and whether one holds at a moment.

Only weekly schedules (`freq` WEEKLY or absent) with `byday`, `opens_at` and `closes_at` unfold; the others
are kept and shown as given. `opens_at`/`closes_at` are HH:MM[:SS], optionally with `Z` or an offset; the
schedule's `timezone` (a UTC offset in hours) applies otherwise; with neither, the care setting's time zone.
An interval that closes at or before it opens runs past midnight into the next day.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_TIME = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?\s*(Z|[+-]\d{2}:?\d{2})?$", re.IGNORECASE)
DAY_MINUTES = 24 * 60


@dataclass(frozen=True)
class OpenInterval:
    weekday: int  # 0 = Monday
    opens_min: int
    closes_min: int
    utc_offset_min: int | None
    valid_from: date | None
    valid_to: date | None


def parse_time(value: str) -> tuple[int, int | None]:
    """Minutes from midnight, and the UTC offset in minutes the time carries (None: none). ValueError if bad."""
    match = _TIME.match(value.strip())
    if match is None or int(match.group(1)) > 24 or int(match.group(2)) > 59:
        raise ValueError(f"'{value}' is not a time such as 09:00 or 09:00:00")
    minutes = int(match.group(1)) * 60 + int(match.group(2))
    zone = match.group(4)
    if zone is None:
        return minutes, None
    if zone.upper() == "Z":
        return minutes, 0
    digits = zone[1:].replace(":", "")
    offset = int(digits[:2]) * 60 + int(digits[2:])
    return minutes, offset if zone[0] == "+" else -offset


def weekdays(byday: str) -> list[int]:
    """MO,TU,...; a monthly prefix (1MO, -1FR) is refused: only weekly schedules unfold."""
    days = []
    for part in byday.split(","):
        day = part.strip().upper()
        if day not in DAYS:
            raise ValueError(f"byday '{byday}': '{part.strip()}' is not one of {', '.join(DAYS)}")
        days.append(DAYS.index(day))
    return days


def unfold(freq: str | None, byday: str | None, opens_at: str | None, closes_at: str | None,
           timezone_hours: float | None, valid_from: date | None, valid_to: date | None) -> list[OpenInterval]:
    """The weekly intervals of one schedule ([] when it is not a weekly one). ValueError on a malformed field."""
    if (freq or "WEEKLY").upper() != "WEEKLY" or not byday or not opens_at or not closes_at:
        return []
    opens, opens_zone = parse_time(opens_at)
    closes, closes_zone = parse_time(closes_at)
    offset = opens_zone if opens_zone is not None else closes_zone
    if offset is None and timezone_hours is not None:
        offset = round(timezone_hours * 60)
    intervals = []
    for day in weekdays(byday):
        if closes > opens:
            intervals.append(OpenInterval(day, opens, closes, offset, valid_from, valid_to))
        else:  # past midnight
            intervals.append(OpenInterval(day, opens, DAY_MINUTES, offset, valid_from, valid_to))
            intervals.append(OpenInterval((day + 1) % 7, 0, closes, offset, valid_from, valid_to))
    return intervals


@dataclass(frozen=True)
class LocalMoment:
    """A moment as a schedule reads it: the date, weekday and minute of the day."""

    day: date
    weekday: int
    minute: int

    @classmethod
    def of(cls, moment: datetime) -> LocalMoment:
        return cls(moment.date(), moment.weekday(), moment.hour * 60 + moment.minute)

    @classmethod
    def at_offset(cls, moment: datetime, offset_min: int) -> LocalMoment:
        return cls.of(moment.astimezone(timezone(timedelta(minutes=offset_min))))
