"""The dunning store in memory: the reminder path's port without a database.

Held to the same contract suite as ``adapters.dunning_store`` (tests/contract). It keeps
debtors, invoices, planned steps, payments, recorded messages and evidence records in plain
dictionaries; one ``MemoryDunning`` is one store, ``store()`` gives the port on it. Payment
plans are not modelled: an installment reminder is told its plan is unknown, as the SQL
store says of a step whose plan is gone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Container, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from handlers.approval import DRAFT, NOT_SENT, Claim, DraftFacts
from handlers.dunning import DebtorFacts, InvoiceFacts, NewMessage, NewTask, StepFacts
from handlers.evidence import PendingRecord
from handlers.money import ZERO, Movement
from handlers.planning import PENDING

REMINDER_EVENTS = ("invoice.due", "invoice.overdue")


@dataclass
class StoredStep:
    facts: StepFacts
    reason: str | None = None
    done_at: datetime | None = None
    lease_until: datetime | None = None


@dataclass
class MemoryDunning:
    """What the store holds; tests and simulations fill it with ``add_*``."""

    debtors: dict[str, DebtorFacts] = field(default_factory=dict)
    invoices: dict[int, InvoiceFacts] = field(default_factory=dict)
    steps: dict[int, StoredStep] = field(default_factory=dict)
    payments: dict[int, list[Movement]] = field(default_factory=dict)
    messages: dict[int, NewMessage] = field(default_factory=dict)
    statuses: dict[int, str] = field(default_factory=dict)  # message key -> draft, pending ...
    leases: dict[int, datetime | None] = field(default_factory=dict)
    tasks: dict[int, NewTask] = field(default_factory=dict)
    evidence: list[PendingRecord] = field(default_factory=list)
    written: int = 0

    def add_debtor(self, debtor: DebtorFacts) -> None:
        self.debtors[debtor.id] = debtor

    def add_invoice(self, invoice: InvoiceFacts) -> None:
        self.invoices[invoice.id] = invoice

    def add_step(self, step: StepFacts) -> None:
        self.steps[step.id] = StoredStep(step)

    def add_movement(self, invoice_id: int, movement: Movement) -> None:
        self.payments.setdefault(invoice_id, []).append(movement)

    def store(self) -> MemoryDunningStore:
        return MemoryDunningStore(self)


class MemoryDunningStore:
    """``handlers.dunning.DunningStore`` on a ``MemoryDunning``."""

    def __init__(self, data: MemoryDunning) -> None:
        self._data = data

    def step(self, step_id: int) -> StepFacts | None:
        found = self._data.steps.get(step_id)
        return None if found is None else found.facts

    def read_ahead(self, step_ids: Sequence[int], now: datetime) -> None:
        """Nothing to read ahead: every read is in memory."""

    def lock_debtor(self, debtor_id: str) -> DebtorFacts | None:
        return self._data.debtors.get(debtor_id)  # one caller at a time: nothing to lock

    def due_steps(self, debtor_id: str, now: datetime) -> list[tuple[StepFacts, InvoiceFacts]]:
        found = [
            (s.facts, self._data.invoices[s.facts.invoice_id])
            for s in self._data.steps.values()
            if s.facts.debtor_id == debtor_id
            and s.facts.status in PENDING
            and s.facts.event in REMINDER_EVENTS
            and s.facts.due_at <= now
        ]
        return sorted(found, key=lambda pair: (pair[1].due_date, pair[1].number))

    def due_step_batches(
        self, debtor_id: str, now: datetime, invoices: int = 400
    ) -> Iterator[list[tuple[StepFacts, InvoiceFacts]]]:
        after = -1
        while True:  # each batch read as the steps are then, as on SQL
            due = self.due_steps(debtor_id, now)
            ids = sorted({inv.id for _, inv in due if inv.id > after})[:invoices]
            if not ids:
                return
            after = ids[-1]
            wanted = set(ids)
            yield sorted(
                ((st, inv) for st, inv in due if inv.id in wanted), key=lambda pair: (pair[1].id, pair[0].id)
            )

    def reread_step(self, step_id: int) -> StepFacts:
        return self._data.steps[step_id].facts

    def open_invoices(
        self, debtor_id: str, known: Mapping[int, InvoiceFacts] | None = None
    ) -> list[InvoiceFacts]:
        return [i for i in self._data.invoices.values() if i.debtor_id == debtor_id and i.status == "open"]

    def other_open_invoices(self, debtor_id: str, held: Container[int]) -> Iterator[InvoiceFacts]:
        return (i for i in self.open_invoices(debtor_id) if i.id not in held)

    def invoices(self, invoice_ids: Sequence[int]) -> list[InvoiceFacts]:
        return [self._data.invoices[i] for i in invoice_ids if i in self._data.invoices]

    def installment_blocker(self, step_id: int, debtor_id: str) -> str | None:
        return "payment plan unknown"

    def recorded_claims(self, invoice_ids: Iterable[int]) -> set[tuple[int, str, str]]:
        wanted = set(invoice_ids)
        return {
            (invoice_id, step, m.channel)
            for m in self._data.messages.values()
            for invoice_id, step in m.claims
            if invoice_id in wanted
        }

    def messages_on(self, debtor_id: str, day: date) -> list[tuple[str, str | None]]:
        return [
            (m.channel, m.amounts.get("currency"))
            for m in self._data.messages.values()
            if m.debtor_id == debtor_id and m.local_day == day
        ]

    def last_message_day(self, debtor_id: str) -> date | None:
        days = [
            m.local_day
            for key, m in self._data.messages.items()
            if m.debtor_id == debtor_id and self._data.statuses[key] not in NOT_SENT
        ]
        return max(days, default=None)

    def movements(self, invoice_ids: Iterable[int]) -> dict[int, list[Movement]]:
        return {i: list(self._data.payments.get(i, [])) for i in set(invoice_ids)}

    def installment_context(self, step_ids: Sequence[int]) -> dict[str, Any]:
        nothing = {"balance": ZERO, "late_interest": ZERO, "indemnity": ZERO, "claimed": ZERO}
        return {
            "installments": [],
            "plan": {"invoices": [], "remaining": ZERO, "installments_left": 0},
            "totals": nothing,
        }

    def record_message(self, message: NewMessage) -> int:
        if any(m.message_id == message.message_id for m in self._data.messages.values()):
            raise ValueError(f"message {message.message_id} is recorded already")  # a unique key
        key = len(self._data.messages) + 1
        self._data.messages[key] = message
        self._data.statuses[key] = DRAFT if message.draft else "pending"
        self._data.leases[key] = None if message.draft else message.lease_until
        self.finish_steps(message.finishes, message.created_at)
        return key

    def awaiting_drafts(self, invoice_ids: Iterable[int]) -> dict[int, str]:
        wanted = set(invoice_ids)
        found: dict[int, str] = {}
        for key in sorted(self._data.messages):
            if self._data.statuses[key] == DRAFT:
                for invoice_id, _ in self._data.messages[key].claims:
                    if invoice_id in wanted:
                        found.setdefault(invoice_id, self._data.messages[key].message_id)
        return found

    # --- drafts (handlers.approval) -----------------------------------------------------------

    def drafts(self, step: str | None = None) -> list[DraftFacts]:
        found = [
            self._draft_facts(key)
            for key in self._data.messages
            if self._data.statuses[key] == DRAFT and step in (None, self._data.messages[key].step)
        ]
        return sorted(found, key=lambda d: (d.created_at, d.id))

    def draft(self, message_pk: int) -> DraftFacts | None:
        return self._draft_facts(message_pk) if message_pk in self._data.messages else None

    def _draft_facts(self, key: int) -> DraftFacts:
        m = self._data.messages[key]
        claims = sorted(
            (
                Claim(invoice_id, self._data.invoices[invoice_id].number, step)
                for invoice_id, step in m.claims
            ),
            key=lambda c: (c.number, c.step),
        )
        debtor = self._data.debtors.get(m.debtor_id)
        return DraftFacts(
            id=key,
            message_id=m.message_id,
            creditor_id=debtor.creditor_id if debtor else "default",
            debtor_id=m.debtor_id,
            step=m.step,
            channel=m.channel,
            status=self._data.statuses[key],
            subject=m.subject,
            content_sha256=m.content_sha256,
            amounts=dict(m.amounts),
            created_at=m.created_at,
            claims=tuple(claims),
        )

    def lock_invoices(self, invoice_ids: Iterable[int]) -> list[InvoiceFacts]:
        return [self._data.invoices[i] for i in sorted(set(invoice_ids)) if i in self._data.invoices]

    def close_draft(self, message_pk: int, status: str) -> None:
        if self._data.statuses.get(message_pk) == DRAFT:
            self._data.statuses[message_pk] = status

    def release_draft(self, message_pk: int, lease_until: datetime) -> None:
        if self._data.statuses.get(message_pk) == DRAFT:
            self._data.statuses[message_pk] = "pending"
            self._data.leases[message_pk] = lease_until

    def record_task(self, task: NewTask) -> tuple[int, bool]:
        for key, stored in self._data.tasks.items():
            if stored.key == task.key:
                return key, False
        key = len(self._data.tasks) + 1
        self._data.tasks[key] = task
        return key, True

    def skip_step(self, step_id: int, reason: str, now: datetime) -> None:
        self._set(step_id, status="skipped", reason=reason[:300], done_at=now)

    def postpone_step(self, step_id: int, until: datetime) -> None:
        self._set(step_id, status="planned", due_at=until, lease_until=None)

    def postpone_steps(self, step_ids: Iterable[int], until: datetime) -> None:
        for step_id in step_ids:
            self.postpone_step(step_id, until)

    def release_step(self, step_id: int) -> None:
        self._set(step_id, status="planned", lease_until=None)

    def finish_step(self, step_id: int, now: datetime, reason: str | None = None) -> None:
        if reason is None:
            self._set(step_id, status="done", done_at=now)
        else:
            self._set(step_id, status="done", done_at=now, reason=reason[:300])

    def finish_steps(self, step_ids: Iterable[int], now: datetime, reason: str | None = None) -> None:
        for step_id in step_ids:
            self.finish_step(step_id, now, reason)

    def plan_deadline(self, invoice_id: int, step: str, event: str, due_at: datetime) -> None:
        if any(s.facts.invoice_id == invoice_id and s.facts.step == step for s in self._data.steps.values()):
            return
        invoice = self._data.invoices[invoice_id]
        key = max(self._data.steps, default=0) + 1
        self._data.add_step(StepFacts(key, invoice_id, invoice.debtor_id, step, event, "planned", due_at))

    def record_evidence(self, record: PendingRecord) -> None:
        self._data.evidence.append(record)

    def write_evidence(self) -> int:
        written = len(self._data.evidence) - self._data.written
        self._data.written = len(self._data.evidence)
        return written

    def _set(self, step_id: int, **changes: Any) -> None:
        stored = self._data.steps[step_id]
        facts = {k: v for k, v in changes.items() if k in ("status", "due_at")}
        stored.facts = dataclasses.replace(stored.facts, **facts)
        for name in ("reason", "done_at", "lease_until"):
            if name in changes:
                setattr(stored, name, changes[name])
