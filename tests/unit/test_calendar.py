"""Business days, sending windows and daylight-saving changes (handlers.calendar).

Weekdays of 2026 used below (checked against a printed calendar):
1 Jan Thu, 3 Apr Fri (Good Friday), 6 Apr Mon (Easter Monday), 1 May Fri, 8 May Fri,
14 May Thu (Ascension), 25 May Mon (Pentecost Monday), 14 Jul Tue, 15 Aug Sat, 3 Oct Sat,
1 Nov Sun, 11 Nov Wed, 25 Dec Fri, 26 Dec Sat.
Summer time in the EU starts on the last Sunday of March (29 March 2026) and ends on the
last Sunday of October (25 October 2026): Paris is UTC+1 before and after, UTC+2 between.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from handlers.calendar import (
    UnknownCountry,
    is_business_day,
    local_date,
    next_business_day,
    next_sending_time,
    window_opening,
)
from handlers.policy import Window

PARIS = "Europe/Paris"
NINE_TO_SIX = Window(start=time(9, 0), end=time(18, 0))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 3, 16), True),  # an ordinary Monday
        (date(2026, 3, 20), True),  # an ordinary Friday
        (date(2026, 3, 21), False),  # Saturday
        (date(2026, 3, 22), False),  # Sunday
        (date(2026, 1, 1), False),  # Jour de l'an, a Thursday
        (date(2026, 1, 2), True),  # the Friday after it
        (date(2026, 4, 3), True),  # Good Friday is not a holiday in France (outside Alsace-Moselle)
        (date(2026, 4, 6), False),  # Lundi de Pâques
        (date(2026, 5, 1), False),  # Fête du travail, a Friday
        (date(2026, 5, 8), False),  # Victoire 1945, a Friday
        (date(2026, 5, 14), False),  # Ascension, a Thursday
        (date(2026, 5, 15), True),  # the "pont" Friday is a working day
        (date(2026, 5, 25), False),  # Lundi de Pentecôte
        (date(2026, 7, 14), False),  # Fête nationale, a Tuesday
        (date(2026, 8, 15), False),  # Assomption, falls on a Saturday anyway
        (date(2026, 11, 11), False),  # Armistice, a Wednesday
        (date(2026, 12, 24), True),  # Christmas Eve is a working day
        (date(2026, 12, 25), False),  # Noël, a Friday
    ],
)
def test_a_day_is_a_french_business_day_only_on_weekdays_that_are_not_public_holidays(day, expected):
    assert is_business_day(day, "FR") is expected


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 3, 18), date(2026, 3, 18)),  # a business day stays where it is
        (date(2026, 3, 21), date(2026, 3, 23)),  # Saturday -> Monday
        (date(2026, 3, 22), date(2026, 3, 23)),  # Sunday -> Monday
        (date(2026, 1, 1), date(2026, 1, 2)),  # 1 January (Thu) -> Fri 2 January
        (date(2026, 4, 4), date(2026, 4, 7)),  # Sat before Easter Monday -> Tuesday
        (date(2026, 4, 6), date(2026, 4, 7)),  # Easter Monday -> Tuesday
        (date(2026, 5, 1), date(2026, 5, 4)),  # Fri 1 May -> Sat, Sun skipped -> Mon 4 May
        (date(2026, 5, 8), date(2026, 5, 11)),  # Fri 8 May -> Mon 11 May
        (date(2026, 5, 14), date(2026, 5, 15)),  # Ascension (Thu) -> Fri 15 May
        (date(2026, 5, 23), date(2026, 5, 26)),  # Sat before Pentecost -> Sun, Mon holiday -> Tue
        (date(2026, 5, 25), date(2026, 5, 26)),  # Pentecost Monday -> Tuesday
        (date(2026, 7, 14), date(2026, 7, 15)),  # 14 July (Tue) -> Wed
        (date(2026, 8, 15), date(2026, 8, 17)),  # 15 August (Sat) -> Mon 17
        (date(2026, 12, 25), date(2026, 12, 28)),  # Christmas (Fri) -> Mon 28
        (date(2026, 12, 31), date(2026, 12, 31)),  # Thu 31 Dec is a business day
        (date(2027, 1, 1), date(2027, 1, 4)),  # Fri 1 Jan 2027 -> Mon 4 Jan (year boundary)
    ],
)
def test_a_step_on_a_non_business_day_moves_to_the_next_french_business_day(day, expected):
    assert next_business_day(day, "FR") == expected


def test_a_step_on_1_may_moves_to_the_next_business_day():
    # 1 May 2026 is a Friday: Saturday 2 and Sunday 3 are weekend days, so Monday 4 May.
    assert next_business_day(date(2026, 5, 1), "FR") == date(2026, 5, 4)


@pytest.mark.parametrize(
    ("day", "country", "expected"),
    [
        # Good Friday is a federal holiday in Germany, not in France.
        (date(2026, 4, 3), "DE", False),
        (date(2026, 4, 3), "FR", True),
        # 8 May is a French holiday, an ordinary Friday in Germany.
        (date(2026, 5, 8), "DE", True),
        (date(2026, 5, 8), "FR", False),
        # Tag der Arbeit and Christmas are holidays in both.
        (date(2026, 5, 1), "DE", False),
        (date(2026, 12, 25), "DE", False),
    ],
)
def test_business_days_follow_the_debtors_country(day, country, expected):
    assert is_business_day(day, country) is expected


def test_a_german_step_on_good_friday_skips_the_easter_weekend_and_easter_monday():
    # Fri 3 Apr (Karfreitag) -> Sat, Sun -> Mon 6 Apr (Ostermontag) -> Tue 7 Apr.
    assert next_business_day(date(2026, 4, 3), "DE") == date(2026, 4, 7)


def test_a_german_step_on_christmas_skips_the_second_day_of_christmas_and_the_weekend():
    # Fri 25 Dec -> Sat 26 (2. Weihnachtstag, also a Saturday) -> Sun 27 -> Mon 28 Dec.
    assert next_business_day(date(2026, 12, 25), "DE") == date(2026, 12, 28)


@pytest.mark.parametrize("day", [date(2026, 3, 16), date(2026, 3, 21)], ids=["monday", "saturday"])
def test_an_unknown_country_is_an_error_whatever_the_day(day):
    with pytest.raises(UnknownCountry, match="XX"):
        is_business_day(day, "XX")
    with pytest.raises(UnknownCountry):
        next_business_day(day, "XX")


def test_an_unknown_country_is_an_error_when_computing_the_sending_time():
    with pytest.raises(UnknownCountry):
        next_sending_time(utc(2026, 3, 16, 10, 0), PARIS, "XX", NINE_TO_SIX)


@pytest.mark.parametrize(
    ("day", "expected_utc"),
    [
        (date(2026, 3, 27), utc(2026, 3, 27, 8, 0)),  # Friday before the change: CET, UTC+1
        (date(2026, 3, 29), utc(2026, 3, 29, 7, 0)),  # the Sunday of the change, 09:00 is CEST
        (date(2026, 3, 30), utc(2026, 3, 30, 7, 0)),  # Monday after: CEST, UTC+2
        (date(2026, 10, 23), utc(2026, 10, 23, 7, 0)),  # Friday before the return: still UTC+2
        (date(2026, 10, 25), utc(2026, 10, 25, 8, 0)),  # the Sunday of the return: CET again
        (date(2026, 10, 26), utc(2026, 10, 26, 8, 0)),  # Monday after: UTC+1
    ],
)
def test_the_window_opens_at_nine_paris_time_on_both_sides_of_a_daylight_saving_change(day, expected_utc):
    opening = window_opening(day, PARIS, NINE_TO_SIX)
    assert opening == expected_utc
    assert opening.utcoffset() == timedelta(0)


def test_the_window_opening_uses_the_debtors_own_time_zone():
    # Martinique has no summer time: UTC-4 all year, so 09:00 local is 13:00 UTC.
    assert window_opening(date(2026, 3, 30), "America/Martinique", NINE_TO_SIX) == utc(2026, 3, 30, 13, 0)


def test_an_unknown_time_zone_is_rejected():
    with pytest.raises(ValueError, match="Mars/Olympus"):
        window_opening(date(2026, 3, 30), "Mars/Olympus", NINE_TO_SIX)


def test_the_local_date_is_the_calendar_day_in_the_debtors_time_zone():
    # 23:30 UTC on 16 March is 00:30 on 17 March in Paris (UTC+1).
    assert local_date(utc(2026, 3, 16, 23, 30), PARIS) == date(2026, 3, 17)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # Mon 16 Mar 2026, 10:30 in Paris (09:30 UTC): inside the window, send now.
        (utc(2026, 3, 16, 9, 30), utc(2026, 3, 16, 9, 30)),
        # exactly 09:00 in Paris: the window is open from its first minute.
        (utc(2026, 3, 16, 8, 0), utc(2026, 3, 16, 8, 0)),
        # 17:59 in Paris: still open.
        (utc(2026, 3, 16, 16, 59), utc(2026, 3, 16, 16, 59)),
    ],
)
def test_inside_the_window_on_a_business_day_the_message_goes_now(now, expected):
    assert next_sending_time(now, PARIS, "FR", NINE_TO_SIX) == expected


@pytest.mark.parametrize(
    ("now", "expected", "why"),
    [
        (utc(2026, 3, 16, 7, 0), utc(2026, 3, 16, 8, 0), "08:00 Paris Monday -> 09:00 the same day"),
        (
            utc(2026, 3, 16, 23, 30),
            utc(2026, 3, 17, 8, 0),
            "00:30 Paris on Tuesday (still Monday in UTC) -> Tuesday 09:00",
        ),
        (utc(2026, 3, 16, 17, 0), utc(2026, 3, 17, 8, 0), "18:00 Paris: the window is closed -> next day"),
        (utc(2026, 3, 16, 17, 30), utc(2026, 3, 17, 8, 0), "18:30 Paris Monday -> Tuesday 09:00"),
        (utc(2026, 3, 20, 18, 0), utc(2026, 3, 23, 8, 0), "19:00 Paris Friday -> Monday 09:00"),
        (
            utc(2026, 3, 28, 9, 0),
            utc(2026, 3, 30, 7, 0),
            "Saturday before the DST change -> Monday 09:00 CEST = 07:00 UTC",
        ),
        (
            utc(2026, 3, 29, 6, 0),
            utc(2026, 3, 30, 7, 0),
            "Sunday 08:00 CEST (before the window) is still not a business day -> Monday",
        ),
        (utc(2026, 5, 1, 8, 0), utc(2026, 5, 4, 7, 0), "10:00 on Fri 1 May (holiday) -> Mon 4 May 09:00"),
        (utc(2026, 4, 30, 18, 0), utc(2026, 5, 4, 7, 0), "20:00 Thu 30 Apr -> skips 1 May and weekend"),
        (utc(2026, 5, 13, 17, 0), utc(2026, 5, 15, 7, 0), "19:00 Wed 13 May -> skips Ascension -> Fri"),
        (
            utc(2026, 10, 23, 17, 0),
            utc(2026, 10, 26, 8, 0),
            "19:00 Fri 23 Oct (UTC+2) -> Mon 26 Oct 09:00 CET = 08:00 UTC",
        ),
        (utc(2026, 12, 24, 17, 30), utc(2026, 12, 28, 8, 0), "18:30 Christmas Eve -> Mon 28 Dec"),
    ],
)
def test_outside_the_window_the_message_waits_for_the_next_opening_on_a_business_day(now, expected, why):
    assert next_sending_time(now, PARIS, "FR", NINE_TO_SIX) == expected, why


def test_a_custom_window_is_respected():
    early = Window(start=time(7, 30), end=time(12, 0))
    # Mon 16 Mar, 12:15 Paris (11:15 UTC): the morning window is closed -> Tue 07:30 Paris = 06:30 UTC
    assert next_sending_time(utc(2026, 3, 16, 11, 15), PARIS, "FR", early) == utc(2026, 3, 17, 6, 30)
    # 07:45 Paris (06:45 UTC) is inside it
    assert next_sending_time(utc(2026, 3, 16, 6, 45), PARIS, "FR", early) == utc(2026, 3, 16, 6, 45)


def test_a_german_debtor_waits_over_german_holidays_not_french_ones():
    # Thu 2 Apr 2026 19:00 Berlin (17:00 UTC, CEST): Good Friday, weekend and Easter Monday
    # are German holidays, so the next opening is Tue 7 Apr 09:00 Berlin = 07:00 UTC.
    assert next_sending_time(utc(2026, 4, 2, 17, 0), "Europe/Berlin", "DE", NINE_TO_SIX) == utc(
        2026, 4, 7, 7, 0
    )
    # A French debtor at the same instant gets Friday 3 April.
    assert next_sending_time(utc(2026, 4, 2, 17, 0), PARIS, "FR", NINE_TO_SIX) == utc(2026, 4, 3, 7, 0)
