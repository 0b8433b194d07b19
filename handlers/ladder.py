"""Where each step of the ladder falls for an invoice: a pure function of dates and policy."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
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


def policy_key(policy: Policy) -> str:
    """A stable fingerprint of what a policy plans: its name and a hash of its ladder.

    Two policies with the same key plan the same steps on the same days and send them on
    the same channels; any change to a step's name, offset, event or channels, or to the
    step where late invoices enter, changes the key (and so re-plans, docs/policy.md).
    """
    known = _KEYS.get(id(policy))
    if known is not None and known[0] is policy:
        return known[1]
    ladder = {
        "resume_step": policy.resume_step,
        "steps": [[s.name, s.offset_days, s.event, list(s.channels)] for s in policy.steps],
    }
    text = json.dumps(ladder, sort_keys=True, separators=(",", ":"))
    key = f"{policy.name}:{hashlib.sha256(text.encode('utf-8')).hexdigest()[:16]}"
    if len(_KEYS) >= 64:  # a process loads a handful of policies; tests make many
        _KEYS.clear()
    _KEYS[id(policy)] = (policy, key)  # the policy is kept, so its id is not reused
    return key


# keys of the policies seen, by id: every planned invoice asks for one (``relance ingest``)
_KEYS: dict[int, tuple[Policy, str]] = {}


def replan(
    due_date: date,
    done: Mapping[str, date],
    old_remaining: Mapping[str, date],
    new_policy: Policy,
    today: date,
    country: str,
) -> list[StepDate]:
    """The steps still to take under ``new_policy``, for an invoice part-way up its ladder.

    ``done`` names the ladder steps already taken (sent, skipped or failed) with the day
    each was planned for; ``old_remaining`` the steps still planned and their days. The
    result holds the new policy's steps more severe than the most severe one taken (every
    step when none was), dated from the due date; past dates are handled as for a new
    invoice when nothing was taken, else as after a pause: the next step today, the later
    ones keeping their spacing. When the steps still planned are already a plan the new
    policy could have made (same steps, its spacing, none in the past), they are kept as
    they are: an unchanged ladder re-plans nothing.
    """
    if not done:
        planned = plan_new_invoice(due_date, today, new_policy, country)
    else:
        after = last_rank(done, due_date, new_policy)
        remaining = [s for s in new_policy.steps[after + 1 :] if s.name not in done]
        planned = plan_resumed(due_date, remaining, today, country)
    kept = _kept(due_date, planned, old_remaining, today, country)
    return planned if kept is None else kept


def last_rank(done: Mapping[str, date], due_date: date, policy: Policy) -> int:
    """Rank in ``policy`` of the most severe step taken (-1 when none).

    A step the policy does not name ranks as the policy's most severe step due on or
    before the day it was taken for: the rung of the new ladder it stood in for.
    """
    rank = -1
    for name, day in done.items():
        own = policy.severity(name)
        if own < 0:
            own = max(
                (i for i, s in enumerate(policy.steps) if due_date + timedelta(days=s.offset_days) <= day),
                default=-1,
            )
        rank = max(rank, own)
    return rank


def _kept(
    due_date: date, planned: list[StepDate], old: Mapping[str, date], today: date, country: str
) -> list[StepDate] | None:
    """The old plan as ``StepDate`` values, when it is one ``planned``'s policy could make."""
    steps = [item.step for item in planned]
    if [s.name for s in steps] != list(old) or not steps:
        return None
    days = list(old.values())
    if min(days) < today:
        return None
    dated = nominal_dates(due_date, steps)
    candidates = [dated]
    # a plan moved to start on an earlier day: that day is one whose next business day is
    # the old plan's first day (a weekend or holidays before it)
    start = days[0]
    while next_business_day(start, country) == days[0]:
        candidates.append(shift_to_start(dated, start))
        start -= timedelta(days=1)
    for candidate in candidates:
        if [next_business_day(d, country) for _, d in candidate] == days:
            return [StepDate(s, d) for s, d in zip(steps, days, strict=True)]
    return None
