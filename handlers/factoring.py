"""Factored invoices (affacturage): the factor who paid the seller collects the invoice in
its own name, subrogated in the seller's rights (Code civil 1346 ff.), so nothing is sent
in the seller's name (docs/policy.md).

An invoice becomes factored, or goes back to the seller, through the ``factored_by`` of
``invoice.issued`` / ``invoice.updated``. The hold itself is ``handlers.holds.factored``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import structlog

from handlers import cases, evidence, holds
from handlers.planning import cancel_pending
from handlers.policy import PolicySet
from handlers.records import InvoiceRecord
from handlers.store import Store

log = structlog.get_logger("relance.factoring")

FACTORED, UNFACTORED = "invoice.factored", "invoice.unfactored"


def follow_factoring(
    store: Store, invoice: InvoiceRecord, before: str | None, now: datetime, policies: PolicySet
) -> None:
    """What changes once an event set the invoice's factor (``before``: the one it had)."""
    if invoice.factored_by == before:
        return
    if invoice.factored_by is not None:
        _assigned(store, invoice, before, now, policies)
    else:
        _returned(store, invoice, before, now)


def _assigned(
    store: Store, invoice: InvoiceRecord, before: str | None, now: datetime, policies: PolicySet
) -> None:
    """The factor collects now: the pending steps are cancelled (the prescription warning
    stays) and the invoice leaves the amounts of its live cases, each saying who collects."""
    reason = holds.factored_hold(invoice)
    cancelled = cancel_pending(store, invoice.id, reason)
    left = cases.leave_for_factor(store, invoice, now, policies)
    facts = {"factored_by": invoice.factored_by, "previous_factor": before, "steps_cancelled": cancelled}
    _record(store, FACTORED, invoice, now, reason, facts, [c.id for c in left])


def _returned(store: Store, invoice: InvoiceRecord, before: str | None, now: datetime) -> None:
    """Back with the seller (the factor gave it back): dunning resumes, as after a rejected
    dispute; the caller re-plans it."""
    reason = f"invoice no longer factored (was collected by {before}): dunning resumes"
    _record(store, UNFACTORED, invoice, now, reason, {"previous_factor": before}, [])


def _record(
    store: Store,
    kind: str,
    invoice: InvoiceRecord,
    now: datetime,
    reason: str,
    facts: Mapping[str, object],
    case_ids: list[int],
) -> None:
    payload = {
        "action": kind,
        "debtor_id": invoice.debtor_id,
        "invoice_numbers": [invoice.number],
        **facts,
        "case_ids": case_ids,
        "reason": reason,
    }
    evidence.append(
        store,
        kind,
        now,
        payload,
        debtor_id=invoice.debtor_id,
        invoice_numbers=[invoice.number],
        case_id=case_ids[0] if case_ids else None,
    )
    log.info(kind, debtor_id=invoice.debtor_id, invoice_number=invoice.number, case_ids=case_ids, **facts)
