"""Apply the accounting events about debtors: their details and segment, insolvency, and
the delivery status of messages sent to them (see handlers/accounting.py).

A debtor whose details now choose another policy (moved to another segment) has its open
invoices re-planned on that policy in the same transaction (docs/policy.md).
"""

from __future__ import annotations

from datetime import datetime

import structlog

from handlers import events as ev
from handlers import evidence
from handlers.events import Parked
from handlers.planning import cancel_pending, replan_invoice, schedule
from handlers.policy import CLAIM_DECLARATION, MATCH_KEYS, PolicySet
from handlers.records import DebtorRecord
from handlers.store import Store

log = structlog.get_logger("relance.accounting")


def debtor_by_id(store: Store, debtor_id: str) -> DebtorRecord:
    found = store.debtor(debtor_id)
    if found is None:
        raise Parked(f"debtor:{debtor_id}")
    return found


def upsert_debtor(store: Store, data: ev.Debtor, now: datetime, policies: PolicySet) -> DebtorRecord:
    row = store.debtor(data.id, lock=True)
    before = None
    if row is None:
        row = store.add_debtor(data.id)
    else:
        before = _policy_inputs(row)
        if row.email != data.email:
            row.email_bounced = False
    row.name, row.kind, row.email, row.language = data.name, data.kind, data.email, data.language
    row.timezone, row.country = data.timezone, data.address.country
    row.address = data.address.model_dump(exclude_none=True)
    row.siren, row.opt_out, row.segment, row.updated_at = data.siren, data.opt_out, data.segment, now
    row.merchant = data.merchant
    if before is not None and before != _policy_inputs(row):
        _replan_open_invoices(store, row, now, policies)
    return row


def _policy_inputs(debtor: DebtorRecord) -> tuple[str | None, ...]:
    """What of a debtor chooses its policy (the attributes a segment may match on)."""
    return tuple(getattr(debtor, key, None) for key in MATCH_KEYS)


def _replan_open_invoices(store: Store, debtor: DebtorRecord, now: datetime, policies: PolicySet) -> None:
    """The debtor moved to another segment (or may have): its open invoices follow the
    policy that applies to them now, in this transaction (docs/policy.md)."""
    for invoice in store.open_invoices(debtor.id, lock=True):
        replan_invoice(store, invoice, debtor, policies.for_debtor(debtor, invoice.number), now)


def on_debtor_updated(store: Store, event: ev.DebtorUpdated, now: datetime, policies: PolicySet) -> list[str]:
    upsert_debtor(store, event.debtor, now, policies)
    return [f"debtor:{event.debtor.id}"]


def on_insolvency_opened(
    store: Store, event: ev.InsolvencyOpened, now: datetime, policies: PolicySet
) -> list[str]:
    debtor = debtor_by_id(store, event.debtor_id)
    debtor.insolvency_procedure = event.procedure
    debtor.insolvency_judgment_date = event.judgment_date
    frozen = [i for i in store.open_invoices(debtor.id) if i.issue_date < event.judgment_date]
    for invoice in frozen:
        cancel_pending(store, invoice.id, f"insolvency ({event.procedure})")
    if frozen:  # the claim-declaration case is opened by the deadline handler, at once
        schedule(store, frozen[0], CLAIM_DECLARATION, "deadline.expired", now)
    return []


def on_delivery_status(
    store: Store, event: ev.DeliveryStatus, now: datetime, policies: PolicySet
) -> list[str]:
    """Record the status as evidence; a bounced e-mail sends the next steps by post."""
    message = store.sent_message(event.message_id)
    if message is None:
        log.warning("delivery.unknown_message", message_id=event.message_id, status=event.status)
    elif event.status == "bounced" and message.channel == "email":
        debtor = store.debtor(message.debtor_id, lock=True)
        if debtor is not None:
            debtor.email_bounced = True
    evidence.append(
        store,
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
