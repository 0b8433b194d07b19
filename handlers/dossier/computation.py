"""The amounts a dossier states: per invoice on the computation day, and on the export day.

They come from ``handlers.amounts.amounts_on``, which reads an invoice's payments through a
session; here the payments are already in the snapshot, so a stand-in answers that one read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, cast

from handlers.amounts import InvoiceAmounts, amounts_on
from handlers.calendar import local_date
from handlers.dossier.data import CaseData, DebtorData, InvoiceData, RecordData
from handlers.money import ZERO, MissingRate
from handlers.policy import PolicySet, RateTable

LIVE = ("open", "handed_over")  # case statuses whose penalties are brought up to date


class _Payments:
    """Stands for the session ``amounts_on`` reads the invoice's movements from.

    Its only read is ``(on_day, amount, kind)`` of every payment of the invoice, which it
    sorts by day itself; the snapshot gives them by day, then by the order they were stored.
    """

    def __init__(self, invoice: InvoiceData) -> None:
        self._rows = [(p.on_day, p.amount, p.kind) for p in invoice.payments]

    def execute(self, _statement: object) -> _Payments:
        return self

    def all(self) -> list[tuple[date, Decimal, str]]:
        return self._rows


def invoice_amounts(
    invoice: InvoiceData, debtor: DebtorData, day: date, policies: PolicySet, rates: RateTable
) -> InvoiceAmounts:
    """What ``invoice`` owes on ``day``, penalties and indemnity included (may raise MissingRate)."""
    return amounts_on(
        cast(Any, _Payments(invoice)),
        cast(Any, invoice),
        cast(Any, debtor),
        day,
        policies.for_debtor(debtor, invoice.number),
        rates,
        with_penalties=True,
    )


@dataclass(frozen=True)
class InvoiceDetail:
    invoice: InvoiceData
    amounts: InvoiceAmounts | None
    problem: str | None  # why the amounts could not be recomputed


def details_on(
    invoices: tuple[InvoiceData, ...], debtor: DebtorData, day: date, policies: PolicySet, rates: RateTable
) -> list[InvoiceDetail]:
    details = []
    for invoice in invoices:
        try:
            details.append(
                InvoiceDetail(invoice, invoice_amounts(invoice, debtor, day, policies, rates), None)
            )
        except MissingRate as exc:
            details.append(InvoiceDetail(invoice, None, str(exc)))
    return details


def computed_on(case: CaseData, debtor: DebtorData, records: tuple[RecordData, ...]) -> date:
    """The day the case's penalties were computed: its last opening / escalation record."""
    if case.kind == "claim_declaration" and debtor.insolvency_judgment_date is not None:
        return debtor.insolvency_judgment_date  # penalties stop at the opening judgment
    opened = [r for r in records if r.case_id == case.id and r.kind in ("case.escalated", "case.opened")]
    return local_date(opened[-1].at if opened else case.opened_at, debtor.timezone)


def live_update(
    case: CaseData,
    invoices: tuple[InvoiceData, ...],
    debtor: DebtorData,
    day: date,
    since: date,
    policies: PolicySet,
    rates: RateTable,
) -> dict[str, Any] | None:
    """What the open invoices owe on the export day: penalties keep running until paid.

    Only for an escalation still open or handed over, exported after its computation day.
    """
    if case.kind != "escalation" or case.status not in LIVE or day <= since:
        return None
    rows: list[dict[str, Any]] = []
    try:
        for invoice in invoices:
            if invoice.status != "open" or invoice.balance <= 0:
                continue
            a = invoice_amounts(invoice, debtor, day, policies, rates)
            rows.append(
                {
                    "number": invoice.number,
                    "balance": a.balance,
                    "late_interest": a.late_interest,
                    "indemnity": a.indemnity,
                    "claimed": a.claimed,
                    "unconfirmed_rates": unconfirmed(a, rates),
                }
            )
    except MissingRate as exc:
        return {"day": day, "problem": str(exc), "invoices": []}
    return {"day": day, "problem": None, "invoices": rows, "total": sum((r["claimed"] for r in rows), ZERO)}


def unconfirmed(amounts: InvoiceAmounts, rates: RateTable) -> list[str]:
    """The half-years of the computation whose rate is not confirmed yet."""
    if amounts.interest is None:
        return []
    flagged = {
        s.half_year
        for s in amounts.interest.segments
        if (entry := rates.rates.get(s.half_year)) is not None and entry.unconfirmed
    }
    return sorted(flagged)


def rate_unconfirmed(half_year: str, rates: RateTable) -> bool:
    return bool((entry := rates.rates.get(half_year)) and entry.unconfirmed)
