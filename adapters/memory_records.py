"""The records of the memory store (``adapters.memory_store``): plain dataclasses with the
attributes and defaults of the SQL rows (``adapters.orm``), so that they fit the protocols of
``handlers.records``. The core changes them by setting attributes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from handlers.money import ZERO

# what a record made without it is given for a column the caller is to fill (add_debtor)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(eq=False, kw_only=True)
class Debtor:
    id: str
    name: str
    kind: str
    email: str | None = None
    phone: str | None = None
    language: str = "fr"
    timezone: str = "Europe/Paris"
    country: str = "FR"
    address: dict[str, Any] = field(default_factory=dict)
    siren: str | None = None
    opt_out: bool = False
    segment: str | None = None
    email_bounced: bool = False
    insolvency_procedure: str | None = None
    insolvency_judgment_date: date | None = None
    insolvency_stage: str | None = None
    insolvency_administrator: dict[str, Any] | None = None
    insolvency_closed_on: date | None = None
    merchant: bool | None = None
    hold_reason: str | None = None
    held_until: date | None = None
    updated_at: datetime


@dataclass(eq=False, kw_only=True)
class Invoice:
    id: int
    number: str
    debtor_id: str
    issue_date: date
    due_date: date
    currency: str
    amount_due: Decimal
    paid: Decimal = ZERO
    credited: Decimal = ZERO
    late_penalty_rate: Decimal | None = None
    payment_url: str | None = None
    delivered_on: date | None = None
    status: str = "open"
    disputed: bool = False
    ever_disputed: bool = False
    paused_until: date | None = None
    in_payment_plan: bool = False
    policy_key: str | None = None
    factored_by: str | None = None
    hold_reason: str | None = None
    held_until: date | None = None
    created_at: datetime
    updated_at: datetime

    @property
    def balance(self) -> Decimal:
        return self.amount_due - self.paid - self.credited


@dataclass(eq=False, kw_only=True)
class Payment:
    id: int
    event_id: str
    invoice_id: int
    kind: str  # payment | credit_note
    reference: str | None = None
    amount: Decimal
    on_day: date
    payment_id: str | None = None
    reversed_on: date | None = None


@dataclass(eq=False, kw_only=True)
class Step:
    id: int
    invoice_id: int
    debtor_id: str
    step: str
    event: str
    due_at: datetime
    status: str = "planned"
    lease_until: datetime | None = None
    emit_count: int = 0
    done_at: datetime | None = None
    reason: str | None = None


@dataclass(eq=False, kw_only=True)
class Message:
    """A recorded message; ``claims`` are its (invoice id, step) pairs (``message_items``)."""

    id: int
    message_id: str
    debtor_id: str
    channel: str
    step: str
    local_day: date
    recipient: str
    subject: str
    body_text: str
    content: bytes
    content_sha256: str
    amounts: dict[str, Any] = field(default_factory=dict)
    status: str = "pending"
    attempts: int = 0
    lease_until: datetime | None = None
    last_error: str | None = None
    tracking_id: str | None = None
    created_at: datetime
    sent_at: datetime | None = None
    record_due: bool = False  # sent, its message.transmitted record not written yet
    claims: tuple[tuple[int, str], ...] = ()


@dataclass(eq=False, kw_only=True)
class InboxEntry:
    id: int
    event_id: str
    type: str
    occurred_at: datetime
    raw: str
    content_sha256: str
    status: str  # applied | parked
    waiting_for: str | None = None
    received_at: datetime
    applied_at: datetime | None = None


@dataclass(eq=False, kw_only=True)
class Rejected:
    id: int
    event_id: str | None = None
    raw: str
    reason: str
    source: str | None = None
    line_no: int | None = None
    received_at: datetime
    replayed_at: datetime | None = None


@dataclass(eq=False, kw_only=True)
class Processed:
    message_id: str
    actor: str
    processed_at: datetime


@dataclass(eq=False, kw_only=True)
class Case:
    id: int
    debtor_id: str
    kind: str  # escalation | claim_declaration
    status: str = "open"
    recommended_procedure: str
    reasons: list[str] = field(default_factory=list)
    alternatives: list[str] = field(default_factory=list)
    currency: str
    principal: Decimal
    late_interest: Decimal
    indemnities: Decimal
    amount_claimed: Decimal
    deadline: date | None = None
    notes: list[str] = field(default_factory=list)
    opened_at: datetime
    updated_at: datetime


@dataclass(eq=False, kw_only=True)
class CaseInvoice:
    id: int
    case_id: int
    invoice_id: int


@dataclass(eq=False, kw_only=True)
class Handover:
    id: int
    case_id: int
    partner: str
    partner_kind: str
    channel: str  # email | webhook
    idempotency_key: str
    status: str = "pending"
    attempts: int = 0
    lease_until: datetime | None = None
    last_error: str | None = None
    response_code: int | None = None
    dossier_sha256: str | None = None
    created_at: datetime
    delivered_at: datetime | None = None


@dataclass(eq=False, kw_only=True)
class Signal:
    id: int
    subscriber: str
    signal_type: str
    idempotency_key: str
    payload: str
    status: str = "pending"
    attempts: int = 0
    lease_until: datetime | None = None
    last_error: str | None = None
    response_code: int | None = None
    created_at: datetime
    delivered_at: datetime | None = None


@dataclass(eq=False, kw_only=True)
class Plan:
    id: int
    debtor_id: str
    event_id: str
    anchor_invoice_id: int
    currency: str
    status: str = "active"
    agreed_at: datetime
    ended_at: datetime | None = None
    reason: str | None = None


@dataclass(eq=False, kw_only=True)
class PlanInvoice:
    id: int
    plan_id: int
    invoice_id: int


@dataclass(eq=False, kw_only=True)
class Installment:
    id: int
    plan_id: int
    seq: int
    step_stem: str
    due_date: date
    amount: Decimal
    paid: Decimal = ZERO
    status: str = "open"
