"""Keep escalated cases in step with what happens to their invoices after escalation.

A payment or credit note lowers the principal of every live case holding the invoice;
when none of the case's invoices is left to pay the case is stopped: ``paid`` when they
were paid, ``closed`` when some were cancelled or their dispute upheld. Penalties and
indemnities stay as computed when the case was opened; the dossier recomputes them live.
"""

from __future__ import annotations

from datetime import datetime

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from adapters.orm import CaseInvoice, CaseRow, InvoiceRow
from handlers import evidence
from handlers.money import ZERO

log = structlog.get_logger("relance.cases")

LIVE = ("open", "handed_over")


def follow_invoice(session: Session, invoice: InvoiceRow, now: datetime, cause: str) -> None:
    """Update (and stop when nothing is left) every live case that holds ``invoice``."""
    cases = (
        session.execute(
            select(CaseRow)
            .join(CaseInvoice, CaseInvoice.case_id == CaseRow.id)
            .where(CaseInvoice.invoice_id == invoice.id, CaseRow.status.in_(LIVE))
            .with_for_update()
        )
        .scalars()
        .all()
    )
    for case in cases:
        _refresh(session, case, now, cause, invoice.number)


def _refresh(session: Session, case: CaseRow, now: datetime, cause: str, number: str) -> None:
    members = (
        session.execute(
            select(InvoiceRow)
            .join(CaseInvoice, CaseInvoice.invoice_id == InvoiceRow.id)
            .where(CaseInvoice.case_id == case.id)
        )
        .scalars()
        .all()
    )
    owing = [i for i in members if i.status == "open" and i.balance > 0]
    case.principal = sum((i.balance for i in owing), ZERO)
    case.amount_claimed = case.principal + case.late_interest + case.indemnities
    case.updated_at = now
    if not owing:
        case.status = "paid" if all(i.status == "settled" for i in members) else "closed"
    kind = "case.updated" if owing else f"case.{case.status}"
    payload = {
        "action": kind,
        "case_id": case.id,
        "debtor_id": case.debtor_id,
        "invoice_numbers": [number],
        "cause": cause,
        "status": case.status,
        "amount_due": str(case.principal),
        "currency": case.currency,
    }
    evidence.append(
        session, kind, now, payload, debtor_id=case.debtor_id, invoice_numbers=[number], case_id=case.id
    )
    log.info(
        kind,
        case_id=case.id,
        debtor_id=case.debtor_id,
        invoice_number=number,
        cause=cause,
        status=case.status,
        principal=str(case.principal),
    )
