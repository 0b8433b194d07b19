"""Where each step of the default ladder falls (handlers.ladder), worked out on a calendar.

Default offsets from the due date D: pre_due -5, due 0, notice +3, reminder_1 +10,
reminder_2 +20, reminder_3 +30, formal_notice +40. A date that is not a French business day
moves to the next one. 2026 holidays that matter here: Mon 6 Apr (Easter Monday),
Fri 1 May, Fri 8 May, Thu 14 May (Ascension), Mon 25 May (Pentecost Monday).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from config.policy import load_policy
from handlers.calendar import window_opening
from handlers.ladder import plan_new_invoice, plan_resumed
from handlers.planning import new_ladder
from handlers.policy import Window

POLICY = load_policy()


def plan(due: date, today: date) -> list[tuple[str, date]]:
    return [(s.step.name, s.day) for s in plan_new_invoice(due, today, POLICY, "FR")]


def test_the_default_policy_has_the_seven_steps_of_the_spec_and_a_call_before_the_formal_notice():
    assert [(s.name, s.offset_days) for s in POLICY.steps] == [
        ("pre_due", -5),
        ("due", 0),
        ("notice", 3),
        ("reminder_1", 10),
        ("reminder_2", 20),
        ("reminder_3", 30),
        ("call", 35),
        ("formal_notice", 40),
    ]


def test_an_invoice_due_on_30_april_gets_every_step_on_a_business_day():
    # D = Thu 30 Apr 2026, planned on 1 April (everything ahead).
    assert plan(date(2026, 4, 30), date(2026, 4, 1)) == [
        ("pre_due", date(2026, 4, 27)),  # D-5 = Sat 25 Apr -> Mon 27 Apr
        ("due", date(2026, 4, 30)),  # Thu 30 Apr, a business day
        ("notice", date(2026, 5, 4)),  # D+3 = Sun 3 May -> Mon 4 May
        ("reminder_1", date(2026, 5, 11)),  # D+10 = Sun 10 May -> Mon 11 May
        ("reminder_2", date(2026, 5, 20)),  # D+20 = Wed 20 May
        ("reminder_3", date(2026, 6, 1)),  # D+30 = Sat 30 May -> Mon 1 Jun
        ("call", date(2026, 6, 4)),  # D+35 = Thu 4 Jun
        ("formal_notice", date(2026, 6, 9)),  # D+40 = Tue 9 Jun
    ]


def test_steps_falling_on_public_holidays_move_to_the_next_business_day():
    # D = Tue 5 May 2026.
    assert plan(date(2026, 5, 5), date(2026, 4, 1)) == [
        ("pre_due", date(2026, 4, 30)),  # D-5 = Thu 30 Apr
        ("due", date(2026, 5, 5)),  # Tue 5 May
        ("notice", date(2026, 5, 11)),  # D+3 = Fri 8 May (Victoire 1945) -> Mon 11 May
        ("reminder_1", date(2026, 5, 15)),  # D+10 = Fri 15 May
        ("reminder_2", date(2026, 5, 26)),  # D+20 = Mon 25 May (Pentecost Monday) -> Tue 26
        ("reminder_3", date(2026, 6, 4)),  # D+30 = Thu 4 Jun
        ("call", date(2026, 6, 9)),  # D+35 = Tue 9 Jun
        ("formal_notice", date(2026, 6, 15)),  # D+40 = Sun 14 Jun -> Mon 15 Jun
    ]


def test_a_due_date_on_1_may_moves_the_due_step_to_monday_4_may():
    # D = Fri 1 May 2026 (holiday).
    steps = dict(plan(date(2026, 5, 1), date(2026, 4, 1)))
    assert steps["pre_due"] == date(2026, 4, 27)  # D-5 = Sun 26 Apr -> Mon 27 Apr
    assert steps["due"] == date(2026, 5, 4)  # Fri 1 May -> Mon 4 May
    assert steps["notice"] == date(2026, 5, 4)  # D+3 = Mon 4 May


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        # D = Thu 30 Apr 2026; nominal dates 25 Apr, 30 Apr, 3 May, 10 May, 20 May, 30 May, 9 Jun.
        (
            date(2026, 4, 28),
            [
                ("due", date(2026, 4, 30)),
                ("notice", date(2026, 5, 4)),
                ("reminder_1", date(2026, 5, 11)),
                ("reminder_2", date(2026, 5, 20)),
                ("reminder_3", date(2026, 6, 1)),
                ("call", date(2026, 6, 4)),
                ("formal_notice", date(2026, 6, 9)),
            ],
        ),
        # on the due date itself the due step is today, not in the past
        (
            date(2026, 4, 30),
            [
                ("due", date(2026, 4, 30)),
                ("notice", date(2026, 5, 4)),
                ("reminder_1", date(2026, 5, 11)),
                ("reminder_2", date(2026, 5, 20)),
                ("reminder_3", date(2026, 6, 1)),
                ("call", date(2026, 6, 4)),
                ("formal_notice", date(2026, 6, 9)),
            ],
        ),
        # Tue 12 May: pre_due .. reminder_1 are past; enters at reminder_2, later steps unchanged
        (
            date(2026, 5, 12),
            [
                ("reminder_2", date(2026, 5, 20)),
                ("reminder_3", date(2026, 6, 1)),
                ("call", date(2026, 6, 4)),
                ("formal_notice", date(2026, 6, 9)),
            ],
        ),
        # Sat 30 May = reminder_3's nominal day: enters at reminder_3 (moved to Mon 1 Jun)
        (
            date(2026, 5, 30),
            [
                ("reminder_3", date(2026, 6, 1)),
                ("call", date(2026, 6, 4)),
                ("formal_notice", date(2026, 6, 9)),
            ],
        ),
        # Tue 9 Jun: only the formal notice is left, today
        (date(2026, 6, 9), [("formal_notice", date(2026, 6, 9))]),
    ],
)
def test_an_invoice_imported_late_enters_at_the_first_step_dated_today_or_later(today, expected):
    assert plan(date(2026, 4, 30), today) == expected


def test_an_invoice_imported_on_the_business_day_a_weekend_step_was_moved_to_still_gets_that_step():
    # D = Thu 30 Apr; reminder_1 is nominally Sun 10 May and goes out Mon 11 May. An invoice
    # imported on Mon 11 May gets the same reminder_1 that day as one known since April:
    # the step does not "fall in the past" (spec/ladder.md), it falls today.
    assert plan(date(2026, 4, 30), date(2026, 5, 11)) == [
        ("reminder_1", date(2026, 5, 11)),
        ("reminder_2", date(2026, 5, 20)),
        ("reminder_3", date(2026, 6, 1)),
        ("call", date(2026, 6, 4)),
        ("formal_notice", date(2026, 6, 9)),
    ]


def test_no_planned_step_is_ever_before_today():
    due = date(2026, 4, 30)
    for offset in range(-10, 60):
        today = date.fromordinal(due.toordinal() + offset)
        assert all(day >= today for _, day in plan(due, today)), today


def test_an_invoice_imported_after_every_step_enters_at_notice_today_and_keeps_the_spacing():
    # D = Sun 1 Feb 2026, every step (last: D+40 = 13 Mar) is past on Mon 30 Mar.
    # notice today, then +7, +17, +27, +32, +37 days (the gaps 10-3, 20-3, 30-3, 35-3, 40-3):
    assert plan(date(2026, 2, 1), date(2026, 3, 30)) == [
        ("notice", date(2026, 3, 30)),  # Mon 30 Mar
        ("reminder_1", date(2026, 4, 7)),  # +7 = Mon 6 Apr, Easter Monday -> Tue 7 Apr
        ("reminder_2", date(2026, 4, 16)),  # +17 = Thu 16 Apr
        ("reminder_3", date(2026, 4, 27)),  # +27 = Sun 26 Apr -> Mon 27 Apr
        ("call", date(2026, 5, 4)),  # +32 = Fri 1 May (holiday) -> Mon 4 May
        ("formal_notice", date(2026, 5, 6)),  # +37 = Wed 6 May
    ]


def test_an_invoice_imported_late_on_a_saturday_enters_at_notice_on_the_next_business_day():
    # today Sat 4 Apr 2026; D = 15 Jan (D+40 = 24 Feb, past).
    assert plan(date(2026, 1, 15), date(2026, 4, 4)) == [
        ("notice", date(2026, 4, 7)),  # Sat 4 Apr -> Sun -> Mon 6 (Easter Monday) -> Tue 7
        ("reminder_1", date(2026, 4, 13)),  # +7 = Sat 11 Apr -> Mon 13 Apr
        ("reminder_2", date(2026, 4, 21)),  # +17 = Tue 21 Apr
        ("reminder_3", date(2026, 5, 4)),  # +27 = Fri 1 May (holiday) -> Mon 4 May
        ("call", date(2026, 5, 6)),  # +32 = Wed 6 May
        ("formal_notice", date(2026, 5, 11)),  # +37 = Mon 11 May
    ]


def test_steps_never_run_backwards_in_a_plan():
    for due in (date(2026, 4, 30), date(2026, 5, 5), date(2026, 12, 24)):
        days = [day for _, day in plan(due, date(2026, 1, 1))]
        assert days == sorted(days)


def _resumed(due: date, names: list[str], today: date) -> list[tuple[str, date]]:
    remaining = [POLICY.step(n) for n in names]
    return [(s.step.name, s.day) for s in plan_resumed(due, remaining, today, "FR")]


def test_a_resumed_invoice_starts_today_when_its_next_step_is_past_and_keeps_the_spacing():
    # D = Thu 30 Apr; paused before reminder_2 (nominal Wed 20 May), resumed Mon 15 Jun.
    # reminder_2 today; reminder_3 +10 = Thu 25 Jun; formal_notice +20 = Sun 5 Jul -> Mon 6 Jul.
    assert _resumed(date(2026, 4, 30), ["reminder_2", "reminder_3", "formal_notice"], date(2026, 6, 15)) == [
        ("reminder_2", date(2026, 6, 15)),
        ("reminder_3", date(2026, 6, 25)),
        ("formal_notice", date(2026, 7, 6)),
    ]


def test_a_resumed_invoice_whose_next_step_is_still_ahead_keeps_its_dates():
    # D = Thu 30 Apr; resumed Fri 15 May, reminder_2 (Wed 20 May) is still ahead.
    assert _resumed(date(2026, 4, 30), ["reminder_2", "reminder_3", "formal_notice"], date(2026, 5, 15)) == [
        ("reminder_2", date(2026, 5, 20)),
        ("reminder_3", date(2026, 6, 1)),  # Sat 30 May -> Mon 1 Jun
        ("formal_notice", date(2026, 6, 9)),
    ]


def test_a_resumed_invoice_on_a_holiday_starts_on_the_next_business_day():
    # resumed on Thu 14 May (Ascension), next step reminder_1 (nominal Sun 10 May, past).
    # shift +4 days: reminder_1 Thu 14 May -> Fri 15 May; reminder_2 Sun 24 May -> Mon 25 May
    # (Pentecost Monday) -> Tue 26 May.
    assert _resumed(date(2026, 4, 30), ["reminder_1", "reminder_2"], date(2026, 5, 14)) == [
        ("reminder_1", date(2026, 5, 15)),
        ("reminder_2", date(2026, 5, 26)),
    ]


def test_a_resumed_invoice_with_nothing_left_has_no_steps():
    assert _resumed(date(2026, 4, 30), [], date(2026, 6, 15)) == []


def test_an_invoice_past_its_call_day_at_the_upgrade_gets_the_call_today_and_the_notice_after_it():
    """Given D = Wed 1 April 2026, every step up to reminder_3 taken and the formal notice
    planned for Mon 11 May on the ladder without a call, when re-planned on Thu 7 May onto
    the default ladder, then the call is today (D+35 = 6 May is past) and the formal notice
    keeps its 5 days after it: Tue 12 May, one day later than planned."""
    from datetime import timedelta

    from handlers.ladder import replan

    due = date(2026, 4, 1)
    done = {s.name: due + timedelta(days=s.offset_days) for s in POLICY.steps if s.offset_days <= 30}
    planned = replan(due, done, {"formal_notice": date(2026, 5, 11)}, POLICY, date(2026, 5, 7), "FR")
    assert [(s.step.name, s.day) for s in planned] == [
        ("call", date(2026, 5, 7)),
        ("formal_notice", date(2026, 5, 12)),
    ]


# --- a new invoice's ladder, remembered per policy (handlers.planning.new_ladder) -------------


def _ladder_worked_out(policy, due: date, today: date, country: str, tz: str):
    return [
        (s.step.name, s.step.event, window_opening(s.day, tz, policy.window))
        for s in plan_new_invoice(due, today, policy, country)
    ]


@settings(max_examples=200, deadline=None)
@given(
    due=st.dates(date(2025, 1, 1), date(2028, 12, 31)),
    lag=st.integers(-90, 120),
    place=st.sampled_from([("FR", "Europe/Paris"), ("DE", "Europe/Berlin"), ("FR", "America/Martinique")]),
)
def test_a_new_ladder_remembered_is_the_ladder_worked_out_again(due, lag, place):
    country, tz = place
    today = due + timedelta(days=lag)
    first = new_ladder(POLICY, due, today, country, tz)
    again = new_ladder(POLICY, due, today, country, tz)
    assert [(name, event, at) for name, (event, at) in first] == _ladder_worked_out(
        POLICY, due, today, country, tz
    )
    assert again is first  # the second asks nothing of the calendar


def test_a_policy_with_another_window_gets_its_own_ladder():
    later = POLICY.model_copy(update={"window": Window(start=time(14, 0), end=time(18, 0))})
    due, today = date(2026, 4, 30), date(2026, 4, 1)
    ours = dict(new_ladder(POLICY, due, today, "FR", "Europe/Paris"))
    theirs = dict(new_ladder(later, due, today, "FR", "Europe/Paris"))
    # Thu 30 Apr 2026 is a business day; Paris is at UTC+2 then: 09:00 -> 07:00, 14:00 -> 12:00
    assert ours["due"] == ("invoice.due", datetime(2026, 4, 30, 7, 0, tzinfo=UTC))
    assert theirs["due"] == ("invoice.due", datetime(2026, 4, 30, 12, 0, tzinfo=UTC))
