"""Write the ladder of an invoice into ``planned_steps`` and take it back out."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache

import structlog

from handlers import evidence, holds
from handlers.calendar import add_months, local_date, next_business_day, opening_at, window_opening, zone
from handlers.ladder import StepDate, plan_new_invoice, plan_resumed, policy_key, replan
from handlers.policy import ESCALATION, FORMAL_NOTICE, Policy
from handlers.records import DebtorRecord, InvoiceRecord
from handlers.store import FINISHED, PENDING, StepFilter, Store

log = structlog.get_logger("relance.planning")


# the steps of a payment plan's installments (handlers.plans), carried by one plan invoice
INSTALLMENT_PREFIX = "installment_"


def schedule(store: Store, invoice: InvoiceRecord, step: str, event: str, due_at: datetime) -> None:
    """Plan (or re-plan) one step; a finished step is never planned again."""
    row = store.step_of(invoice.id, step)
    if row is None:
        store.add_step(invoice.id, invoice.debtor_id, step, event, due_at)
    elif row.status not in FINISHED:
        row.event, row.due_at, row.status, row.lease_until, row.reason = (
            event,
            due_at,
            "planned",
            None,
            None,
        )


def cancelled_by(steps: Iterable[str] = ()) -> StepFilter:
    """The pending steps of an invoice a cancellation takes: all of them, or only ``steps``.

    The prescription warning stays: a paused claim still runs out of time. A payment plan's
    installment steps stay too unless named in ``steps``: they end with the plan. The end of
    a person's hold stays: a dispute or a promise during the hold does not make it endless.
    """
    return StepFilter(names=tuple(steps), spare=SPARED, spare_prefix=INSTALLMENT_PREFIX)


def schedule_again(store: Store, invoice: InvoiceRecord, step: str, event: str, due_at: datetime) -> None:
    """Plan a deadline that may come back (the end of a hold): unlike ``schedule``, one that
    has already expired is planned anew."""
    row = store.step_of(invoice.id, step)
    if row is None:
        store.add_step(invoice.id, invoice.debtor_id, step, event, due_at)
        return
    row.event, row.due_at, row.status = event, due_at, "planned"
    row.lease_until, row.reason, row.done_at = None, None, None


def cancel_pending(store: Store, invoice_id: int, reason: str, *, steps: Iterable[str] = ()) -> int:
    """Take the pending steps of an invoice out of the schedule (``cancelled_by``); how many."""
    return store.cancel_pending(invoice_id, reason, cancelled_by(steps))


def cancel_pending_soon(store: Store, invoice_id: int, reason: str) -> None:
    """``cancel_pending`` of all the steps, when how many does not matter: the store may
    cancel them with its next write (``Store.cancel_pending_soon``)."""
    store.cancel_pending_soon(invoice_id, reason, cancelled_by())


def _write(
    store: Store, invoice: InvoiceRecord, debtor: DebtorRecord, policy: Policy, dates: list[StepDate]
) -> None:
    for item in dates:
        due_at = window_opening(item.day, debtor.timezone, policy.window)
        schedule(store, invoice, item.step.name, item.step.event, due_at)


def plan_invoice(
    store: Store, invoice: InvoiceRecord, debtor: DebtorRecord, policy: Policy, now: datetime
) -> None:
    """Plan the ladder of an invoice that has just been created.

    A new invoice has no planned step yet, so the steps are added without looking each one
    up first (what ``schedule`` does); they are inserted together at the next flush.
    """
    today = local_date(now, debtor.timezone)
    invoice.policy_key = policy_key(policy)
    steps = dict(new_ladder(policy, invoice.due_date, today, debtor.country, debtor.timezone))
    steps[PRESCRIPTION_WARNING] = (
        "deadline.expired",
        _prescription_warning_at(invoice, debtor, policy, today),
    )
    store.add_steps(
        invoice.id, invoice.debtor_id, [(step, event, due_at) for step, (event, due_at) in steps.items()]
    )


LadderTimes = tuple[tuple[str, tuple[str, datetime]], ...]


def new_ladder(policy: Policy, due_date: date, today: date, country: str, tz: str) -> LadderTimes:
    """The ladder of a new invoice: each step's name, event and instant (the sending
    window's opening on its business day), in the ladder's order.

    A pure function of its arguments, remembered per policy: a feed's invoices share a few
    due dates, and the business days and windows of a ladder cost more than the rest of
    an invoice's planning (``relance ingest``)."""
    known = _ladders_of(policy)
    key = (due_date, today, country, tz)
    found = known.get(key)
    if found is None:
        steps: dict[str, tuple[str, datetime]] = {}
        for item in plan_new_invoice(due_date, today, policy, country):
            steps[item.step.name] = (item.step.event, window_opening(item.day, tz, policy.window))
        found = tuple(steps.items())
        if len(known) >= _LADDERS_PER_POLICY:  # bounded: the memory stays flat
            known.clear()
        known[key] = found
    return found


def _ladders_of(policy: Policy) -> dict[tuple[date, date, str, str], LadderTimes]:
    """The ladders remembered for ``policy`` (kept with it, so its id is not reused)."""
    entry = _LADDERS.get(id(policy))
    if entry is None or entry[0] is not policy:
        if len(_LADDERS) >= 64:  # a process loads a handful of policies; tests make many
            _LADDERS.clear()
        entry = _LADDERS[id(policy)] = (policy, {})
    return entry[1]


_LADDERS_PER_POLICY = 4096
_LADDERS: dict[int, tuple[Policy, dict[tuple[date, date, str, str], LadderTimes]]] = {}


PRESCRIPTION_WARNING = "prescription_warning"
SPARED = (PRESCRIPTION_WARNING, holds.HOLD_EXPIRED, holds.DEBTOR_HOLD_EXPIRED)
PRESCRIPTION_YEARS = {"business": 5, "consumer": 2}  # Code de commerce L110-4, C. conso L218-2
PUBLIC_PRESCRIPTION_YEARS = 4  # loi n° 68-1250, art. 1, counted from 1 January
WARNING_MONTHS = 6


def prescription_dates(invoice: InvoiceRecord, kind: str) -> tuple[date, date]:
    """(day the claim is time-barred, day to warn): from delivery, else the issue date."""
    return _prescription_dates_from(invoice.delivered_on or invoice.issue_date, kind)


def _prescription_dates_from(start: date, kind: str) -> tuple[date, date]:
    if kind == "public":
        # loi n° 68-1250 du 31 décembre 1968, art. 1: four years from the first day of the
        # year after the one in which the right arose (the "prescription quadriennale")
        barred = date(start.year + 1 + PUBLIC_PRESCRIPTION_YEARS, 1, 1)
    else:
        barred = add_months(start, 12 * PRESCRIPTION_YEARS.get(kind, 5))
    return barred, add_months(barred, -WARNING_MONTHS)


def plan_prescription_warning(
    store: Store, invoice: InvoiceRecord, debtor: DebtorRecord, policy: Policy, today: date
) -> None:
    schedule(
        store,
        invoice,
        PRESCRIPTION_WARNING,
        "deadline.expired",
        _prescription_warning_at(invoice, debtor, policy, today),
    )


def _prescription_warning_at(
    invoice: InvoiceRecord, debtor: DebtorRecord, policy: Policy, today: date
) -> datetime:
    start = invoice.delivered_on or invoice.issue_date
    return _warning_instant(start, debtor.kind, today, debtor.country, debtor.timezone, policy.window.start)


@lru_cache(maxsize=4096)
def _warning_instant(start: date, kind: str, today: date, country: str, tz: str, opens: time) -> datetime:
    """When to warn of the prescription of a claim born on ``start``: a pure function of its
    arguments, remembered (bounded) as each new invoice of a feed asks it again for one of a
    few issue dates (``relance ingest``)."""
    _, warn = _prescription_dates_from(start, kind)
    return opening_at(next_business_day(max(warn, today), country), tz, opens)


def resume_invoice(
    store: Store,
    invoice: InvoiceRecord,
    debtor: DebtorRecord,
    policy: Policy,
    now: datetime,
    *,
    not_before: str | None = None,
) -> None:
    """Re-plan the steps not yet taken, the next one no earlier than today.

    ``not_before`` names a step the ladder resumes at the earliest (a broken payment plan
    resumes an overdue invoice at the policy's ``resume_step``, never with a pre-due).
    """
    invoice.policy_key = policy_key(policy)  # the policy in force when it resumes
    done = store.finished_steps(invoice.id)
    last_done = max((policy.severity(s) for s in done), default=-1)
    first = max(last_done + 1, policy.severity(not_before)) if not_before else last_done + 1
    remaining = [s for s in policy.steps[first:] if s.name not in done]
    today = local_date(now, debtor.timezone)
    _write(store, invoice, debtor, policy, plan_resumed(invoice.due_date, remaining, today, debtor.country))
    if FORMAL_NOTICE in done and ESCALATION not in done:
        # the notice was sent (and presented) before the pause: no new letter is posted, so
        # its deadline runs again from today, ending on a business day
        deadline = next_business_day(today + timedelta(days=policy.escalation.deadline_days), debtor.country)
        schedule(store, invoice, ESCALATION, "deadline.expired", end_of_day(deadline, debtor.timezone))


def end_of_day(day: date, tz: str) -> datetime:
    """The first instant after ``day`` in time zone ``tz`` (a deadline's expiry), in UTC."""
    return datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=zone(tz)).astimezone(UTC)


LADDER_EVENTS = ("invoice.due", "invoice.overdue")


def replan_invoice(
    store: Store, invoice: InvoiceRecord, debtor: DebtorRecord, policy: Policy, now: datetime
) -> bool:
    """Put the remaining steps of an open invoice on ``policy`` when it is not the one that
    planned them (docs/policy.md, "A policy or segment change"); True when steps changed.

    Steps taken stay as they are; the escalation deadline, the prescription warning and a
    payment plan's steps are not ladder steps and are left alone. A paused invoice keeps
    its pause and its key: it is re-planned on the policy in force when it resumes.
    """
    key = policy_key(policy)
    if invoice.policy_key == key or holds.settled(invoice):
        return False
    old_key, invoice.policy_key = invoice.policy_key, key
    if holds.paused(invoice) or holds.held(debtor) or holds.frozen_by_insolvency(invoice, debtor):
        return False  # none of its ladder is planned; a resume plans on the policy then in force
    done, remaining = _ladder_steps(store, invoice, debtor.timezone)
    today = local_date(now, debtor.timezone)
    planned = replan(invoice.due_date, done, remaining, policy, today, debtor.country)
    new = {item.step.name: item.day for item in planned}
    if new == remaining:
        return False
    removed = [name for name in remaining if name not in new]
    cancel_pending(store, invoice.id, f"re-planned on policy {policy.name}", steps=removed)
    _write(store, invoice, debtor, policy, [i for i in planned if remaining.get(i.step.name) != i.day])
    _record_replan(store, invoice, old_key, policy, remaining, new, now)
    return True


def _ladder_steps(store: Store, invoice: InvoiceRecord, tz: str) -> tuple[dict[str, date], dict[str, date]]:
    """(ladder steps taken, ladder steps still planned), each with its local day."""
    rows = [s for s in store.steps_of(invoice.id, LADDER_EVENTS) if not s.step.startswith(INSTALLMENT_PREFIX)]
    done = {s.step: local_date(s.due_at, tz) for s in rows if s.status in FINISHED}
    remaining = {s.step: local_date(s.due_at, tz) for s in rows if s.status in PENDING}
    return done, remaining


def _record_replan(
    store: Store,
    invoice: InvoiceRecord,
    old_key: str | None,
    policy: Policy,
    old: dict[str, date],
    new: dict[str, date],
    now: datetime,
) -> None:
    facts = {
        "invoice_number": invoice.number,
        "old_policy": old_key.split(":", 1)[0] if old_key else None,
        "new_policy": policy.name,
        "old_policy_key": old_key,
        "new_policy_key": policy_key(policy),
        "removed": [name for name in old if name not in new],
        "added": [name for name in new if name not in old],
        "planned": {name: day.isoformat() for name, day in new.items()},
    }
    evidence.append(
        store,
        "invoice.replanned",
        now,
        facts,
        debtor_id=invoice.debtor_id,
        invoice_numbers=[invoice.number],
    )
    log.info("invoice.replanned", debtor_id=invoice.debtor_id, **facts)
