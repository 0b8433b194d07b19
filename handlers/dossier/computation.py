"""The amounts a dossier states: per invoice on the computation day, and on the export day.

They come from ``handlers.amounts.amounts_on``, given the payments and credit notes the
dossier's snapshot already holds for each invoice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from handlers.amounts import InvoiceAmounts, amounts_on
from handlers.calendar import local_date
from handlers.dossier.data import CaseData, DebtorData, InvoiceData, RecordData
from handlers.money import ZERO, MissingRate, Movement
from handlers.policy import PolicySet, RateTable

LIVE = ("open", "handed_over")  # case statuses whose penalties are brought up to date


def invoice_amounts(
    invoice: InvoiceData, debtor: DebtorData, day: date, policies: PolicySet, rates: RateTable
) -> InvoiceAmounts:
    """What ``invoice`` owes on ``day``, penalties and indemnity included (may raise MissingRate)."""
    return amounts_on(
        invoice,
        debtor,
        day,
        policies.for_debtor(debtor, invoice.number),
        rates,
        with_penalties=True,
        movements=[Movement(p.on_day, p.amount, p.kind) for p in invoice.payments],
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
    computed = ("case.escalated", "case.opened", "case.factored_out")  # the records that recompute
    opened = [r for r in records if r.case_id == case.id and r.kind in computed]
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
        if (entry := rates.rates.get(s.half_year)) is not None and entry.is_unconfirmed("ecb_rate")
    }
    return sorted(flagged)


def rate_unconfirmed(half_year: str, rates: RateTable) -> bool:
    return bool((entry := rates.rates.get(half_year)) and entry.is_unconfirmed("ecb_rate"))
