"""Messages held for a person's approval: drafts, approved, rejected or withdrawn.

A step with ``requires_approval`` has its message composed and recorded like any other
(exact bytes, SHA-256 in the evidence: ``message.drafted``) but with the status ``draft``,
which no delivery ever takes. A person then acts on it (``relance approve``, ``relance
reject``), named in the evidence:

- approved: the draft is checked again with the hold rules the decision uses
  (``handlers.holds.chase_hold``); when every invoice it claims may still be chased, it
  becomes ``pending`` and follows the normal delivery path (``message.approved``); when one
  may not (paid, disputed, held, written off ...), it is closed as ``withdrawn`` with that
  reason (``message.withdrawn``) and nothing leaves;
- rejected: closed as ``rejected`` with the person's reason (``message.rejected``).

Either way the steps it claims stay done: a step is drafted once, never again. A formal
notice's escalation deadline is planned when the notice is approved, from that day; a
notice rejected or withdrawn plans none.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Protocol

import structlog

from handlers import evidence, holds
from handlers.calendar import local_date
from handlers.context import Context
from handlers.dunning import DebtorFacts, DunningStore, InvoiceFacts
from handlers.messages import DeliverMessage
from handlers.policy import FORMAL_NOTICE
from handlers.reminders import plan_escalation  # the send path plans it the same way

log = structlog.get_logger("relance.approval")

DRAFT = "draft"
APPROVED = "pending"  # an approved draft is a message like any other: pending, then sent
REJECTED = "rejected"
WITHDRAWN = "withdrawn"
NOT_SENT = (DRAFT, REJECTED, WITHDRAWN)  # recorded, never to leave (unless a draft is approved)


@dataclass(frozen=True, slots=True)
class Claim:
    """One (invoice, step) a draft claims."""

    invoice_id: int
    number: str
    step: str


@dataclass(frozen=True)
class DraftFacts:
    """A recorded message as the approval reads it."""

    id: int
    message_id: str
    creditor_id: str
    debtor_id: str
    step: str
    channel: str
    status: str
    subject: str
    content_sha256: str
    amounts: dict[str, str]
    created_at: datetime
    claims: tuple[Claim, ...]

    @property
    def invoice_numbers(self) -> list[str]:
        return sorted({c.number for c in self.claims})

    def age_days(self, now: datetime) -> int:
        """Whole days since it was drafted."""
        return max((now - self.created_at).days, 0)


class ApprovalStore(DunningStore, Protocol):
    """The dunning store, and what approving needs of it, in one unit of work."""

    def drafts(self, step: str | None = None) -> list[DraftFacts]:
        """The drafts awaiting approval (of ``step`` only, when given), oldest first."""

    def draft(self, message_pk: int) -> DraftFacts | None:
        """Message ``message_pk`` whatever its status, locked until the unit of work ends."""

    def lock_invoices(self, invoice_ids: Iterable[int]) -> list[InvoiceFacts]:
        """These invoices as stored now, locked, in id order."""

    def close_draft(self, message_pk: int, status: str) -> None:
        """A draft ends without leaving: ``rejected`` or ``withdrawn``."""

    def release_draft(self, message_pk: int, lease_until: datetime) -> None:
        """An approved draft becomes ``pending``, its first attempt leased until ``lease_until``."""


class NotAwaiting(LookupError):
    """No message of that id, or one no longer awaiting approval."""


@dataclass(frozen=True)
class Outcome:
    """What became of one draft: ``approved`` (``task`` delivers it), ``withdrawn`` or ``rejected``."""

    draft: DraftFacts
    status: str
    reason: str | None = None
    task: DeliverMessage | None = None


# --- the rule ---------------------------------------------------------------------------


def approval_hold(
    invoices: Sequence[holds.InvoiceState],
    debtor: holds.DebtorState,
    today: date,
    minimum_for: Callable[[holds.InvoiceState], Decimal],
) -> str | None:
    """Why an approved draft may not leave on ``today``, or None when it may: the first
    invoice it claims (by number) that the decision's own rule (``chase_hold``) would not
    chase now; ``minimum_for`` gives an invoice's minimum balance (its policy's, its currency's)."""
    for invoice in sorted(invoices, key=lambda i: i.number):
        reason = holds.chase_hold(invoice, debtor, today, minimum_for(invoice))
        if reason is not None:
            return f"{invoice.number}: {reason}"
    return None


# --- the use cases ----------------------------------------------------------------------


def awaiting(store: ApprovalStore, draft_id: int) -> DraftFacts:
    """Draft ``draft_id``, locked; NotAwaiting when there is none awaiting approval."""
    found = store.draft(draft_id)
    if found is None:
        raise NotAwaiting(f"no draft {draft_id}")
    if found.status != DRAFT:
        said = {APPROVED: "approved", "sent": "approved and sent"}.get(found.status, found.status)
        raise NotAwaiting(f"draft {draft_id} is no longer awaiting approval ({said})")
    return found


def approve(
    store: ApprovalStore, draft_id: int, by: str, now: datetime, ctx: Context, *, publishing: bool = True
) -> Outcome:
    """Approve draft ``draft_id`` for ``by``, in the caller's unit of work.

    Re-checked first: withdrawn with the reason when an invoice may no longer be chased.
    Approved, it is pending with its first attempt leased to the task returned, to publish
    after commit; without a publisher (``publishing`` false) the lease is already over, so
    the scheduler's next tick emits it. Either way the compare-and-set on its attempts lets
    one transmission through.
    """
    draft = awaiting(store, draft_id)
    debtor = store.lock_debtor(draft.debtor_id)
    if debtor is None:  # erased meanwhile: nobody to send it to
        return _close(store, draft, WITHDRAWN, by, "debtor unknown", now)
    invoices = store.lock_invoices({c.invoice_id for c in draft.claims})
    today = local_date(now, debtor.timezone)
    minimum = {i.number: ctx.policy_for(debtor, i.number).money.minimum_for(i.currency) for i in invoices}
    reason = approval_hold(invoices, debtor, today, lambda invoice: minimum[invoice.number])
    if reason is not None:
        return _close(store, draft, WITHDRAWN, by, reason, now)
    store.release_draft(draft.id, now + ctx.lease if publishing else now)
    _plan_escalations(store, draft, invoices, debtor, today, ctx)
    _record(store, "message.approved", draft, by, None, now)
    return Outcome(draft, "approved", None, DeliverMessage(draft.id, 0))


def reject(store: ApprovalStore, draft_id: int, by: str, reason: str, now: datetime) -> Outcome:
    """Reject draft ``draft_id`` for ``by`` with ``reason``: nothing leaves, its steps stay done."""
    return _close(store, awaiting(store, draft_id), REJECTED, by, reason, now)


def _close(
    store: ApprovalStore, draft: DraftFacts, status: str, by: str, reason: str, now: datetime
) -> Outcome:
    store.close_draft(draft.id, status)
    _record(store, f"message.{status}", draft, by, reason, now)
    return Outcome(draft, status, reason)


def _plan_escalations(
    store: ApprovalStore,
    draft: DraftFacts,
    invoices: list[InvoiceFacts],
    debtor: DebtorFacts,
    today: date,
    ctx: Context,
) -> None:
    """A formal notice approved: its deadline, counted from today (planned once per invoice)."""
    noticed = {c.invoice_id for c in draft.claims if c.step == FORMAL_NOTICE}
    for invoice in invoices:
        if invoice.id in noticed:
            plan_escalation(store, invoice, debtor, today, ctx.policy_for(debtor, invoice.number))


def _record(
    store: ApprovalStore, kind: str, draft: DraftFacts, by: str, reason: str | None, now: datetime
) -> None:
    numbers = draft.invoice_numbers
    payload = {
        "action": kind,
        "step": draft.step,
        "channel": draft.channel,
        "message_id": draft.message_id,
        "content_sha256": draft.content_sha256,
        "by": by,
        "debtor_id": draft.debtor_id,
        "invoice_numbers": numbers,
    }
    if reason is not None:
        payload["reason"] = reason
    evidence.append(
        store,
        kind,
        now,
        payload,
        debtor_id=draft.debtor_id,
        invoice_numbers=numbers,
        message_id=draft.message_id,
    )
    log.info(
        kind,
        draft_id=draft.id,
        message_id=draft.message_id,
        debtor_id=draft.debtor_id,
        step=draft.step,
        by=by,
        reason=reason,
    )
