"""What a dossier is made from: one case read from the store, as plain frozen values.

The read side (``adapters/dossier_read.py``) fills these from one transaction; the assembly
(``handlers.dossier.assemble``) turns them into files without touching the store, so it can
be tested with a snapshot built by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from handlers.evidence import ChainCheck


@dataclass(frozen=True)
class CaseData:
    id: int
    debtor_id: str
    kind: str  # escalation | claim_declaration
    status: str
    recommended_procedure: str
    currency: str
    principal: Decimal
    late_interest: Decimal
    indemnities: Decimal
    amount_claimed: Decimal
    opened_at: datetime
    updated_at: datetime
    deadline: date | None = None
    reasons: tuple[str, ...] = ()
    alternatives: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class DebtorData:
    """The debtor; also what the policy set matches on (kind, country, language, segment)."""

    id: str
    name: str
    kind: str  # business | consumer
    address: Mapping[str, str]
    email: str | None = None
    language: str = "fr"
    timezone: str = "Europe/Paris"
    country: str = "FR"
    siren: str | None = None
    segment: str | None = None
    insolvency_procedure: str | None = None
    insolvency_judgment_date: date | None = None
    insolvency_stage: str | None = None  # opened | liquidation | plan | closed
    insolvency_administrator: Mapping[str, Any] | None = None  # who receives the declaration
    merchant: bool | None = None  # None: not said (the procedures and the competent court)


@dataclass(frozen=True)
class PaymentData:
    kind: str  # payment | credit_note | plan_payment
    on_day: date
    amount: Decimal
    reference: str | None = None


@dataclass(frozen=True)
class InvoiceData:
    """An invoice with its payments and credit notes, oldest first."""

    id: int
    number: str
    issue_date: date
    due_date: date
    currency: str
    amount_due: Decimal
    paid: Decimal = Decimal("0.00")
    credited: Decimal = Decimal("0.00")
    status: str = "open"
    late_penalty_rate: Decimal | None = None
    delivered_on: date | None = None
    disputed: bool = False
    ever_disputed: bool = False
    payments: tuple[PaymentData, ...] = ()

    @property
    def balance(self) -> Decimal:
        return self.amount_due - self.paid - self.credited


@dataclass(frozen=True)
class RecordData:
    """One record of the evidence chain, as stored (``payload`` is the canonical JSON text)."""

    seq: int
    at: datetime
    kind: str
    payload: str
    prev_hash: str
    hash: str
    debtor_id: str | None = None
    invoice_numbers: tuple[str, ...] | None = ()
    case_id: int | None = None
    message_id: str | None = None
    version: int = 1  # how its hash is computed (handlers.evidence)
    # version 3: the payload its hash covers (personal values sealed), and the debtor's
    # salt (hexadecimal) when the payload still holds a personal value in cleartext
    sealed_payload: str | None = None
    salt: str | None = None
    creditor_id: str = "default"  # whose chain; version 4 hashes it


@dataclass(frozen=True)
class MessageData:
    """A message about the case's invoices: its exact stored bytes and its evidence records."""

    message_id: str
    channel: str
    step: str
    local_day: date
    recipient: str
    subject: str
    status: str
    content: bytes
    created_at: datetime
    invoice_numbers: tuple[str, ...] = ()  # sorted, distinct
    attempts: int = 0
    sent_at: datetime | None = None
    tracking_id: str | None = None
    last_error: str | None = None
    sent_record: RecordData | None = None  # reminder.sent
    outcomes: tuple[RecordData, ...] = ()  # message.transmitted / message.failed
    statuses: tuple[RecordData, ...] = ()  # delivery.status


@dataclass(frozen=True)
class DossierData:
    """One case and everything its dossier shows, read in one transaction."""

    case: CaseData
    debtor: DebtorData
    invoices: tuple[InvoiceData, ...]  # by due date, then number
    messages: tuple[MessageData, ...]  # oldest first
    records: tuple[RecordData, ...]  # the case's records of the chain, by seq
    check: ChainCheck  # the whole chain recomputed
    head: tuple[int, str] | None = None  # (seq, hash) of the chain head checked against
