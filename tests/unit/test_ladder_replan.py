"""Re-planning the remaining steps of an invoice on a new policy (handlers.ladder.replan).

Default ladder (offsets from the due date D): pre_due -5, due 0, notice +3, reminder_1 +10,
reminder_2 +20, reminder_3 +30, formal_notice +40. Policy B below: notice +5,
reminder_1 +12, reminder_2 +25 (email + letter), formal_notice +45. French business days;
2026 holidays that matter here: Fri 1 May, Fri 8 May, Thu 14 May, Mon 25 May.
"""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from config.policy import load_policy
from handlers.ladder import StepDate, plan_new_invoice, policy_key, replan
from handlers.policy import Policy, Step

A = load_policy()
B = Policy(
    name="b",
    resume_step="notice",
    steps=(
        Step(name="notice", offset_days=5, event="invoice.overdue", channels=("email",)),
        Step(name="reminder_1", offset_days=12, event="invoice.overdue", channels=("email",)),
        Step(name="reminder_2", offset_days=25, event="invoice.overdue", channels=("email", "letter")),
        Step(name="formal_notice", offset_days=45, event="invoice.overdue", channels=("registered_letter",)),
    ),
)


def names_days(plan: list[StepDate]) -> list[tuple[str, date]]:
    return [(item.step.name, item.day) for item in plan]


def as_old(plan: list[StepDate]) -> dict[str, date]:
    return {item.step.name: item.day for item in plan}


def test_the_key_names_the_policy_and_changes_with_a_channel_but_not_with_the_window():
    same_ladder = A.model_copy(update={"window": A.window.model_copy(update={"start": A.window.end})})
    with_letter = A.model_copy(
        update={"steps": (A.steps[0].model_copy(update={"channels": ("letter",)}), *A.steps[1:])}
    )
    assert policy_key(A).startswith("default-fr:")
    assert policy_key(same_ladder) == policy_key(A)
    assert policy_key(with_letter) != policy_key(A)


def test_after_reminder_1_the_rest_follows_policy_b_from_the_due_date():
    # D = Wed 1 Apr 2026; reminder_1 (D+10, Sat 11 Apr -> Mon 13 Apr) was sent; today Tue 14 Apr.
    # B's steps after reminder_1: reminder_2 D+25 = Sun 26 Apr -> Mon 27 Apr,
    # formal_notice D+45 = Sat 16 May -> Mon 18 May.
    old = {"reminder_2": date(2026, 4, 21), "reminder_3": date(2026, 5, 1)}
    old["formal_notice"] = date(2026, 5, 11)
    done = {"pre_due": date(2026, 3, 27), "due": date(2026, 4, 1), "notice": date(2026, 4, 6)}
    done["reminder_1"] = date(2026, 4, 13)
    new = replan(date(2026, 4, 1), done, old, B, date(2026, 4, 14), "FR")
    assert names_days(new) == [("reminder_2", date(2026, 4, 27)), ("formal_notice", date(2026, 5, 18))]
    assert new[0].step.channels == ("email", "letter")


def test_when_the_new_dates_are_past_the_next_step_is_today_and_the_spacing_kept():
    # D = Wed 1 Apr; notice sent; today Mon 4 May. B's reminder_1 (D+12 = Mon 13 Apr) is past:
    # it moves to today, Mon 4 May (+21 days); reminder_2 D+25 + 21 = Mon 18 May;
    # formal_notice D+45 + 21 = Sun 7 Jun -> Mon 8 Jun. No burst of the past steps.
    done = {"notice": date(2026, 4, 6)}
    new = replan(date(2026, 4, 1), done, {"reminder_1": date(2026, 5, 5)}, B, date(2026, 5, 4), "FR")
    assert names_days(new) == [
        ("reminder_1", date(2026, 5, 4)),
        ("reminder_2", date(2026, 5, 18)),
        ("formal_notice", date(2026, 6, 8)),
    ]


def test_a_step_the_new_policy_does_not_name_counts_as_the_rung_it_was_taken_at():
    # reminder_3 (A's D+30) is not in B; taken on Fri 1 May = D+30, it stands above B's
    # reminder_2 (D+25): only formal_notice is left, D+45 = Sat 16 May -> Mon 18 May.
    done = {"reminder_3": date(2026, 5, 1)}
    new = replan(date(2026, 4, 1), done, {}, B, date(2026, 5, 4), "FR")
    assert names_days(new) == [("formal_notice", date(2026, 5, 18))]


def test_with_nothing_sent_the_invoice_enters_the_new_ladder_as_a_new_invoice_would():
    # D = Wed 1 Apr, today Thu 9 Apr, nothing sent: B's notice (D+5 = Mon 6 Apr) is past,
    # reminder_1 D+12 = Mon 13 Apr is the first still ahead.
    new = replan(date(2026, 4, 1), {}, {"notice": date(2026, 4, 9)}, B, date(2026, 4, 9), "FR")
    assert names_days(new) == names_days(plan_new_invoice(date(2026, 4, 1), date(2026, 4, 9), B, "FR"))
    assert new[0].step.name == "reminder_1"


def test_the_same_ladder_keeps_a_plan_shifted_by_a_late_import():
    # imported on Sat 2 May with every step past: enters at notice, moved to start that day
    plan = plan_new_invoice(date(2026, 2, 2), date(2026, 5, 2), A, "FR")
    old = as_old(plan)
    new = replan(date(2026, 2, 2), {}, old, A, date(2026, 5, 4), "FR")
    assert as_old(new) == old


# ---- properties ----------------------------------------------------------------------

STEP_NAMES = ["pre_due", "due", "notice", "reminder_1", "reminder_2", "reminder_3", "formal_notice"]


@st.composite
def policies(draw) -> Policy:
    names = draw(st.lists(st.sampled_from(STEP_NAMES), min_size=1, max_size=7, unique=True))
    names.sort(key=STEP_NAMES.index)
    count = len(names)
    offsets = sorted(draw(st.lists(st.integers(-20, 120), min_size=count, max_size=count, unique=True)))
    channels = st.sampled_from([("email",), ("letter",), ("email", "letter"), ("registered_letter",)])
    steps = tuple(
        Step(
            name=n,
            offset_days=o,
            event="invoice.due" if o <= 0 else "invoice.overdue",
            channels=draw(channels),
        )
        for n, o in zip(names, offsets, strict=True)
    )
    name = draw(st.sampled_from(["a", "b"]))
    return Policy(name=name, steps=steps, resume_step=draw(st.sampled_from(names)))


days = st.dates(min_value=date(2025, 6, 1), max_value=date(2027, 6, 1))


@st.composite
def situations(draw):
    """An invoice planned under ``old`` on ``planned_on``, some steps taken by ``today``."""
    old, new = draw(policies()), draw(policies())
    due, planned_on = draw(days), draw(days)
    today = planned_on + timedelta(days=draw(st.integers(0, 200)))
    plan = plan_new_invoice(due, planned_on, old, "FR")
    taken = draw(st.integers(0, len(plan)))
    done = {item.step.name: item.day for item in plan[:taken]}
    remaining = {item.step.name: item.day for item in plan[taken:]}
    return due, done, remaining, new, today


@settings(max_examples=150, deadline=None)
@given(situations())
def test_a_step_already_taken_is_never_planned_again(situation):
    due, done, remaining, new, today = situation
    assert not {item.step.name for item in replan(due, done, remaining, new, today, "FR")} & set(done)


@settings(max_examples=150, deadline=None)
@given(situations())
def test_no_re_planned_step_falls_before_today(situation):
    due, done, remaining, new, today = situation
    assert all(item.day >= today for item in replan(due, done, remaining, new, today, "FR"))


@settings(max_examples=150, deadline=None)
@given(situations())
def test_re_planned_steps_are_the_new_policys_by_severity_on_non_decreasing_days(situation):
    due, done, remaining, new, today = situation
    planned = replan(due, done, remaining, new, today, "FR")
    assert all(item.step in new.steps for item in planned)
    ranks = [new.severity(item.step.name) for item in planned]
    assert ranks == sorted(ranks) and len(set(ranks)) == len(ranks)
    assert [item.day for item in planned] == sorted(item.day for item in planned)


@settings(max_examples=150, deadline=None)
@given(situations())
def test_nothing_milder_than_the_last_step_taken_is_planned(situation):
    due, done, remaining, new, today = situation
    known = [new.severity(name) for name in done if new.severity(name) >= 0]
    planned = replan(due, done, remaining, new, today, "FR")
    assert all(new.severity(item.step.name) > max(known, default=-1) for item in planned)


@settings(max_examples=150, deadline=None)
@given(policies(), days, days, st.integers(0, 200), st.data())
def test_an_unchanged_policy_re_plans_nothing(policy, due, planned_on, later, data):
    # what is still planned, as the policy planned it, none of it past by ``today``
    plan = plan_new_invoice(due, planned_on, policy, "FR")
    taken = data.draw(st.integers(0, len(plan)))
    done = {item.step.name: item.day for item in plan[:taken]}
    remaining = {item.step.name: item.day for item in plan[taken:]}
    first = min(remaining.values(), default=planned_on + timedelta(days=later))
    today = min(planned_on + timedelta(days=later), first)
    assert as_old(replan(due, done, remaining, policy, today, "FR")) == remaining
