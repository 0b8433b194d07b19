"""At start-up, re-plan the open invoices whose steps were planned on another policy.

The policy file is read once, when a process starts, so a policy change reaches the store
through this pass, run before the first tick (docs/architecture.md). Open invoices are
read in id order, ``batch_size`` at a time, one transaction each; an invoice whose
recorded key differs from the key of the policy that applies to it now is locked and
re-planned (``handlers.planning.replan_invoice``) in that transaction.

Several schedulers may start at once: an invoice is re-planned only if its key is still
the one read, once it is locked, so each is re-planned once and a second pass finds
nothing. Within a batch the locks are taken with SKIP LOCKED, so a batch never waits while
holding locks; an invoice locked by someone else (a worker sending its reminder) is taken
again afterwards on its own, in a transaction that holds nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from adapters.orm import DebtorRow, InvoiceRow
from adapters.sql_store import SqlStore
from adapters.store import transaction
from adapters.uow import UnitOfWork
from handlers.ladder import policy_key
from handlers.planning import replan_invoice
from handlers.policy import PolicySet

log = structlog.get_logger("relance.scheduler")


@dataclass(frozen=True)
class ReplanPass:
    checked: int  # open invoices read
    stale: int  # planned on another policy (or on an unknown one)
    replanned: int  # whose steps changed


def replan_changed_invoices(
    sessions: sessionmaker[Session], policies: PolicySet, now: datetime, *, batch_size: int = 500
) -> ReplanPass:
    checked = stale = replanned = 0
    after = 0
    while True:
        with transaction(sessions) as session:
            session.scope(None)  # every creditor's invoices; each is re-planned as its creditor's
            rows = _open_invoices(session, after, batch_size)
            if not rows:
                break
            after = rows[-1][0]
            checked += len(rows)
            wanted = {
                invoice_id: key
                for invoice_id, number, key, debtor in rows
                if key != policy_key(policies.for_debtor(debtor, number))
            }
            stale += len(wanted)
            done, busy = _replan(session, wanted, policies, now, skip_locked=True)
            replanned += done
        for invoice_id in busy:
            with transaction(sessions) as session:
                session.scope(None)
                replanned += _replan(session, {invoice_id: wanted[invoice_id]}, policies, now)[0]
    result = ReplanPass(checked, stale, replanned)
    log.info("scheduler.replan_pass", checked=checked, stale=stale, replanned=replanned)
    return result


def _open_invoices(session: Session, after: int, limit: int) -> list[tuple[int, str, str | None, DebtorRow]]:
    query = (
        select(InvoiceRow.id, InvoiceRow.number, InvoiceRow.policy_key, DebtorRow)
        .join(
            DebtorRow,
            (DebtorRow.creditor_id == InvoiceRow.creditor_id) & (DebtorRow.id == InvoiceRow.debtor_id),
        )
        .where(InvoiceRow.status == "open", InvoiceRow.id > after)
        .order_by(InvoiceRow.id)
        .limit(limit)
    )
    return [(row[0], row[1], row[2], row[3]) for row in session.execute(query)]


def _replan(
    session: UnitOfWork,
    wanted: dict[int, str | None],
    policies: PolicySet,
    now: datetime,
    *,
    skip_locked: bool = False,
) -> tuple[int, list[int]]:
    """(invoices whose steps changed, invoices skipped because locked elsewhere)."""
    if not wanted:
        return 0, []
    locked = (
        session.execute(
            select(InvoiceRow)
            .where(InvoiceRow.id.in_(list(wanted)))
            .order_by(InvoiceRow.id)
            .with_for_update(skip_locked=skip_locked)
            .execution_options(populate_existing=True)
        )
        .scalars()
        .all()
    )
    changed = 0
    for invoice in locked:
        if invoice.policy_key != wanted[invoice.id]:
            continue  # re-planned meanwhile (another scheduler, or an event)
        debtor = session.get(DebtorRow, (invoice.creditor_id, invoice.debtor_id))
        if debtor is None:  # pragma: no cover - a foreign key keeps it
            continue
        session.scope(invoice.creditor_id)  # its steps and evidence are its creditor's
        changed += replan_invoice(
            SqlStore(session), invoice, debtor, policies.for_debtor(debtor, invoice.number), now
        )
    session.scope(None)
    busy = sorted(set(wanted) - {invoice.id for invoice in locked})
    return changed, busy
