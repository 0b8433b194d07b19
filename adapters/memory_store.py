"""The store port (``handlers.store.Store``) in memory, with a unit of work around it.

It sits beside ``adapters.sql_store``, not under ``tests/``, because it is a full
implementation of the port, held to the same contract suite (tests/contract/test_store_port.py),
and usable wherever a database is not wanted (unit tests of the core, simulations).

- ``MemoryData`` holds the tables: plain dictionaries of mutable records keyed by id (ids
  are given at creation, 1, 2, 3… per table), the evidence records, the tasks not yet
  taken, the refused events and the broker messages processed. The records are
  dataclasses with the attributes and defaults of the SQL rows (``adapters.orm``), so they
  fit the protocols of ``handlers.records``; the core changes them by setting attributes.
- ``MemoryStore(data)`` answers the port's queries with the selection and order its
  docstrings state, as ``SqlStore`` does. ``lock=`` is a no-op (one unit of work at a time
  holds the data); there is never an ingest batch.
- ``savepoint()`` and a unit of work undo alike: they snapshot every table and the
  attributes of every record on entry and, if the block raises, put the tables back and
  the attributes back *into the same objects* (a record handed out stays the record), and
  drop the evidence and tasks added since. A snapshot costs a copy of the data: fine for
  tests and simulations, not for millions of rows.
- ``handovers()`` and the unit of work's ``messages()`` are leased outboxes over the records
  themselves (``RecordOutbox``, the semantics of ``adapters.memory_outbox`` on attributes):
  what the outbox does shows on ``store.handover(id)`` and the other way round.
- ``MemoryUnitsOfWork(data)`` is ``handlers.ports.UnitsOfWork``: ``with units() as uow:``
  holds the data's lock for the block, commits when it ends normally and puts everything
  back as it was when it raises.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from adapters.memory_outbox import LeasedRows
from adapters.memory_records import (
    EPOCH,
    Case,
    CaseInvoice,
    Debtor,
    Handover,
    InboxEntry,
    Installment,
    Invoice,
    Message,
    Payment,
    Plan,
    PlanInvoice,
    Processed,
    Rejected,
    Signal,
    Step,
)
from handlers.approval import NOT_SENT
from handlers.batching import IngestBatch
from handlers.events import DEFAULT_CREDITOR
from handlers.evidence import PendingRecord
from handlers.money import Movement
from handlers.outbox import Item, Kind
from handlers.ports import mark_sent_in_a_unit, markings_one_at_a_time
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
from handlers.store import (
    FINISHED,
    PENDING,
    NewCase,
    NewHandover,
    NewInvoice,
    NewSignal,
    SentMessage,
    StepFilter,
)

if TYPE_CHECKING:
    from handlers.ports import UnitsOfWork
    from handlers.store import Store
    from handlers.webhooks import Webhooks


REASON_LIMIT = 300  # the width of ``planned_steps.reason``

# -- the tables --------------------------------------------------------------------------


@dataclass(eq=False)
class MemoryData:
    """Every table, in memory; one ``MemoryData`` is one database."""

    debtors: dict[str, Debtor] = field(default_factory=dict)
    invoices: dict[int, Invoice] = field(default_factory=dict)
    payments: dict[int, Payment] = field(default_factory=dict)
    steps: dict[int, Step] = field(default_factory=dict)
    messages: dict[int, Message] = field(default_factory=dict)
    inbox: dict[int, InboxEntry] = field(default_factory=dict)
    rejected: dict[int, Rejected] = field(default_factory=dict)
    processed: dict[str, Processed] = field(default_factory=dict)
    cases: dict[int, Case] = field(default_factory=dict)
    case_invoices: dict[int, CaseInvoice] = field(default_factory=dict)
    handovers: dict[int, Handover] = field(default_factory=dict)
    signals: dict[int, Signal] = field(default_factory=dict)
    plans: dict[int, Plan] = field(default_factory=dict)
    plan_invoices: dict[int, PlanInvoice] = field(default_factory=dict)
    installments: dict[int, Installment] = field(default_factory=dict)
    evidence: list[PendingRecord] = field(default_factory=list)
    tasks: list[object] = field(default_factory=list)  # to publish, not taken yet
    ids: dict[str, int] = field(default_factory=dict)  # the last id given, per table
    written: int = 0  # how many of ``evidence`` were counted by a write_evidence
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    webhooks: Webhooks | None = None  # the subscribers of signals (``handlers.webhooks``)

    def tables(self) -> tuple[dict[Any, Any], ...]:
        return (
            self.debtors,
            self.invoices,
            self.payments,
            self.steps,
            self.messages,
            self.inbox,
            self.rejected,
            self.processed,
            self.cases,
            self.case_invoices,
            self.handovers,
            self.signals,
            self.plans,
            self.plan_invoices,
            self.installments,
        )

    def new_id(self, table: str) -> int:
        self.ids[table] = self.ids.get(table, 0) + 1
        return self.ids[table]

    def add_message(
        self,
        *,
        message_id: str,
        debtor_id: str,
        channel: str,
        created_at: datetime = EPOCH,
        claims: Iterable[tuple[int, str]] = (),
        **columns: Any,
    ) -> Message:
        """Record a message as the send path would (tests, simulations); ``columns`` give
        the other attributes of ``Message``, blank when not given."""
        _refuse_duplicate(any(m.message_id == message_id for m in self.messages.values()), message_id)
        blanks: dict[str, Any] = {
            "step": "",
            "local_day": created_at.date(),
            "recipient": "",
            "subject": "",
            "body_text": "",
            "content": b"",
            "content_sha256": "",
        }
        message = Message(
            id=self.new_id("messages"),
            message_id=message_id,
            debtor_id=debtor_id,
            channel=channel,
            created_at=created_at,
            claims=tuple(claims),
            **(blanks | columns),
        )
        self.messages[message.id] = message
        return message


def _refuse_duplicate(taken: bool, key: object) -> None:
    """What a unique constraint does on SQL, at once."""
    if taken:
        raise ValueError(f"{key!r} is stored already (a unique key)")


# -- undoing a block -------------------------------------------------------------------------


def _copied(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """A record's attributes, its lists and dicts copied (the core may change them in place)."""
    return {k: copy.copy(v) if isinstance(v, list | dict) else v for k, v in attributes.items()}


@dataclass
class _Snapshot:
    """The data as it was: each table's records and each record's attributes."""

    tables: list[tuple[dict[Any, Any], dict[Any, Any]]]
    records: list[tuple[object, dict[str, Any]]]
    ids: dict[str, int]
    evidence: int
    tasks: int
    written: int

    @classmethod
    def of(cls, data: MemoryData) -> _Snapshot:
        tables = [(table, dict(table)) for table in data.tables()]
        records = [(r, _copied(vars(r))) for _, saved in tables for r in saved.values()]
        return cls(tables, records, dict(data.ids), len(data.evidence), len(data.tasks), data.written)

    def restore(self, data: MemoryData) -> None:
        for table, saved in self.tables:
            table.clear()
            table.update(saved)
        for record, attributes in self.records:  # in place: a record handed out stays valid
            vars(record).clear()
            vars(record).update(attributes)
        data.ids.clear()
        data.ids.update(self.ids)
        del data.evidence[self.evidence :]
        del data.tasks[self.tasks :]
        data.written = min(self.written, len(data.evidence))


@contextmanager
def undone_if_raises(data: MemoryData) -> Iterator[None]:
    """A block whose changes to ``data`` are all put back if it raises."""
    snapshot = _Snapshot.of(data)
    try:
        yield
    except BaseException:
        snapshot.restore(data)
        raise


# -- the leased outboxes, on the records ---------------------------------------------------


class _OutboxRow(Protocol):
    id: int
    status: str
    attempts: int
    lease_until: datetime | None
    last_error: str | None


@dataclass(frozen=True)
class _Shape:
    """Which attributes of a kind's records an item carries (as ``adapters.outbox.Table``)."""

    done_at: str
    details: tuple[str, ...]
    claim_details: tuple[str, ...] = ()


SHAPES: Mapping[Kind, _Shape] = {
    "messages": _Shape(
        "sent_at",
        ("message_id", "channel", "debtor_id", "content_sha256"),
        ("recipient", "subject", "content"),
    ),
    "handovers": _Shape(
        "delivered_at", ("case_id", "partner", "partner_kind", "channel", "idempotency_key", "response_code")
    ),
    "signals": _Shape(
        "delivered_at", ("subscriber", "signal_type", "idempotency_key", "response_code"), ("payload",)
    ),
}


class RecordOutbox(LeasedRows):
    """``handlers.outbox.Outbox`` on the message or hand-over records of a ``MemoryData``:
    the operations of ``adapters.memory_outbox.LeasedRows``, on the records themselves."""

    def __init__(self, data: MemoryData, kind: Kind) -> None:
        self.data = data
        self.kind = kind
        self._shape = SHAPES[kind]

    @property
    def _rows(self) -> Mapping[int, _OutboxRow]:
        rows: Mapping[Kind, Mapping[int, _OutboxRow]] = {
            "messages": self.data.messages,
            "handovers": self.data.handovers,
            "signals": self.data.signals,
        }
        return rows[self.kind]

    def _lock(self) -> AbstractContextManager[object]:
        return self.data.lock

    def _set(self, row: _OutboxRow, changes: Mapping[str, object]) -> None:
        for name, value in changes.items():
            setattr(row, name, value)

    def _settle(self, row: _OutboxRow, now: datetime) -> None:
        setattr(row, self._shape.done_at, now)

    def _done_at(self, row: _OutboxRow) -> datetime | None:
        done_at: datetime | None = getattr(row, self._shape.done_at)
        return done_at

    def _tracking_id(self, row: _OutboxRow) -> object:
        return getattr(row, "tracking_id", None)

    def _item(self, row: _OutboxRow, *, claimed: bool = False) -> Item:
        names = self._shape.details + (self._shape.claim_details if claimed else ())
        details = {name: getattr(row, name) for name in names}
        return Item(row.id, row.status, row.attempts, row.lease_until, row.last_error, details)


class MemoryMessages(RecordOutbox):
    """The outbox of messages (``handlers.delivery.Messages``), with the fall-back to post."""

    def __init__(self, data: MemoryData) -> None:
        super().__init__(data, "messages")

    def fall_back_to_post(self, item_id: int, now: datetime) -> int:
        """As ``adapters.outbox.SqlMessages.fall_back_to_post``: the debtor's e-mail is marked
        bounced and the message's steps done are planned again, now."""
        message = self.data.messages.get(item_id)
        if message is None:
            return 0
        debtor = self.data.debtors.get(message.debtor_id)
        if debtor is not None:
            debtor.email_bounced = True
        for invoice_id, name in message.claims:
            for step in self.data.steps.values():
                if (step.invoice_id, step.step, step.status) == (invoice_id, name, "done"):
                    step.status, step.due_at, step.lease_until = "planned", now, None
                    step.reason = "e-mail refused: sent by post"
        return len(message.claims)


# -- the store port -----------------------------------------------------------------------


class MemoryStore:
    """``handlers.store.Store`` on a ``MemoryData``."""

    def __init__(self, data: MemoryData) -> None:
        self.data = data
        self._savepoints = 0
        self._writes = 0

    # -- the unit of work ---------------------------------------------------------------

    def record_evidence(self, record: PendingRecord) -> None:
        self.data.evidence.append(record)

    def write_evidence(self) -> int:
        """How many records were added since the last call (they are in the data already)."""
        written = len(self.data.evidence) - self.data.written
        self.data.written = len(self.data.evidence)
        return written

    def after_commit(self, task: object) -> None:
        self.data.tasks.append(task)

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        self._savepoints += 1
        try:
            with undone_if_raises(self.data):
                yield
        finally:
            self._savepoints -= 1

    def in_savepoint(self) -> bool:
        return self._savepoints > 0

    @property
    def batch(self) -> IngestBatch | None:
        return None

    def write_mark(self) -> object:
        return self._writes

    def wrote_since(self, mark: object) -> bool:
        """Always True: changes made through attributes are not counted."""
        return True

    def _new_id(self, table: str) -> int:
        self._writes += 1
        return self.data.new_id(table)

    # -- debtors and invoices --------------------------------------------------------------

    def debtor(self, debtor_id: str, *, lock: bool = False) -> DebtorRecord | None:
        return self.data.debtors.get(debtor_id)

    def add_debtor(self, debtor_id: str) -> DebtorRecord:
        _refuse_duplicate(debtor_id in self.data.debtors, debtor_id)
        self._writes += 1
        debtor = Debtor(id=debtor_id, name="", kind="", updated_at=EPOCH)
        self.data.debtors[debtor_id] = debtor
        return debtor

    def invoice(self, number: str, *, lock: bool = True) -> InvoiceRecord | None:
        return next((i for i in self.data.invoices.values() if i.number == number), None)

    def add_invoice(self, new: NewInvoice, now: datetime) -> InvoiceRecord:
        _refuse_duplicate(self.invoice(new.number) is not None, new.number)
        invoice = Invoice(id=self._new_id("invoices"), **asdict(new), created_at=now, updated_at=now)
        self.data.invoices[invoice.id] = invoice
        return invoice

    def open_invoices(self, debtor_id: str, *, lock: bool = False) -> list[InvoiceRecord]:
        found = [i for i in self.data.invoices.values() if i.debtor_id == debtor_id and i.status == "open"]
        return sorted(found, key=lambda i: i.id)

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
    ) -> None:
        _refuse_duplicate(any(p.event_id == event_id for p in self.data.payments.values()), event_id)
        _refuse_duplicate(
            payment_id is not None
            and any(
                p.invoice_id == invoice_id and p.payment_id == payment_id for p in self.data.payments.values()
            ),
            f"{invoice_id}/{payment_id}",
        )
        payment = Payment(
            id=self._new_id("payments"),
            event_id=event_id,
            invoice_id=invoice_id,
            kind=kind,
            reference=reference,
            amount=amount,
            on_day=on_day,
            payment_id=payment_id,
        )
        self.data.payments[payment.id] = payment

    def payment(
        self, invoice_id: int, *, payment_id: str | None = None, credit_note: str | None = None
    ) -> PaymentRecord | None:
        for p in sorted(self.data.payments.values(), key=lambda p: p.id):
            if p.invoice_id != invoice_id:
                continue
            if payment_id is not None and p.payment_id == payment_id and p.kind != "credit_note":
                return p
            if payment_id is None and p.kind == "credit_note" and p.reference == credit_note:
                return p
        return None

    def movements(self, invoice_ids: Iterable[int]) -> dict[int, list[Movement]]:
        found: dict[int, list[Movement]] = {i: [] for i in set(invoice_ids)}
        for p in sorted(self.data.payments.values(), key=lambda p: p.id):
            if p.invoice_id in found and p.reversed_on is None:
                found[p.invoice_id].append(Movement(p.on_day, p.amount, p.kind))
        return found

    def sent_message(self, message_id: str) -> SentMessage | None:
        found = next((m for m in self.data.messages.values() if m.message_id == message_id), None)
        return None if found is None else SentMessage(found.channel, found.debtor_id)

    def message_claims(self, message_id: str) -> list[tuple[str, str]]:
        found = next((m for m in self.data.messages.values() if m.message_id == message_id), None)
        claims = found.claims if found is not None else ()
        return sorted((self.data.invoices[invoice_id].number, step) for invoice_id, step in claims)

    # -- planned steps ----------------------------------------------------------------------

    def step(self, step_id: int) -> StepRecord | None:
        return self.data.steps.get(step_id)

    def step_of(self, invoice_id: int, name: str) -> StepRecord | None:
        steps = self.data.steps.values()
        return next((s for s in steps if s.invoice_id == invoice_id and s.step == name), None)

    def add_steps(self, invoice_id: int, debtor_id: str, steps: Iterable[tuple[str, str, datetime]]) -> None:
        for name, event, due_at in steps:
            self.add_step(invoice_id, debtor_id, name, event, due_at)

    def add_step(self, invoice_id: int, debtor_id: str, name: str, event: str, due_at: datetime) -> None:
        _refuse_duplicate(self.step_of(invoice_id, name) is not None, (invoice_id, name))
        step = Step(
            id=self._new_id("steps"),
            invoice_id=invoice_id,
            debtor_id=debtor_id,
            step=name,
            event=event,
            due_at=due_at,
        )
        self.data.steps[step.id] = step

    def _steps(self, invoice_id: int) -> list[Step]:
        return [s for s in self.data.steps.values() if s.invoice_id == invoice_id]

    def steps_of(self, invoice_id: int, events: Sequence[str]) -> list[StepRecord]:
        found = [s for s in self._steps(invoice_id) if s.event in events]
        return sorted(found, key=lambda s: (s.due_at, s.id))

    def finished_steps(self, invoice_id: int) -> set[str]:
        return {s.step for s in self._steps(invoice_id) if s.status in FINISHED}

    def cancel_pending(self, invoice_id: int, reason: str, which: StepFilter) -> int:
        taken = [s for s in self._steps(invoice_id) if s.status in PENDING and which.takes(s.step)]
        for step in taken:
            step.status, step.reason = "cancelled", reason[:REASON_LIMIT]
        return len(taken)

    def cancel_pending_soon(self, invoice_id: int, reason: str, which: StepFilter) -> None:
        self.cancel_pending(invoice_id, reason, which)

    def due_deadlines(self, debtor_id: str, now: datetime) -> list[tuple[StepRecord, InvoiceRecord]]:
        due = [
            (s, self.data.invoices[s.invoice_id])
            for s in self.data.steps.values()
            if s.debtor_id == debtor_id
            and s.status in PENDING
            and s.event == "deadline.expired"
            and s.due_at <= now
        ]
        ordered = sorted(due, key=lambda pair: (pair[1].due_date, pair[1].number, pair[0].id))
        return [(step, invoice) for step, invoice in ordered]

    # -- payment plans ---------------------------------------------------------------------

    def _plans(self, ids: Iterable[int]) -> list[Plan]:
        return sorted((self.data.plans[i] for i in set(ids)), key=lambda p: p.id)

    def active_plan(self, invoice_id: int, *, lock: bool = False) -> PlanRecord | None:
        covering = (
            link.plan_id for link in self.data.plan_invoices.values() if link.invoice_id == invoice_id
        )
        return next((p for p in self._plans(covering) if p.status == "active"), None)

    def plans_anchored_on(self, invoice_id: int) -> int:
        return sum(1 for p in self.data.plans.values() if p.anchor_invoice_id == invoice_id)

    def add_plan(
        self,
        *,
        debtor_id: str,
        event_id: str,
        anchor: InvoiceRecord,
        invoice_ids: Sequence[int],
        now: datetime,
    ) -> PlanRecord:
        _refuse_duplicate(any(p.event_id == event_id for p in self.data.plans.values()), event_id)
        _refuse_duplicate(len(set(invoice_ids)) != len(invoice_ids), list(invoice_ids))
        plan = Plan(
            id=self._new_id("plans"),
            debtor_id=debtor_id,
            event_id=event_id,
            anchor_invoice_id=anchor.id,
            currency=anchor.currency,
            agreed_at=now,
        )
        self.data.plans[plan.id] = plan
        for invoice_id in invoice_ids:
            link = PlanInvoice(id=self._new_id("plan_invoices"), plan_id=plan.id, invoice_id=invoice_id)
            self.data.plan_invoices[link.id] = link
        return plan

    def add_installment(
        self, plan_id: int, seq: int, step_stem: str, due_date: date, amount: Decimal
    ) -> InstallmentRecord:
        taken = any(i.plan_id == plan_id and i.seq == seq for i in self.data.installments.values())
        _refuse_duplicate(taken, (plan_id, seq))
        installment = Installment(
            id=self._new_id("installments"),
            plan_id=plan_id,
            seq=seq,
            step_stem=step_stem,
            due_date=due_date,
            amount=amount,
        )
        self.data.installments[installment.id] = installment
        return installment

    def installments(self, plan_id: int) -> list[InstallmentRecord]:
        found = [i for i in self.data.installments.values() if i.plan_id == plan_id]
        return sorted(found, key=lambda i: i.seq)

    def plan_invoices(self, plan_id: int) -> list[InvoiceRecord]:
        links = self.data.plan_invoices.values()
        return _by_due_date(self.data.invoices[link.invoice_id] for link in links if link.plan_id == plan_id)

    def plan_with_stem(self, anchor_invoice_id: int, stem: str, *, lock: bool = False) -> PlanRecord | None:
        having = (i.plan_id for i in self.data.installments.values() if i.step_stem == stem)
        return next((p for p in self._plans(having) if p.anchor_invoice_id == anchor_invoice_id), None)

    # -- cases ---------------------------------------------------------------------------

    def case(self, case_id: int, *, lock: bool = False) -> CaseRecord | None:
        return self.data.cases.get(case_id)

    def cases_holding(self, invoice_id: int, statuses: Sequence[str]) -> list[CaseRecord]:
        holding = {link.case_id for link in self.data.case_invoices.values() if link.invoice_id == invoice_id}
        found = [self.data.cases[i] for i in holding if self.data.cases[i].status in statuses]
        return sorted(found, key=lambda c: c.id)

    def open_cases(self, debtor_id: str) -> list[CaseRecord]:
        found = [c for c in self.data.cases.values() if c.debtor_id == debtor_id and c.status == "open"]
        return sorted(found, key=lambda c: c.id)

    def add_case(self, new: NewCase, now: datetime) -> CaseRecord:
        case = Case(
            id=self._new_id("cases"),
            **asdict(new),
            amount_claimed=new.amount_claimed,
            opened_at=now,
            updated_at=now,
        )
        self.data.cases[case.id] = case
        return case

    def _case_invoice_ids(self, case_id: int) -> list[int]:
        return [link.invoice_id for link in self.data.case_invoices.values() if link.case_id == case_id]

    def case_invoices(self, case_id: int) -> list[InvoiceRecord]:
        return _by_due_date(self.data.invoices[i] for i in self._case_invoice_ids(case_id))

    def add_case_invoices(self, case_id: int, invoice_ids: Iterable[int]) -> None:
        known = set(self._case_invoice_ids(case_id))
        for invoice_id in dict.fromkeys(invoice_ids):
            if invoice_id not in known:
                link = CaseInvoice(id=self._new_id("case_invoices"), case_id=case_id, invoice_id=invoice_id)
                self.data.case_invoices[link.id] = link

    # -- the inbox of accounting events -------------------------------------------------------

    def _inbox_entry(self, event_id: str) -> InboxEntry | None:
        return next((e for e in self.data.inbox.values() if e.event_id == event_id), None)

    def inbox_digest(self, event_id: str) -> str | None:
        found = self._inbox_entry(event_id)
        return None if found is None else found.content_sha256

    def add_inbox(
        self, *, event_id: str, type: str, occurred_at: datetime, raw: str, digest: str, received_at: datetime
    ) -> InboxRecord:
        _refuse_duplicate(self._inbox_entry(event_id) is not None, event_id)
        entry = InboxEntry(
            id=self._new_id("inbox"),
            event_id=event_id,
            type=type,
            occurred_at=occurred_at,
            raw=raw,
            content_sha256=digest,
            status="applied",
            received_at=received_at,
        )
        self.data.inbox[entry.id] = entry
        return entry

    def parked(self, key: str) -> list[InboxRecord]:
        found = [e for e in self.data.inbox.values() if e.status == "parked" and e.waiting_for == key]
        return sorted(found, key=lambda e: (e.occurred_at, e.id))

    def applied_raws(self, event_type: str) -> list[str]:
        found = [e for e in self.data.inbox.values() if e.type == event_type and e.status == "applied"]
        return [e.raw for e in sorted(found, key=lambda e: (e.occurred_at, e.id), reverse=True)]

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
        rejected = Rejected(
            id=self._new_id("rejected"),
            event_id=event_id,
            raw=raw,
            reason=reason,
            source=source,
            line_no=line_no,
            received_at=received_at,
        )
        self.data.rejected[rejected.id] = rejected

    # -- hand-overs ------------------------------------------------------------------------

    def handovers_of(self, case_id: int) -> list[HandoverRecord]:
        found = [h for h in self.data.handovers.values() if h.case_id == case_id]
        return sorted(found, key=lambda h: h.id)

    def handover(self, handover_id: int) -> HandoverRecord | None:
        return self.data.handovers.get(handover_id)

    def add_handover(self, new: NewHandover, now: datetime) -> HandoverRecord:
        taken = self.data.handovers.values()
        _refuse_duplicate(any(h.idempotency_key == new.idempotency_key for h in taken), new.idempotency_key)
        _refuse_duplicate(
            any((h.case_id, h.partner) == (new.case_id, new.partner) for h in taken), new.partner
        )
        handover = Handover(id=self._new_id("handovers"), **asdict(new), created_at=now)
        self.data.handovers[handover.id] = handover
        return handover

    def handovers(self) -> RecordOutbox:
        return RecordOutbox(self.data, "handovers")

    # -- signals ---------------------------------------------------------------------------

    def signal_creditor(self) -> str:
        return DEFAULT_CREDITOR

    def steps_reached(self, debtor_id: str) -> list[tuple[str, str]]:
        statuses: dict[tuple[int, str], set[bool]] = {}  # (invoice, step) -> sent or not, per message
        for message in self.data.messages.values():
            for claim in message.claims:
                statuses.setdefault(claim, set()).add(message.status not in NOT_SENT)
        found = []
        for step in self.data.steps.values():
            invoice = self.data.invoices.get(step.invoice_id)
            mine = invoice is not None and invoice.debtor_id == debtor_id and invoice.status == "open"
            only_unsent = statuses.get((step.invoice_id, step.step)) == {False}  # drafted, rejected ...
            if mine and step.status == "done" and invoice is not None and not only_unsent:
                found.append((invoice.number, step.step))
        return sorted(found)

    def subscribers(self, signal_type: str) -> list[str]:
        webhooks = self.data.webhooks
        return [s.name for s in webhooks.for_signal(signal_type, DEFAULT_CREDITOR)] if webhooks else []

    def add_signal(self, new: NewSignal, now: datetime) -> int:
        taken = self.data.signals.values()
        _refuse_duplicate(any(s.idempotency_key == new.idempotency_key for s in taken), new.idempotency_key)
        signal = Signal(id=self._new_id("signals"), **asdict(new), created_at=now)
        self.data.signals[signal.id] = signal
        return signal.id

    def signals(self) -> RecordOutbox:
        return RecordOutbox(self.data, "signals")


def _by_due_date(invoices: Iterable[Invoice]) -> list[InvoiceRecord]:
    return sorted(invoices, key=lambda i: (i.due_date, i.number))


# -- the unit of work ----------------------------------------------------------------------


class MemoryUnitOfWork:
    """``handlers.ports.UnitOfWork`` on a ``MemoryData`` (opened by ``MemoryUnitsOfWork``)."""

    def __init__(self, data: MemoryData) -> None:
        self.data = data
        self._store = MemoryStore(data)

    def remember_message(self, message_id: str, actor: str, at: datetime) -> bool:
        if message_id in self.data.processed:
            return False
        self.data.processed[message_id] = Processed(message_id=message_id, actor=actor, processed_at=at)
        return True

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
        self._store.store_rejected(
            event_id=event_id, raw=raw, reason=reason, source=source, line_no=line_no, received_at=received_at
        )

    def creditor_of(self, table: str, row_id: int) -> str | None:
        rows: dict[str, Mapping[int, object]] = {
            "planned_steps": self.data.steps,
            "messages": self.data.messages,
            "handovers": self.data.handovers,
            "signals": self.data.signals,
        }
        return DEFAULT_CREDITOR if row_id in rows[table] else None

    def creditors_of(self, table: str, row_ids: Iterable[int]) -> dict[int, str]:
        found = {row_id: self.creditor_of(table, row_id) for row_id in row_ids}
        return {row_id: creditor for row_id, creditor in found.items() if creditor is not None}

    def scope(self, creditor: str | None) -> None:
        """The memory store holds the collections of one creditor, ``default``."""
        if creditor not in (None, DEFAULT_CREDITOR):
            raise ValueError(f"the in-memory store holds the creditor default only, not {creditor!r}")

    def savepoint(self) -> Any:
        return self._store.savepoint()

    def after_commit(self, task: object) -> None:
        self._store.after_commit(task)

    def take_tasks(self) -> list[object]:
        tasks = list(self.data.tasks)
        self.data.tasks.clear()
        return tasks

    def messages(self) -> MemoryMessages:
        return MemoryMessages(self.data)

    def record_evidence(self, record: PendingRecord) -> None:
        self._store.record_evidence(record)

    def write_evidence(self) -> int:
        return self._store.write_evidence()

    @property
    def store(self) -> MemoryStore:
        return self._store

    @property
    def session(self) -> Any:
        raise AssertionError("no SQL session in memory")

    def commit(self) -> None:
        self.write_evidence()


class MemoryUnitsOfWork:
    """``handlers.ports.UnitsOfWork`` on a ``MemoryData``: one unit of work at a time."""

    def __init__(self, data: MemoryData) -> None:
        self.data = data

    @contextmanager
    def __call__(self) -> Iterator[MemoryUnitOfWork]:
        with self.data.lock, undone_if_raises(self.data):
            uow = MemoryUnitOfWork(self.data)
            yield uow
            uow.commit()

    mark_sent = mark_sent_in_a_unit  # one unit of work at a time: no cheaper way
    markings = markings_one_at_a_time


if TYPE_CHECKING:  # mypy holds the classes to the ports

    def _fits(data: MemoryData) -> tuple[Store, UnitsOfWork]:
        return MemoryStore(data), MemoryUnitsOfWork(data)
