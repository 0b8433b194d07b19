"""The stored records the core reads and changes, as the core sees them.

Each is a protocol of plain attributes: the SQL store hands out its mapped rows
(``adapters.orm``), the memory store plain dataclasses (``adapters.memory_store``); both
fit. The core changes a record by setting its attributes, inside the unit of work that
handed it out; the store makes those changes part of the transaction. New records are made
by the store (``handlers.store.Store.add_*``), never constructed by the core.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol


class DebtorRecord(Protocol):
    id: str
    name: str
    kind: str  # business | consumer | public
    email: str | None
    phone: str | None
    language: str
    timezone: str
    country: str
    address: dict[str, Any]
    siren: str | None
    opt_out: bool
    segment: str | None
    email_bounced: bool
    insolvency_procedure: str | None
    insolvency_judgment_date: date | None
    insolvency_stage: str | None  # opened | liquidation | plan | closed
    insolvency_administrator: dict[str, Any] | None  # who receives the claim declaration
    insolvency_closed_on: date | None
    merchant: bool | None  # None: the producer did not say
    hold_reason: str | None  # debtor.held: every invoice paused (handlers.holds), no legal effect
    held_until: date | None  # the hold's last day (None: until released)
    updated_at: datetime


class InvoiceRecord(Protocol):
    id: int
    number: str
    debtor_id: str
    issue_date: date
    due_date: date
    currency: str
    amount_due: Decimal
    paid: Decimal
    credited: Decimal
    late_penalty_rate: Decimal | None
    payment_url: str | None
    delivered_on: date | None
    status: str  # open | settled | cancelled | closed
    disputed: bool
    ever_disputed: bool
    paused_until: date | None
    in_payment_plan: bool
    policy_key: str | None  # handlers.ladder.policy_key of the policy its steps were planned on
    factored_by: str | None  # the factor the invoice was assigned to: it collects, not us
    hold_reason: str | None  # invoice.held: paused by a person (handlers.holds), no legal effect
    held_until: date | None  # the hold's last day (None: until released)
    created_at: datetime
    updated_at: datetime

    @property
    def balance(self) -> Decimal: ...


class PaymentRecord(Protocol):
    """A payment or credit note of an invoice; one reversed stays, out of the amounts."""

    id: int
    event_id: str
    invoice_id: int
    kind: str  # payment | plan_payment | credit_note
    reference: str | None  # a credit note's number
    payment_id: str | None  # the payment's own id, unique per invoice when given
    amount: Decimal
    on_day: date
    reversed_on: date | None  # payment.reversed / credit_note.cancelled (None: it stands)


class StepRecord(Protocol):
    """One planned step of one invoice (planned -> emitted -> done | skipped | cancelled | failed)."""

    id: int
    invoice_id: int
    debtor_id: str
    step: str
    event: str
    due_at: datetime
    status: str
    lease_until: datetime | None
    emit_count: int
    done_at: datetime | None
    reason: str | None


class CaseRecord(Protocol):
    """An escalated case: one debtor's unpaid invoices of one currency, for a person or partner."""

    id: int
    debtor_id: str
    kind: str  # escalation | claim_declaration
    status: str  # open | handed_over | paid | closed
    recommended_procedure: str
    reasons: list[str]
    alternatives: list[str]
    currency: str
    principal: Decimal
    late_interest: Decimal
    indemnities: Decimal
    amount_claimed: Decimal
    deadline: date | None
    notes: list[str]
    opened_at: datetime
    updated_at: datetime


class PlanRecord(Protocol):
    """A payment plan (active -> completed | broken); its steps live on its anchor invoice."""

    id: int
    debtor_id: str
    event_id: str
    anchor_invoice_id: int
    currency: str
    status: str
    agreed_at: datetime
    ended_at: datetime | None
    reason: str | None


class InstallmentRecord(Protocol):
    id: int
    plan_id: int
    seq: int
    step_stem: str
    due_date: date
    amount: Decimal
    paid: Decimal
    status: str  # open | paid


class InboxRecord(Protocol):
    """An accepted accounting event (applied | parked | rejected once applicable)."""

    id: int
    event_id: str
    type: str
    occurred_at: datetime
    raw: str
    content_sha256: str
    status: str
    waiting_for: str | None
    received_at: datetime
    applied_at: datetime | None


class HandoverRecord(Protocol):
    """A case handed to a partner; its delivery state is the leased outbox's."""

    id: int
    case_id: int
    partner: str
    partner_kind: str
    channel: str  # email | webhook
    idempotency_key: str
    status: str  # pending | delivered | failed | cancelled
    attempts: int
    lease_until: datetime | None
    last_error: str | None
