"""The store port of the event appliers, planning, payment plans, escalation, cases and
hand-overs: the operations they need, in one unit of work.

A ``Store`` is the transaction a use case runs in, as these modules see it: it hands out
records (``handlers.records``) read in that transaction, locked when asked; makes new ones;
takes the changes the core makes to them; and collects the evidence records and the tasks
to publish after commit. Which rows a query selects and in which order is the contract
(``tests/contract/test_store_port.py``); *what* to do with them stays in the core: the hold rules,
which steps a cancellation spares, which case a note goes to.

Implementations: ``adapters.sql_store.SqlStore`` on a SQL unit of work, and
``adapters.memory_store.MemoryStore``, held to the same contract suite.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Protocol

from handlers.batching import IngestBatch
from handlers.evidence import PendingRecord
from handlers.money import Movement
from handlers.outbox import Outbox
from handlers.records import (
    CaseRecord,
    DebtorRecord,
    HandoverRecord,
    InboxRecord,
    InstallmentRecord,
    InvoiceRecord,
    PaymentRecord,
    PlanRecord,
    StepRecord,
)

PENDING = ("planned", "emitted")
FINISHED = ("done", "skipped", "failed")


@dataclass(frozen=True)
class StepFilter:
    """Which pending steps of an invoice a cancellation takes: ``names`` only when given,
    else every one but those in ``spare`` and those starting with ``spare_prefix``."""

    names: tuple[str, ...] = ()
    spare: tuple[str, ...] = ()
    spare_prefix: str | None = None

    def takes(self, step: str) -> bool:
        if self.names:
            return step in self.names and step not in self.spare
        if step in self.spare:
            return False
        return self.spare_prefix is None or not step.startswith(self.spare_prefix)


@dataclass(frozen=True)
class NewInvoice:
    number: str
    debtor_id: str
    issue_date: date
    due_date: date
    currency: str
    amount_due: Decimal
    late_penalty_rate: Decimal | None
    payment_url: str | None
    delivered_on: date | None
    factored_by: str | None = None


@dataclass(frozen=True)
class NewCase:
    debtor_id: str
    kind: str
    recommended_procedure: str
    reasons: list[str]
    currency: str
    principal: Decimal
    late_interest: Decimal
    indemnities: Decimal
    deadline: date | None
    notes: list[str]

    @property
    def amount_claimed(self) -> Decimal:
        return self.principal + self.late_interest + self.indemnities


@dataclass(frozen=True)
class NewHandover:
    case_id: int
    partner: str
    partner_kind: str
    channel: str
    idempotency_key: str
    lease_until: datetime


@dataclass(frozen=True)
class NewSignal:
    """A signal to deliver to one subscriber: its body is fixed when the fact is recorded."""

    subscriber: str
    signal_type: str
    idempotency_key: str
    payload: str  # the JSON body, sent as is on every attempt
    lease_until: datetime


@dataclass(frozen=True)
class SentMessage:
    """What a delivery status needs of the message it is about."""

    channel: str
    debtor_id: str


class Store(Protocol):
    """One unit of work, as the appliers, planning, plans, escalation, cases and hand-overs
    use it. Records handed out belong to it: change them only inside it."""

    # -- the unit of work ---------------------------------------------------------------

    def record_evidence(self, record: PendingRecord) -> None:
        """Add an evidence record (``handlers.evidence.append``), chained at commit."""

    def write_evidence(self) -> int:
        """Chain and write the records added so far (``handlers.evidence.write_pending``)."""

    def after_commit(self, task: object) -> None:
        """Publish ``task`` once the unit of work has committed."""

    def savepoint(self) -> AbstractContextManager[object]:
        """A block undone alone if it raises: its records, evidence and tasks too."""

    def in_savepoint(self) -> bool:
        """Whether a savepoint is open (a record made now may still be undone)."""

    @property
    def batch(self) -> IngestBatch | None:
        """The ``relance ingest`` batch applied without savepoints in it, if any."""

    def write_mark(self) -> object:
        """A mark of what was written so far (pending changes to stored rows are sent
        first; new rows may wait, counted as written before the mark)."""

    def wrote_since(self, mark: object) -> bool:
        """Whether anything may have been written since ``mark``."""

    # -- debtors and invoices --------------------------------------------------------------

    def debtor(self, debtor_id: str, *, lock: bool = False) -> DebtorRecord | None: ...

    def add_debtor(self, debtor_id: str) -> DebtorRecord:
        """A new debtor with that id and no details yet; the caller fills them."""

    def invoice(self, number: str, *, lock: bool = True) -> InvoiceRecord | None: ...

    def add_invoice(self, new: NewInvoice, now: datetime) -> InvoiceRecord:
        """A new open invoice, nothing paid, its id known."""

    def open_invoices(self, debtor_id: str, *, lock: bool = False) -> list[InvoiceRecord]:
        """The debtor's invoices whose status is ``open``, in id order."""

    def add_payment(
        self,
        *,
        event_id: str,
        invoice_id: int,
        kind: str,
        reference: str | None,
        amount: Decimal,
        on_day: date,
        payment_id: str | None = None,
    ) -> None: ...

    def payment(
        self, invoice_id: int, *, payment_id: str | None = None, credit_note: str | None = None
    ) -> PaymentRecord | None:
        """The invoice's payment of that ``payment_id``, or its credit note of that number
        (the first recorded), reversed or not; None when there is none."""

    def movements(self, invoice_ids: Iterable[int]) -> dict[int, list[Movement]]:
        """The payments and credit notes of the invoices that were not reversed; one
        without any: an empty list."""

    def sent_message(self, message_id: str) -> SentMessage | None: ...

    def message_claims(self, message_id: str) -> list[tuple[str, str]]:
        """The (invoice number, step) a recorded message claims, by invoice number then step;
        none for a message never recorded."""

    # -- planned steps ----------------------------------------------------------------------

    def step(self, step_id: int) -> StepRecord | None: ...

    def step_of(self, invoice_id: int, name: str) -> StepRecord | None: ...

    def add_step(self, invoice_id: int, debtor_id: str, name: str, event: str, due_at: datetime) -> None:
        """A new ``planned`` step (the invoice has none of that name)."""

    def add_steps(self, invoice_id: int, debtor_id: str, steps: Iterable[tuple[str, str, datetime]]) -> None:
        """New ``planned`` steps, each a (name, event, due instant), of an invoice that has
        none of those names: ``add_step`` of each."""

    def steps_of(self, invoice_id: int, events: Sequence[str]) -> list[StepRecord]:
        """The invoice's steps of these events, by due instant then id."""

    def finished_steps(self, invoice_id: int) -> set[str]:
        """The names of the invoice's steps done, skipped or failed."""

    def cancel_pending(self, invoice_id: int, reason: str, which: StepFilter) -> int:
        """Cancel the invoice's planned or emitted steps ``which`` takes; how many."""

    def cancel_pending_soon(self, invoice_id: int, reason: str, which: StepFilter) -> None:
        """``cancel_pending`` when how many does not matter: the store may do it with its
        next write, so long as no read of the steps finds them pending meanwhile."""

    def due_deadlines(self, debtor_id: str, now: datetime) -> list[tuple[StepRecord, InvoiceRecord]]:
        """The debtor's pending ``deadline.expired`` steps due by ``now``, with their
        invoices, by the invoice's due date then number."""

    # -- payment plans ---------------------------------------------------------------------

    def active_plan(self, invoice_id: int, *, lock: bool = False) -> PlanRecord | None:
        """The active plan covering the invoice, if any."""

    def plans_anchored_on(self, invoice_id: int) -> int:
        """How many plans (any status) carry their steps on this invoice."""

    def add_plan(
        self,
        *,
        debtor_id: str,
        event_id: str,
        anchor: InvoiceRecord,
        invoice_ids: Sequence[int],
        now: datetime,
    ) -> PlanRecord:
        """A new active plan covering ``invoice_ids``, in the anchor's currency."""

    def add_installment(
        self, plan_id: int, seq: int, step_stem: str, due_date: date, amount: Decimal
    ) -> InstallmentRecord: ...

    def installments(self, plan_id: int) -> list[InstallmentRecord]:
        """The plan's installments by number, as stored now."""

    def plan_invoices(self, plan_id: int) -> list[InvoiceRecord]:
        """The plan's invoices by due date then number."""

    def plan_with_stem(self, anchor_invoice_id: int, stem: str, *, lock: bool = False) -> PlanRecord | None:
        """The plan anchored on the invoice that has an installment of that step stem."""

    # -- cases ---------------------------------------------------------------------------

    def case(self, case_id: int, *, lock: bool = False) -> CaseRecord | None: ...

    def cases_holding(self, invoice_id: int, statuses: Sequence[str]) -> list[CaseRecord]:
        """The cases of these statuses holding the invoice, locked, by id."""

    def open_cases(self, debtor_id: str) -> list[CaseRecord]:
        """The debtor's cases whose status is ``open``, by id."""

    def add_case(self, new: NewCase, now: datetime) -> CaseRecord:
        """A new open case, its id known; ``amount_claimed`` is the sum of its amounts."""

    def case_invoices(self, case_id: int) -> list[InvoiceRecord]:
        """The case's invoices by due date then number."""

    def add_case_invoices(self, case_id: int, invoice_ids: Iterable[int]) -> None:
        """Put invoices in the case (those not in it yet)."""

    # -- the inbox of accounting events -------------------------------------------------------

    def inbox_digest(self, event_id: str) -> str | None:
        """The content hash of the event of that id already received, if any."""

    def add_inbox(
        self, *, event_id: str, type: str, occurred_at: datetime, raw: str, digest: str, received_at: datetime
    ) -> InboxRecord:
        """The inbox entry of an event, ``applied`` until said otherwise."""

    def parked(self, key: str) -> list[InboxRecord]:
        """The events parked waiting for ``key``, by occurrence then arrival."""

    def applied_raws(self, event_type: str) -> list[str]:
        """The raw text of the applied events of that type, the latest occurred first."""

    def store_rejected(
        self,
        *,
        event_id: str | None,
        raw: str,
        reason: str,
        source: str | None,
        line_no: int | None,
        received_at: datetime,
    ) -> None:
        """Keep a refused event, with why it was refused, for ``relance inbox``."""

    # -- hand-overs ------------------------------------------------------------------------

    def handovers_of(self, case_id: int) -> list[HandoverRecord]: ...

    def handover(self, handover_id: int) -> HandoverRecord | None: ...

    def add_handover(self, new: NewHandover, now: datetime) -> HandoverRecord:
        """A new pending hand-over, no attempt made, its id known."""

    def handovers(self) -> Outbox:
        """The leased outbox of hand-overs, in this unit of work."""

    # -- signals (outbound webhooks) -------------------------------------------------------

    def signal_creditor(self) -> str:
        """The creditor whose facts this unit of work records (signals name it)."""

    def steps_reached(self, debtor_id: str) -> list[tuple[str, str]]:
        """(invoice number, step) of every ``done`` step of the debtor's open invoices, read
        from the database as it is now (the reminder path updates steps by statement)."""

    def subscribers(self, signal_type: str) -> list[str]:
        """The names of the webhook subscribers of ``signal_type`` for this creditor, sorted."""

    def add_signal(self, new: NewSignal, now: datetime) -> int:
        """A new pending signal, no attempt made; its id."""

    def signals(self) -> Outbox:
        """The leased outbox of signals, in this unit of work."""
