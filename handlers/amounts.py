"""What an invoice owes on a given day: balance, penalties per half-year, indemnity.

Pure: the caller loads the invoice's money movements (payments, credit notes, plan
payments) and passes them; ``penalties_run`` says whether they are needed at all, so a
caller only reads them for the invoices where penalties run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Protocol

import structlog

from handlers.holds import born_before
from handlers.money import (
    ZERO,
    Interest,
    MissingRate,
    Movement,
    half_year_of,
    impute_interest_first,
    impute_principal_first,
)
from handlers.policy import HalfYearRate, Policy, RateTable

log = structlog.get_logger("relance.amounts")

PENALTY_KINDS = ("business", "public")  # debtors who owe late-payment penalties and the 40 €


class InvoiceFigures(Protocol):
    """The fields of an invoice the amounts read (a stored invoice, a dossier's copy)."""

    @property
    def number(self) -> str: ...
    @property
    def currency(self) -> str: ...
    @property
    def amount_due(self) -> Decimal: ...
    @property
    def balance(self) -> Decimal: ...
    @property
    def due_date(self) -> date: ...
    @property
    def late_penalty_rate(self) -> Decimal | None: ...
    @property
    def issue_date(self) -> date: ...
    @property
    def delivered_on(self) -> date | None: ...


class DebtorFigures(Protocol):
    """The fields of a debtor the amounts read."""

    @property
    def kind(self) -> str: ...
    @property
    def insolvency_judgment_date(self) -> date | None: ...


@dataclass(frozen=True, slots=True)
class InvoiceAmounts:
    balance: Decimal
    late_interest: Decimal
    indemnity: Decimal
    rate: Decimal | None  # the single rate when only one applies (for display)
    interest: Interest | None
    interest_paid: Decimal = ZERO  # part of the payments imputed on penalties (1343-1)

    @property
    def claimed(self) -> Decimal:
        return self.balance + self.late_interest + self.indemnity

    @property
    def penalties(self) -> Decimal:
        """The claim beside the principal: penalties (L441-10) and the indemnity (D441-5)."""
        return self.late_interest + self.indemnity


def rate_function(invoice: InvoiceFigures, policy: Policy, rates: RateTable):
    """Annual penalty rate per half-year: contractual, else ECB + the policy's margin."""

    def rate_for(half_year: str) -> Decimal:
        entry = rates.rates.get(half_year)
        if invoice.late_penalty_rate is not None:
            floor = legal_floor(entry)
            if floor is not None and invoice.late_penalty_rate < floor:
                log.warning(
                    "rate.below_legal_floor",
                    invoice_number=invoice.number,
                    half_year=half_year,
                    rate=str(invoice.late_penalty_rate),
                    floor=str(floor),
                    unconfirmed=bool(entry and entry.is_unconfirmed("legal_rate_other")),
                )
            return invoice.late_penalty_rate
        if entry is None:
            raise MissingRate(half_year)
        if entry.is_unconfirmed("ecb_rate"):
            log.warning("rate.unconfirmed", half_year=half_year, source=entry.source)
        return entry.ecb_rate + policy.money.penalty_margin

    return rate_for


def legal_floor(entry: HalfYearRate | None) -> Decimal | None:
    """The lowest contractual penalty rate allowed in a half-year: 3 x its legal rate of
    "other cases" (C. com. L441-10 II); None when the table does not give that rate."""
    if entry is None or entry.legal_rate_other is None:
        return None
    return 3 * entry.legal_rate_other


def public_rate_function(
    invoice: InvoiceFigures, policy: Policy, rates: RateTable
) -> Callable[[str], Decimal]:
    """The rate owed by a public-sector debtor (Code de la commande publique R2192-31): the
    ECB rate in force on the first day of the half-year in which interest started to run,
    plus ``public_penalty_margin`` (8 points), for the whole delay whatever later half-years
    bring. A contractual rate does not replace it (the rate is set by decree)."""
    started = half_year_of(invoice.due_date + timedelta(days=1))
    entry = rates.rates.get(started)
    if entry is None:
        raise MissingRate(started)
    if entry.is_unconfirmed("ecb_rate"):
        log.warning("rate.unconfirmed", half_year=started, source=entry.source)
    rate = entry.ecb_rate + policy.money.public_penalty_margin
    return lambda _half_year: rate


def indemnity_owed(invoice: InvoiceFigures, debtor: DebtorFigures, policy: Policy) -> Decimal:
    """The D441-5 recovery indemnity of a business invoice paid late (or not yet paid).

    A claim born before an opening judgment owes it only if it was already late before the
    judgment day (from then on it may not be paid outside the procedure, L622-7); a claim
    born after the judgment owes it as any other (L622-17).
    """
    judgment = debtor.insolvency_judgment_date
    if judgment is not None and born_before(invoice, judgment):
        last_day = judgment - timedelta(days=1)  # the last day interest runs (L622-28)
        if invoice.due_date >= last_day:  # not one day late before the judgment
            return ZERO
    return policy.money.recovery_indemnity


def interest_until(invoice: InvoiceFigures, debtor: DebtorFigures, day: date) -> date:
    """The last day penalties run when counted on ``day``.

    The opening judgment stops interest on the claims born before it (C. com. L622-28); it
    takes effect at 0 h on its day, so the day before it is the last day counted. A claim
    born after it runs on as any other (L622-17).
    """
    judgment = debtor.insolvency_judgment_date
    if judgment is not None and born_before(invoice, judgment):
        return min(day, judgment - timedelta(days=1))
    return day


def penalties_run(invoice: InvoiceFigures, debtor: DebtorFigures, day: date, policy: Policy) -> bool:
    """Whether penalties run on ``invoice`` on ``day``: only then do its movements count.

    They run against businesses (L441-10) and public-sector debtors (R2192-31), never
    against consumers, who owe legal interest only once a court or a demand says so.
    """
    return (
        debtor.kind in PENALTY_KINDS
        and day > invoice.due_date
        and invoice.currency in policy.money.penalty_currencies
    )


def amounts_on(
    invoice: InvoiceFigures,
    debtor: DebtorFigures,
    day: date,
    policy: Policy,
    rates: RateTable,
    *,
    with_penalties: bool,
    movements: Sequence[Movement],
) -> InvoiceAmounts:
    """Amounts of ``invoice`` on ``day``.

    For a business debtor, penalties run from the day after the due date on the principal
    still unpaid each day. Under ``principal_first`` (the default) payments and credit notes
    reduce the principal and the penalties are a separate claim beside it; under
    ``interest_first`` (Code civil 1343-1) payments pay accrued penalties first. Either way
    the principal is the same at every step; penalties and the indemnity are only returned
    ``with_penalties``. ``movements`` are the invoice's payments and credit notes; they are
    only read when penalties run (``penalties_run``).
    """
    balance = invoice.balance
    if not penalties_run(invoice, debtor, day, policy):
        return InvoiceAmounts(balance, ZERO, ZERO, None, None)
    until = interest_until(invoice, debtor, day)
    rate_for = (public_rate_function if debtor.kind == "public" else rate_function)(invoice, policy, rates)
    if policy.money.payment_imputation == "interest_first":
        imputed = impute_interest_first(invoice.amount_due, invoice.due_date, until, movements, rate_for)
        balance, interest, owed = max(imputed.principal, ZERO), imputed.interest, imputed.interest_due
        interest_paid = imputed.interest_paid
    else:
        imputed = impute_principal_first(invoice.amount_due, invoice.due_date, until, movements, rate_for)
        interest, owed, interest_paid = imputed.interest, imputed.interest_due, ZERO
    if not with_penalties:  # penalties run and payments are imputed, but are not stated
        return InvoiceAmounts(balance, ZERO, ZERO, None, None, interest_paid)
    distinct = {s.rate for s in interest.segments}
    indemnity = indemnity_owed(invoice, debtor, policy) if balance > 0 else ZERO
    return InvoiceAmounts(
        balance, owed, indemnity, distinct.pop() if len(distinct) == 1 else None, interest, interest_paid
    )


def last_movement_day(movements: Sequence[Movement]) -> date | None:
    """The day of the latest payment or credit note: the last day the principal ran late."""
    return max((m.day for m in movements), default=None)


@dataclass(frozen=True)
class OwedBeside:
    """What is still owed on an invoice whose principal is paid: the separate claim."""

    late_interest: Decimal  # penalties (L441-10) up to the day of the last movement
    indemnity: Decimal  # recovery indemnity (D441-5)
    principal_left: Decimal = ZERO  # under interest_first: principal 1343-1 leaves unpaid
    paid_beyond: Decimal = ZERO  # money received beyond the principal, counted against the claim

    @property
    def amount_owed(self) -> Decimal:
        return max(self.principal_left + self.late_interest + self.indemnity - self.paid_beyond, ZERO)


def owed_beside_principal(
    invoice: InvoiceFigures,
    debtor: DebtorFigures,
    policy: Policy,
    rates: RateTable,
    movements: Sequence[Movement],
) -> OwedBeside | None:
    """Penalties and indemnity still owed on an invoice whose principal is paid, or None
    when nothing is (paid on time, no penalty for this debtor or currency, or money received
    beyond the principal covers them).

    Penalties run until the day of the last payment or credit note, that day included.
    """
    paid_on = last_movement_day(movements)
    if paid_on is None or paid_on <= invoice.due_date:
        return None
    found = amounts_on(invoice, debtor, paid_on, policy, rates, with_penalties=True, movements=movements)
    if found.interest is None:  # no penalty runs for this debtor or currency
        return None
    # the principal being paid does not cancel the indemnity of an invoice paid late
    indemnity = found.indemnity if found.balance > 0 else indemnity_owed(invoice, debtor, policy)
    owed = OwedBeside(found.late_interest, indemnity, max(found.balance, ZERO), max(-invoice.balance, ZERO))
    return owed if owed.amount_owed > 0 else None
