"""Where each step of the ladder falls for an invoice: a pure function of dates and policy."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from handlers.calendar import next_business_day
from handlers.policy import Policy, Step


@dataclass(frozen=True)
class StepDate:
    step: Step
    day: date  # a business day of the debtor's country


def nominal_dates(due_date: date, steps: Sequence[Step]) -> list[tuple[Step, date]]:
    return [(s, due_date + timedelta(days=s.offset_days)) for s in steps]


def plan_new_invoice(due_date: date, today: date, policy: Policy, country: str) -> list[StepDate]:
    """Steps of a newly known invoice, never in the past.

    The invoice enters the ladder at the first step dated today or later; when every step
    is past it enters at the policy's ``resume_step`` today, the later steps keeping their
    spacing from that day. Each date then moves to the next business day.
    """
    dated = nominal_dates(due_date, policy.steps)
    # a step moved off a weekend or holiday onto today or later is not in the past
    upcoming = [(s, d) for s, d in dated if next_business_day(d, country) >= today]
    if not upcoming:
        entry = policy.severity(policy.resume_step)
        upcoming = shift_to_start(dated[entry:], today)
    return _on_business_days(upcoming, country)


def plan_resumed(due_date: date, remaining: Sequence[Step], today: date, country: str) -> list[StepDate]:
    """Steps left after a pause: the next one no earlier than today, spacing kept."""
    dated = nominal_dates(due_date, remaining)
    if dated and dated[0][1] < today:
        dated = shift_to_start(dated, today)
    return _on_business_days(dated, country)


def shift_to_start(dated: Sequence[tuple[Step, date]], start: date) -> list[tuple[Step, date]]:
    """Move a run of steps so the first falls on ``start``, keeping the gaps between them."""
    if not dated:
        return []
    delta = start - dated[0][1]
    return [(s, d + delta) for s, d in dated]


def _on_business_days(dated: Sequence[tuple[Step, date]], country: str) -> list[StepDate]:
    return [StepDate(s, next_business_day(d, country)) for s, d in dated]
