"""What an invoice owes on a given day: balance, penalties per half-year, indemnity."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from adapters.orm import DebtorRow, InvoiceRow, PaymentRow
from handlers.money import (
    ZERO,
    Interest,
    MissingRate,
    Movement,
    impute_interest_first,
    late_interest,
)
from handlers.policy import Policy, RateTable

log = structlog.get_logger("relance.amounts")


@dataclass(frozen=True)
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


def rate_function(invoice: InvoiceRow, policy: Policy, rates: RateTable):
    """Annual penalty rate per half-year: contractual, else ECB + the policy's margin."""

    def rate_for(half_year: str) -> Decimal:
        entry = rates.rates.get(half_year)
        if invoice.late_penalty_rate is not None:
            if (
                entry
                and entry.legal_rate_professional is not None
                and invoice.late_penalty_rate < 3 * entry.legal_rate_professional
            ):
                log.warning(
                    "rate.below_legal_floor",
                    invoice_number=invoice.number,
                    half_year=half_year,
                    rate=str(invoice.late_penalty_rate),
                    floor=str(3 * entry.legal_rate_professional),
                )
            return invoice.late_penalty_rate
        if entry is None:
            raise MissingRate(half_year)
        if entry.unconfirmed:
            log.warning("rate.unconfirmed", half_year=half_year, source=entry.source)
        return entry.ecb_rate + policy.money.penalty_margin

    return rate_for


def amounts_on(
    session: Session,
    invoice: InvoiceRow,
    debtor: DebtorRow,
    day: date,
    policy: Policy,
    rates: RateTable,
    *,
    with_penalties: bool,
) -> InvoiceAmounts:
    """Amounts of ``invoice`` on ``day``.

    For a business debtor, penalties run from the day after the due date and payments are
    imputed on them first (per the policy), so the principal is the same at every step;
    penalties and the indemnity are only returned ``with_penalties``.
    """
    balance = invoice.balance
    penalties_run = (
        debtor.kind == "business"
        and day > invoice.due_date
        and invoice.currency in policy.money.penalty_currencies
    )
    if not penalties_run:
        return InvoiceAmounts(balance, ZERO, ZERO, None, None)
    movements = [
        Movement(on, amount, kind)
        for on, amount, kind in session.execute(
            select(PaymentRow.on_day, PaymentRow.amount, PaymentRow.kind).where(
                PaymentRow.invoice_id == invoice.id
            )
        ).all()
    ]
    until = day
    if debtor.insolvency_judgment_date is not None:
        until = min(until, debtor.insolvency_judgment_date)
    rate_for = rate_function(invoice, policy, rates)
    if policy.money.payment_imputation == "interest_first":
        imputed = impute_interest_first(invoice.amount_due, invoice.due_date, until, movements, rate_for)
        balance, interest, owed = max(imputed.principal, ZERO), imputed.interest, imputed.interest_due
        interest_paid = imputed.interest_paid
    else:

        def balance_on(d: date) -> Decimal:
            return invoice.amount_due - sum((m.amount for m in movements if m.day < d), ZERO)

        interest = late_interest(
            invoice.due_date, until, balance_on, rate_for, [m.day + timedelta(days=1) for m in movements]
        )
        owed, interest_paid = interest.total, ZERO
    if not with_penalties:  # penalties run and payments are imputed, but are not stated
        return InvoiceAmounts(balance, ZERO, ZERO, None, None, interest_paid)
    distinct = {s.rate for s in interest.segments}
    judgment = debtor.insolvency_judgment_date
    due_after_judgment = judgment is not None and invoice.due_date >= judgment
    # D441-5: no indemnity for an invoice falling due on or after an opening judgment
    indemnity = policy.money.recovery_indemnity if balance > 0 and not due_after_judgment else ZERO
    return InvoiceAmounts(
        balance, owed, indemnity, distinct.pop() if len(distinct) == 1 else None, interest, interest_paid
    )
