"""Business days and sending windows, per country and time zone.

Public holidays come from the ``holidays`` library; a step that falls on a weekend or a
holiday moves to the next business day. Windows are local times of the debtor, converted
to UTC through ``zoneinfo`` so daylight-saving changes are handled by the tz database.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

from handlers.policy import Window


class UnknownCountry(ValueError):
    """The holiday library has no calendar for this country code."""


@lru_cache(maxsize=512)
def _holidays(country: str, year: int) -> frozenset[date]:
    try:
        return frozenset(holidays.country_holidays(country, years=year).keys())
    except NotImplementedError as exc:
        raise UnknownCountry(f"no public-holiday calendar for country {country!r}") from exc


@lru_cache(maxsize=1)
def _supported() -> frozenset[str]:
    return frozenset(holidays.list_supported_countries())


def has_calendar(country: str) -> bool:
    """Whether the holiday library knows this ISO 3166 alpha-2 country."""
    return country in _supported()


def is_business_day(day: date, country: str) -> bool:
    """Monday to Friday and not a public holiday of ``country``."""
    holidays_of_year = _holidays(country, day.year)  # raises UnknownCountry on any day
    return day.weekday() < 5 and day not in holidays_of_year


def next_business_day(day: date, country: str) -> date:
    """``day`` itself when it is a business day, else the first business day after it."""
    while not is_business_day(day, country):
        day += timedelta(days=1)
    return day


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later (or earlier), clamped to the month's last day."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    last = (date(year + (month == 12), month % 12 + 1, 1) - timedelta(days=1)).day
    return date(year, month, min(day.day, last))


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def window_opening(day: date, tz: str, window: Window) -> datetime:
    """The UTC instant the sending window opens on ``day`` in time zone ``tz``."""
    return opening_at(day, tz, window.start)


def opening_at(day: date, tz: str, opens: time) -> datetime:
    """The UTC instant of the local time ``opens`` on ``day`` in time zone ``tz``."""
    return datetime.combine(day, opens, tzinfo=zone(tz)).astimezone(UTC)


def local_date(instant: datetime, tz: str) -> date:
    """The calendar day of ``instant`` as seen in time zone ``tz``."""
    return instant.astimezone(zone(tz)).date()


def next_sending_time(now: datetime, tz: str, country: str, window: Window) -> datetime:
    """``now`` if the window is open, else the UTC instant it next opens on a business day."""
    local = now.astimezone(zone(tz))
    today = local.date()
    if is_business_day(today, country):
        if window.start <= local.time() < window.end:
            return now
        if local.time() < window.start:
            return window_opening(today, tz, window)
    return window_opening(next_business_day(today + timedelta(days=1), country), tz, window)
