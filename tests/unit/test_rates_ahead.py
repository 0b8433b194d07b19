"""The half-years the rate table lacks, as a pure function of the table and ``now``."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from handlers.policy import HalfYearRate, RateTable
from handlers.rates import (
    gaps,
    half_year_start,
    half_years_between,
    missing_ahead,
    next_half_year,
    rates_due_soon,
)

PARIS = "Europe/Paris"


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(PARIS))


def table(*keys: str) -> RateTable:
    return RateTable(rates={k: HalfYearRate(ecb_rate=Decimal("0.02"), source="test") for k in keys})


UP_TO_2026_H2 = table("2026-H1", "2026-H2")


def test_half_years_follow_each_other_across_the_new_year():
    assert next_half_year("2026-H1") == "2026-H2"
    assert next_half_year("2026-H2") == "2027-H1"
    assert half_year_start("2027-H1") == date(2027, 1, 1)
    assert half_year_start("2026-H2") == date(2026, 7, 1)
    assert half_years_between("2026-H1", "2027-H2") == ["2026-H1", "2026-H2", "2027-H1", "2027-H2"]


def test_on_1_december_at_23_59_in_paris_2027_h1_is_31_days_away_and_not_announced():
    # 1 December 2026 -> 1 January 2027: 30 days left in December + 1 = 31 days
    now = paris(2026, 12, 1, 23, 59)
    assert [(m.half_year, m.days_left) for m in missing_ahead(UP_TO_2026_H2, now, PARIS)] == [("2027-H1", 31)]
    assert rates_due_soon(UP_TO_2026_H2, now, PARIS) == []


def test_from_2_december_in_paris_2027_h1_is_announced_30_days_ahead():
    # 2 December 2026 -> 1 January 2027: 30 days
    soon = rates_due_soon(UP_TO_2026_H2, paris(2026, 12, 2, 0, 0), PARIS)
    assert [(m.half_year, m.days_left, m.started, m.level) for m in soon] == [
        ("2027-H1", 30, False, "warning")
    ]
    assert soon[0].describe() == "2027-H1 has no rate: it starts on 2027-01-01, in 30 days"


def test_the_day_is_the_day_in_paris_not_in_utc():
    # 1 December 23:30 UTC is already 2 December 00:30 in Paris (UTC+1): 30 days
    soon = rates_due_soon(UP_TO_2026_H2, datetime(2026, 12, 1, 23, 30, tzinfo=UTC), PARIS)
    assert [m.days_left for m in soon] == [30]


def test_the_eve_of_the_half_year_says_one_day():
    soon = rates_due_soon(UP_TO_2026_H2, paris(2026, 12, 31, 12, 0), PARIS)
    assert soon[0].describe() == "2027-H1 has no rate: it starts on 2027-01-01, in 1 day"


def test_once_the_half_year_has_started_without_a_rate_it_is_an_error():
    # 5 January 2027: 2027-H1 started 4 days ago (1 -> 5 January); 2027-H2 is 177 days away
    # (26 days left in January + 28 + 31 + 30 + 31 + 30 = 176, + 1 to reach 1 July)
    now = paris(2027, 1, 5, 9, 0)
    ahead = missing_ahead(UP_TO_2026_H2, now, PARIS)
    assert [(m.half_year, m.days_left) for m in ahead] == [("2027-H1", -4), ("2027-H2", 177)]
    soon = rates_due_soon(UP_TO_2026_H2, now, PARIS)
    assert [(m.half_year, m.started, m.level) for m in soon] == [("2027-H1", True, "error")]
    assert soon[0].describe() == (
        "2027-H1 has no rate: it started on 2027-01-01 (4 days ago); "
        "penalties of that half-year cannot be computed"
    )


def test_the_first_day_of_a_half_year_without_a_rate_counts_as_started():
    soon = rates_due_soon(UP_TO_2026_H2, paris(2027, 1, 1, 0, 0), PARIS)
    assert [(m.days_left, m.started) for m in soon] == [(0, True)]


def test_a_table_ending_long_ago_lacks_every_half_year_up_to_the_next_one():
    # last entry 2025-H2, on 2026-12-10: 2026-H1 and 2026-H2 have started, 2027-H1 is
    # 22 days away (21 days left in December + 1)
    ahead = missing_ahead(table("2025-H1", "2025-H2"), paris(2026, 12, 10, 12, 0), PARIS)
    assert [(m.half_year, m.days_left) for m in ahead] == [
        ("2026-H1", -343),
        ("2026-H2", -162),
        ("2027-H1", 22),
    ]


def test_with_the_next_half_year_in_the_table_nothing_is_missing():
    full = table("2026-H1", "2026-H2", "2027-H1")
    assert missing_ahead(full, paris(2026, 12, 2, 0, 0), PARIS) == []


def test_gaps_are_the_half_years_missing_between_the_first_and_last_entries():
    assert gaps(table("2024-H1", "2025-H1", "2025-H2", "2026-H2")) == ["2024-H2", "2026-H1"]
    assert gaps(table()) == []
