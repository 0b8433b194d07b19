"""The ports of the reminder path: the dunning store and the message composer.

``handlers.reminders`` decides and writes through these only. The store hands out plain
frozen values (``StepFacts``, ``InvoiceFacts``, ``DebtorFacts``) read under the debtor's
lock and takes back what the decision says, step by step, in the caller's unit of work; it
is also the evidence sink of that unit of work (``handlers.evidence.append``). Its SQL
implementation is ``adapters.dunning_store``, its in-memory one ``adapters.memory_dunning``.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol

from handlers.evidence import PendingRecord
from handlers.money import Movement
from handlers.policy import Creditor
from handlers.statement import Statement


@dataclass(frozen=True, slots=True)
class StepFacts:
    """A planned step as stored."""

    id: int
    invoice_id: int
    debtor_id: str
    step: str
    event: str
    status: str
    due_at: datetime


@dataclass(frozen=True, slots=True)
class InvoiceFacts:
    """An invoice as the reminder path reads it (amounts, holds, messages)."""

    id: int
    number: str
    debtor_id: str
    status: str
    currency: str
    amount_due: Decimal
    paid: Decimal
    credited: Decimal
    issue_date: date
    due_date: date
    late_penalty_rate: Decimal | None = None
    payment_url: str | None = None
    disputed: bool = False
    in_payment_plan: bool = False
    paused_until: date | None = None
    ever_disputed: bool = False  # a dispute was raised, even if since rejected
    delivered_on: date | None = None  # the claim's origin (insolvency), else its issue date
    factored_by: str | None = None  # the factor who collects it
    hold_reason: str | None = None  # held by a person (handlers.holds)
    held_until: date | None = None

    @property
    def balance(self) -> Decimal:
        return self.amount_due - self.paid - self.credited


@dataclass(frozen=True)
class DebtorFacts:
    """A debtor as the reminder path reads it; ``segment`` and the rest pick its policy."""

    id: str
    name: str
    kind: str
    language: str = "fr"
    timezone: str = "Europe/Paris"
    country: str = "FR"
    email: str | None = None
    email_bounced: bool = False
    phone: str | None = None
    address: dict[str, Any] = field(default_factory=dict)
    segment: str | None = None
    opt_out: bool = False
    insolvency_procedure: str | None = None
    insolvency_judgment_date: date | None = None
    hold_reason: str | None = None  # held by a person (handlers.holds)
    held_until: date | None = None
    creditor_id: str = "default"  # whose debtor: Message-IDs of two creditors never meet


@dataclass(frozen=True)
class NewMessage:
    """A message to record with its exact bytes, and the (invoice id, step) it claims."""

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
    amounts: dict[str, str]
    lease_until: datetime
    created_at: datetime
    claims: tuple[tuple[int, str], ...]
    draft: bool = False  # held for a person's approval (``handlers.approval``): not transmitted
    # the steps the message finishes as it is recorded: done at ``created_at``, their reason
    # kept, their leases ended, as ``DunningStore.finish_steps`` would (the steps it claims)
    finishes: tuple[int, ...] = ()


@dataclass(frozen=True)
class NewTask:
    """A task for a person (a call, another manual action) and the steps it does.

    ``key`` is stable for a creditor, a kind and the (invoice number, step) it covers: the
    store records a task of the same key once."""

    key: str
    debtor_id: str
    kind: str  # call | task
    step: str
    phone: str | None
    invoice_numbers: tuple[str, ...]
    amounts: dict[str, str]  # balance per currency, e.g. {"EUR": "1200.00"}
    due_on: date
    created_at: datetime
    claims: tuple[tuple[int, str], ...]  # (invoice id, step)


class DunningStore(Protocol):
    """What sending the steps of the ladder needs of the store, in one unit of work."""

    def step(self, step_id: int) -> StepFacts | None: ...

    def read_ahead(self, step_ids: Sequence[int], now: datetime) -> None:
        """These steps are about to be handled in turn in this unit of work, at ``now``: the
        store may read at once what each debtor's first step would read. Nothing changes in
        what the reads give: each debtor's read-ahead serves its first step only, and any
        other read is made when asked, as without."""

    def lock_debtor(self, debtor_id: str) -> DebtorFacts | None:
        """The debtor, locked until the unit of work ends (None: unknown)."""

    def due_steps(self, debtor_id: str, now: datetime) -> list[tuple[StepFacts, InvoiceFacts]]:
        """The debtor's pending reminder steps due by ``now``, their invoices locked, in
        order of due date then number."""

    def due_step_batches(
        self, debtor_id: str, now: datetime, invoices: int = 400
    ) -> Iterator[list[tuple[StepFacts, InvoiceFacts]]]:
        """The steps of ``due_steps`` in batches of at most ``invoices`` whole invoices, in
        order of invoice id, each invoice's steps in id order; each batch's invoices locked
        before its steps are read. A batch never splits an invoice's steps."""

    def reread_step(self, step_id: int) -> StepFacts:
        """The step as stored now (another worker may have finished it)."""

    def open_invoices(
        self, debtor_id: str, known: Mapping[int, InvoiceFacts] | None = None
    ) -> list[InvoiceFacts]:
        """The debtor's open invoices; those in ``known`` (read under the same lock) as given."""

    def other_open_invoices(self, debtor_id: str, held: Container[int]) -> Iterator[InvoiceFacts]:
        """The debtor's open invoices whose id is not in ``held``, one at a time."""

    def invoices(self, invoice_ids: Sequence[int]) -> list[InvoiceFacts]:
        """The facts of these invoices, read again (the debtor is locked, and its invoices
        with due steps since they were read), in the order given; an unknown id is left out.
        The messages of a catch-up read their invoices this way, a batch at a time, rather
        than keep every invoice read with the due steps until they are built."""

    def installment_blocker(self, step_id: int, debtor_id: str) -> str | None:
        """Why the payment plan of an installment reminder forbids it now (None: it does not)."""

    def recorded_claims(self, invoice_ids: Iterable[int]) -> set[tuple[int, str, str]]:
        """The (invoice id, step, channel) already in a recorded message."""

    def messages_on(self, debtor_id: str, day: date) -> list[tuple[str, str | None]]:
        """The (channel, currency) of the debtor's messages of its local ``day``; a record
        without its currency gives None."""

    def last_message_day(self, debtor_id: str) -> date | None:
        """The latest local day of a message recorded for the debtor, whatever its channel,
        currency, step or delivery (None: no message yet)."""

    def movements(self, invoice_ids: Iterable[int]) -> dict[int, list[Movement]]:
        """The payments and credit notes of the invoices, read at once."""

    def installment_context(self, step_ids: Sequence[int]) -> dict[str, Any]:
        """What the installment templates show of the plans of these steps."""

    def record_message(self, message: NewMessage) -> int:
        """Store the message and its claims, and finish the steps it ``finishes``
        (``finish_steps(finishes, created_at)``); its key, for the delivery. A ``draft`` is
        stored with the status ``draft`` and no lease: no delivery ever takes it."""

    def awaiting_drafts(self, invoice_ids: Iterable[int]) -> dict[int, str]:
        """Of these invoices, those claimed by a draft awaiting approval: invoice id ->
        the draft's Message-ID."""

    def record_task(self, task: NewTask) -> tuple[int, bool]:
        """Store the task unless one of its key exists; its id, and whether it is new."""

    def skip_step(self, step_id: int, reason: str, now: datetime) -> None: ...

    def postpone_step(self, step_id: int, until: datetime) -> None: ...

    def postpone_steps(self, step_ids: Iterable[int], until: datetime) -> None:
        """``postpone_step`` of each step, written as few statements as the store can."""

    def release_step(self, step_id: int) -> None:
        """Back to planned, without lease: a later emission brings it again."""

    def finish_step(self, step_id: int, now: datetime, reason: str | None = None) -> None: ...

    def finish_steps(self, step_ids: Iterable[int], now: datetime, reason: str | None = None) -> None:
        """``finish_step`` of each step, with one reason, written as few statements as the
        store can (a catch-up finishes 100 000 steps of one debtor at once)."""

    def plan_deadline(self, invoice_id: int, step: str, event: str, due_at: datetime) -> None:
        """Plan ``step`` for the invoice unless it has one already."""

    def record_evidence(self, record: PendingRecord) -> None:
        """Add an evidence record to the unit of work (``handlers.evidence.append``)."""

    def write_evidence(self) -> int:
        """Chain and write the records added so far (``handlers.evidence.write_pending``)."""


class Composer(Protocol):
    """The exact bytes of a message: an e-mail (RFC 5322) or a letter (PDF)."""

    def email(
        self,
        *,
        sender: str,
        recipient: str,
        subject: str,
        body_text: str,
        message_id: str,
        at: datetime,
        step: str,
        body_html: str | None = None,
        statement: Statement | None = None,
        reply_to: str | None = None,
    ) -> bytes:
        """With a ``statement``, the e-mail carries it as a CSV attachment; with
        ``reply_to``, answers go there rather than to the sender."""

    def letter(
        self,
        *,
        creditor: Creditor,
        recipient_lines: list[str],
        subject: str,
        body_text: str,
        reference: str,
        at: datetime,
        place_date: str,
        registered: bool,
        statement: Statement | None = None,
    ) -> bytes:
        """With a ``statement``, the letter ends with it as an annex."""
