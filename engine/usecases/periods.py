"""Report and audit periods given as days: a date names that whole day in the pathway's time zone (the
care setting's, where the deadlines are counted), `from` its first instant and `to` the day included."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo

from sqlalchemy import select

from ..application import CarePath
from ..calendars import DeadlineError
from ..errors import Problem, ValidationFailed
from ..persistence.tables import PathwayVersion


def period_in_utc(app: CarePath, pathway: str | None, start: datetime | date | None,
                  end: datetime | date | None) -> tuple[datetime | None, datetime | None]:
    """`[start, end)` in UTC: a date `start` is the beginning of that day, a date `end` the beginning of the
    next (its day included), both in the zone of the pathway's latest version, or of the default calendar
    when no pathway (or an unknown one) is named. Instants pass unchanged."""
    zone = _zone(app, pathway) if _is_day(start) or _is_day(end) else UTC
    return _instant("from", start, zone, 0), _instant("to", end, zone, 1)


def report_period(app: CarePath, pathway: str | None, start: datetime | date | None,
                  end: datetime | date | None, fields: tuple[str, str] = ("from", "to")
                  ) -> tuple[datetime | None, datetime | None]:
    """A period asked for (a compliance report's, an episode search's) in UTC, as `period_in_utc`;
    ValidationFailed naming the end's field (`fields`: the form's names of start and end) when it is empty."""
    start_utc, end_utc = period_in_utc(app, pathway, start, end)
    if start_utc is not None and end_utc is not None and end_utc <= start_utc:
        message = f"'{fields[1]}' must be after '{fields[0]}'"
        raise ValidationFailed(message, [Problem(message, field=fields[1])])
    return start_utc, end_utc


def _is_day(value: datetime | date | None) -> bool:
    return isinstance(value, date) and not isinstance(value, datetime)


def _instant(name: str, value: datetime | date | None, zone: tzinfo, days_after: int) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    try:
        return datetime.combine(value + timedelta(days=days_after), time(), tzinfo=zone).astimezone(UTC)
    except (OverflowError, ValueError):
        message = f"{name} {value.isoformat()} is beyond the dates that can be counted"
        raise ValidationFailed(message, [Problem(message, field=name)]) from None


def _zone(app: CarePath, pathway: str | None) -> tzinfo:
    settings = None
    if pathway:
        with app.db.read() as session:
            settings = session.scalar(select(PathwayVersion.time_settings).where(PathwayVersion.key == pathway)
                                      .order_by(PathwayVersion.version.desc()).limit(1))
    try:
        return app.time_context(settings).tz
    except DeadlineError:
        return app.time_context().tz
