"""Apply the accounting events about debtors: their details and segment, insolvency, and
the delivery status of messages sent to them (see handlers/accounting.py).

A debtor whose details now choose another policy (moved to another segment) has its open
invoices re-planned on that policy in the same transaction (docs/policy.md).
"""

from __future__ import annotations

from datetime import datetime

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from adapters.orm import DebtorRow, InvoiceRow, MessageRow
from handlers import events as ev
from handlers import evidence
from handlers.batching import cache, fast_batch
from handlers.events import Parked
from handlers.planning import cancel_pending, replan_invoice, schedule
from handlers.policy import CLAIM_DECLARATION, MATCH_KEYS, PolicySet

log = structlog.get_logger("relance.accounting")


def debtor_by_id(session: Session, debtor_id: str) -> DebtorRow:
    found = session.get(DebtorRow, debtor_id)
    if found is None:
        raise Parked(f"debtor:{debtor_id}")
    return found


def upsert_debtor(session: Session, data: ev.Debtor, now: datetime, policies: PolicySet) -> DebtorRow:
    batch = fast_batch(session)
    if batch is not None and data.id in batch.debtors:  # looked up and locked for the batch
        row = batch.debtors[data.id]
    else:
        row = session.get(DebtorRow, data.id, with_for_update=True)
    before = None
    if row is None:
        row = DebtorRow(id=data.id, email_bounced=False)
        session.add(row)
        if batch is not None:
            cache(session, batch.debtors, data.id, row)
    else:
        before = _policy_inputs(row)
        if row.email != data.email:
            row.email_bounced = False
    row.name, row.kind, row.email, row.language = data.name, data.kind, data.email, data.language
    row.timezone, row.country = data.timezone, data.address.country
    row.address = data.address.model_dump(exclude_none=True)
    row.siren, row.opt_out, row.segment, row.updated_at = data.siren, data.opt_out, data.segment, now
    if before is not None and before != _policy_inputs(row):
        _replan_open_invoices(session, row, now, policies)
    return row


def _policy_inputs(debtor: DebtorRow) -> tuple[str | None, ...]:
    """What of a debtor chooses its policy (the attributes a segment may match on)."""
    return tuple(getattr(debtor, key, None) for key in MATCH_KEYS)


def _replan_open_invoices(session: Session, debtor: DebtorRow, now: datetime, policies: PolicySet) -> None:
    """The debtor moved to another segment (or may have): its open invoices follow the
    policy that applies to them now, in this transaction (docs/policy.md)."""
    invoices = (
        session.execute(
            select(InvoiceRow)
            .where(InvoiceRow.debtor_id == debtor.id, InvoiceRow.status == "open")
            .order_by(InvoiceRow.id)
            .with_for_update()
        )
        .scalars()
        .all()
    )
    for invoice in invoices:
        replan_invoice(session, invoice, debtor, policies.for_debtor(debtor, invoice.number), now)


def on_debtor_updated(
    session: Session, event: ev.DebtorUpdated, now: datetime, policies: PolicySet
) -> list[str]:
    upsert_debtor(session, event.debtor, now, policies)
    return [f"debtor:{event.debtor.id}"]


def on_insolvency_opened(
    session: Session, event: ev.InsolvencyOpened, now: datetime, policies: PolicySet
) -> list[str]:
    debtor = debtor_by_id(session, event.debtor_id)
    debtor.insolvency_procedure = event.procedure
    debtor.insolvency_judgment_date = event.judgment_date
    frozen = (
        session.execute(
            select(InvoiceRow).where(
                InvoiceRow.debtor_id == debtor.id,
                InvoiceRow.status == "open",
                InvoiceRow.issue_date < event.judgment_date,
            )
        )
        .scalars()
        .all()
    )
    for invoice in frozen:
        cancel_pending(session, invoice.id, f"insolvency ({event.procedure})")
    if frozen:  # the claim-declaration case is opened by the deadline handler, at once
        schedule(session, frozen[0], CLAIM_DECLARATION, "deadline.expired", now)
    return []


def on_delivery_status(
    session: Session, event: ev.DeliveryStatus, now: datetime, policies: PolicySet
) -> list[str]:
    """Record the status as evidence; a bounced e-mail sends the next steps by post."""
    message = session.execute(
        select(MessageRow).where(MessageRow.message_id == event.message_id)
    ).scalar_one_or_none()
    if message is None:
        log.warning("delivery.unknown_message", message_id=event.message_id, status=event.status)
    elif event.status == "bounced" and message.channel == "email":
        debtor = session.get(DebtorRow, message.debtor_id, with_for_update=True)
        if debtor is not None:
            debtor.email_bounced = True
    evidence.append(
        session,
        "delivery.status",
        now,
        {
            "message_id": event.message_id,
            "status": event.status,
            "at": event.at.isoformat(),
            "channel": message.channel if message else None,
            "known_message": message is not None,
        },
        debtor_id=message.debtor_id if message else None,
        message_id=event.message_id,
    )
    return []
