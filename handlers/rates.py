"""What the rate table lacks: gaps inside it and the half-years coming without a rate.

Pure: a function of the table and ``now``. The penalty rate of a half-year is fixed on its
first day (C. com. L441-10 II: the ECB rate in force on 1 January / 1 July), and the legal
rates by an arrêté published just before it, so the operator can only add a half-year
shortly before it starts; these functions say how soon that is due.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from handlers.calendar import local_date
from handlers.money import half_year_of
from handlers.policy import RateTable

WARN_DAYS_BEFORE = 30
"""A half-year without a rate is announced from this many days before its first day."""


def half_year_start(key: str) -> date:
    """First day of half-year ``key`` (``2027-H1`` -> 1 January 2027)."""
    if not re.fullmatch(r"\d{4}-H[12]", key):
        raise ValueError(f"{key!r} is not a half-year like 2026-H1")
    return date(int(key[:4]), 1 if key.endswith("H1") else 7, 1)


def next_half_year(key: str) -> str:
    """The half-year after ``key`` (``2026-H2`` -> ``2027-H1``)."""
    year = int(key[:4])
    return f"{year}-H2" if key.endswith("H1") else f"{year + 1}-H1"


def half_years_between(first: str, last: str) -> list[str]:
    """Every half-year from ``first`` to ``last``, both included."""
    keys, key = [], first
    while half_year_start(key) <= half_year_start(last):
        keys.append(key)
        key = next_half_year(key)
    return keys


def gaps(table: RateTable) -> list[str]:
    """Half-years missing between the table's first and last entries."""
    if not table.rates:
        return []
    ordered = sorted(table.rates, key=half_year_start)
    return [k for k in half_years_between(ordered[0], ordered[-1]) if k not in table.rates]


@dataclass(frozen=True)
class HalfYearWithoutRate:
    """A half-year, current or next, that has no entry in the table."""

    half_year: str
    starts_on: date
    days_left: int  # days from today to its first day; 0 or less once it has started

    @classmethod
    def seen_on(cls, half_year: str, today: date) -> HalfYearWithoutRate:
        """``half_year`` as seen on ``today``."""
        starts_on = half_year_start(half_year)
        return cls(half_year, starts_on, (starts_on - today).days)

    @property
    def started(self) -> bool:
        return self.days_left <= 0

    @property
    def level(self) -> Literal["error", "warning"]:
        return "error" if self.started else "warning"

    def describe(self) -> str:
        """One line for people: what is missing and how soon it is needed."""
        if self.started:
            return (
                f"{self.half_year} has no rate: it started on {self.starts_on.isoformat()} "
                f"({_days(-self.days_left)} ago); penalties of that half-year cannot be computed"
            )
        return (
            f"{self.half_year} has no rate: it starts on {self.starts_on.isoformat()}, "
            f"in {_days(self.days_left)}"
        )


def _days(count: int) -> str:
    return f"{count} day" if count == 1 else f"{count} days"


def missing_ahead(table: RateTable, now: datetime, timezone: str) -> list[HalfYearWithoutRate]:
    """Half-years with no entry up to the next one: those after the table's last entry, and
    the current and the next half-year (days counted in ``timezone``)."""
    today = local_date(now, timezone)
    current = half_year_of(today)
    first = current
    if table.rates:
        after_last = next_half_year(max(table.rates, key=half_year_start))
        first = min(after_last, current, key=half_year_start)
    keys = half_years_between(first, next_half_year(current))
    return [HalfYearWithoutRate.seen_on(key, today) for key in keys if key not in table.rates]


def rates_due_soon(table: RateTable, now: datetime, timezone: str) -> list[HalfYearWithoutRate]:
    """What to warn about: a half-year without a rate that has started, or starts within
    ``WARN_DAYS_BEFORE`` days."""
    return [m for m in missing_ahead(table, now, timezone) if m.days_left <= WARN_DAYS_BEFORE]
