"""Money: exact decimals, late-payment penalties per half-year, formatting per language.

Penalties are simple interest on the unpaid amount including VAT, for every calendar day
after the due date up to and including the day of computation, actual/365, one rate per
calendar half-year, summed unrounded and rounded half-up to the cent once at the end.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from handlers.money_text import money_text

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
DAYS_PER_YEAR = Decimal(365)


class MissingRate(LookupError):
    """The rate table has no entry for a half-year that a computation needs."""

    def __init__(self, half_year: str) -> None:
        super().__init__(f"the rate table has no rate for half-year {half_year}")
        self.half_year = half_year


def to_cents(amount: Decimal) -> Decimal:
    """Round half-up to the cent."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def parse_amount(text: str | Decimal) -> Decimal:
    """A decimal string with at most 2 decimals, exactly."""
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise ValueError(f"{text!r} is not a decimal amount") from exc
    if not value.is_finite() or value.adjusted() > 15:
        raise ValueError(f"{str(text)!r} is not a usable amount")
    if value != value.quantize(CENT):
        raise ValueError(f"{str(text)!r} must have at most 2 decimals")
    return value.quantize(CENT)


def half_year_of(day: date) -> str:
    return f"{day.year}-H{1 if day.month <= 6 else 2}"


def _half_year_end(day: date) -> date:
    return date(day.year, 6, 30) if day.month <= 6 else date(day.year, 12, 31)


@dataclass(frozen=True, slots=True)
class InterestSegment:
    """Interest of one stretch of days sharing a half-year and an unpaid balance."""

    half_year: str
    first_day: date
    last_day: date
    days: int
    balance: Decimal
    rate: Decimal
    amount: Decimal  # unrounded

    @property
    def amount_rounded(self) -> Decimal:
        return to_cents(self.amount)


@dataclass(frozen=True, slots=True)
class Interest:
    total: Decimal
    segments: tuple[InterestSegment, ...]


RateFor = Callable[[str], Decimal]
"""Annual rate (e.g. Decimal('0.1215')) for a half-year key; raises MissingRate."""


def late_interest(
    due_date: date,
    until: date,
    balance_on: Callable[[date], Decimal],
    rate_for: RateFor,
    change_days: Sequence[date] = (),
) -> Interest:
    """Penalties from the day after ``due_date`` through ``until`` inclusive.

    ``balance_on(day)`` gives the unpaid amount on that day; ``change_days`` are the days
    on which it changes (payments, credit notes), so segments split there too.
    """
    day = due_date + timedelta(days=1)
    cuts = sorted({d for d in change_days if day < d <= until})
    segments: list[InterestSegment] = []
    while day <= until:
        last = min(_half_year_end(day), until)
        next_cut = next((c for c in cuts if day < c <= last), None)
        if next_cut is not None:
            last = next_cut - timedelta(days=1)
        balance = balance_on(day)
        if balance > 0:
            key = half_year_of(day)
            rate = rate_for(key)
            days = (last - day).days + 1
            amount = balance * rate * days / DAYS_PER_YEAR
            segments.append(InterestSegment(key, day, last, days, balance, rate, amount))
        day = last + timedelta(days=1)
    return Interest(to_cents(sum((s.amount for s in segments), Decimal(0))), tuple(segments))


def format_money(amount: Decimal, currency: str, language: str) -> str:
    """``1 234,56 €`` in French, ``€1,234.56`` in English (CLDR data via Babel, looked up
    once per currency and language: ``handlers.money_text``)."""
    return money_text(amount, currency, language)


def format_rate(rate: Decimal, language: str) -> str:
    percent = (rate * 100).quantize(CENT)
    text = f"{percent:.2f} %"
    return text.replace(".", ",") if language == "fr" else text.replace(" %", "%")


@dataclass(frozen=True)
class Movement:
    """Money received against an invoice.

    Under ``principal_first`` (the default) every movement reduces the principal. Under
    ``interest_first`` a ``payment`` pays accrued penalties first; ``credit_note`` and
    ``plan_payment`` (paid under an agreed payment plan) still reduce the principal only.
    """

    day: date
    amount: Decimal
    kind: str  # payment | credit_note | plan_payment


@dataclass(frozen=True)
class Imputation:
    """Where the money went: what is left of the principal and what is owed in penalties.

    Under ``principal_first`` nothing is imputed on penalties (``interest_paid`` is zero) and
    the penalties are a claim of their own beside the principal; under ``interest_first``
    (Code civil 1343-1) payments pay the penalties accrued on their day before the principal.
    """

    principal: Decimal  # principal still due
    interest: Interest  # every penalty accrued, per segment (total rounded once)
    interest_paid: Decimal  # part of the payments imputed on penalties
    interest_due: Decimal  # penalties still due, rounded half-up once

    @property
    def accrued(self) -> Decimal:
        return sum((s.amount for s in self.interest.segments), Decimal(0))


def impute_interest_first(
    amount_due: Decimal, due_date: date, until: date, movements: Sequence[Movement], rate_for: RateFor
) -> Imputation:
    """Penalties and principal when each payment pays accrued penalties before principal.

    A payment on day P counts P as a day late on the old principal; the new principal runs
    from P + 1. Credit notes reduce the principal only (they correct the invoice itself).
    """
    timeline: list[tuple[date, Decimal]] = [(due_date + timedelta(days=1), amount_due)]

    def principal_on(day: date) -> Decimal:
        return (
            next(p for start, p in reversed(timeline) if start <= day)
            if day >= timeline[0][0]
            else amount_due
        )

    def accrued_until(day: date) -> Decimal:
        found = late_interest(due_date, day, principal_on, rate_for, [d for d, _ in timeline])
        return sum((s.amount for s in found.segments), Decimal(0))

    principal, interest_paid = amount_due, ZERO
    for movement in sorted(movements, key=lambda m: m.day):
        if movement.day > until:
            break
        to_interest = ZERO
        if movement.kind == "payment" and movement.day > due_date:
            owed = to_cents(accrued_until(movement.day)) - interest_paid
            to_interest = min(movement.amount, max(owed, ZERO))
        interest_paid += to_interest
        principal -= movement.amount - to_interest
        timeline.append((max(movement.day + timedelta(days=1), timeline[0][0]), principal))
    interest = late_interest(due_date, until, principal_on, rate_for, [d for d, _ in timeline])
    due = max(to_cents(sum((s.amount for s in interest.segments), Decimal(0)) - interest_paid), ZERO)
    return Imputation(principal, interest, interest_paid, due)


def impute_principal_first(
    amount_due: Decimal, due_date: date, until: date, movements: Sequence[Movement], rate_for: RateFor
) -> Imputation:
    """Penalties and principal when every payment and credit note reduces the principal.

    A movement on day P counts P as a day late on the old principal; the lower principal
    runs from P + 1. Penalties run on the principal still unpaid each day and are owed in
    full beside it (nothing of the payments goes to them). Movements after ``until`` lower
    the principal but add no day of penalties.
    """
    principal = amount_due - sum((m.amount for m in movements), ZERO)

    def principal_on(day: date) -> Decimal:
        return amount_due - sum((m.amount for m in movements if m.day < day), ZERO)

    interest = late_interest(
        due_date, until, principal_on, rate_for, [m.day + timedelta(days=1) for m in movements]
    )
    return Imputation(principal, interest, ZERO, interest.total)
