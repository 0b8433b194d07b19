"""What the reminder path reads ahead for a batch of steps (``SqlDunningStore.read_ahead``).

A batch of due steps (``handlers.service.run_steps``) is handled step by step, and each step
of a new debtor read the same things one statement at a time: its step, its debtor (locked),
its invoices with due steps (locked) and their steps, its other open invoices, the claims
and drafts of its due invoices, its recent messages. Read ahead, each kind is one statement
for the whole batch, in the order a step reads them: the steps, then the debtors locked in
id order, then their invoices with due steps locked in id order (one order for every worker:
no deadlock between two batches), then what is read under those locks.

Each debtor's read-ahead is used once, by the first step of that debtor the batch handles
(``ReadAhead.take``), and dropped: a second step of the same debtor, or any read not covered
here, reads live. A debtor with a step in the batch that is not a reminder (a deadline) is
not read ahead: its other handler may change what would have been read. The read-ahead lives
as long as the unit of work's transaction (``adapters.uow.UnitOfWork.read_ahead``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Connection,
    Date,
    Table,
    and_,
    any_,
    bindparam,
    func,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY

from adapters.orm import DebtorRow, DebtorSalt, InvoiceRow, MessageItem, MessageRow, PlannedStep
from handlers.approval import NOT_SENT
from handlers.dunning import InvoiceFacts, StepFacts
from handlers.planning import PENDING

REMINDER_EVENTS = ("invoice.due", "invoice.overdue")
AHEAD_DEBTORS = 100  # debtors read ahead at most per batch; the others read live
# invoices with due steps, and other open invoices, read ahead per debtor at most: a debtor
# with more (a catch-up) reads live, a batch at a time, as without a read-ahead
AHEAD_INVOICES = 8
AHEAD_OPEN_INVOICES = 50

_STEPS: Table = PlannedStep.__table__  # type: ignore[assignment]
_INVOICES: Table = InvoiceRow.__table__  # type: ignore[assignment]
_DEBTORS: Table = DebtorRow.__table__  # type: ignore[assignment]
_SALTS: Table = DebtorSalt.__table__  # type: ignore[assignment]
_MESSAGES: Table = MessageRow.__table__  # type: ignore[assignment]
_ITEMS: Table = MessageItem.__table__  # type: ignore[assignment]
_CREDITOR: BindParameter[str] = bindparam("creditor")

STEP_COLUMNS = ("id", "invoice_id", "debtor_id", "step", "event", "status", "due_at")
INVOICE_COLUMNS = (
    "id",
    "number",
    "debtor_id",
    "status",
    "currency",
    "amount_due",
    "paid",
    "credited",
    "issue_date",
    "due_date",
    "late_penalty_rate",
    "payment_url",
    "disputed",
    "in_payment_plan",
    "paused_until",
    "ever_disputed",
    "delivered_on",
    "factored_by",
    "hold_reason",
    "held_until",
)


@dataclass
class DebtorAhead:
    """One debtor's read-ahead; each part is taken once (None: taken, or not read ahead)."""

    row: Any  # the debtor's row, locked, with its salt (``salt_of_debtor``)
    due: list[tuple[StepFacts, InvoiceFacts]] | None = field(default_factory=list)
    open_invoices: list[InvoiceFacts] | None = field(default_factory=list)
    # (invoice id, step, channel, Message-ID, status) of the due invoices' claims, by message
    claims: list[tuple[int, str, str, str, str]] | None = field(default_factory=list)
    claims_of: set[int] = field(default_factory=set)  # the invoices whose claims were read
    recent: list[tuple[date, str, str, Any]] | None = field(default_factory=list)

    @property
    def debtor_id(self) -> str:
        found: str = self.row.id
        return found

    def forget_messages(self) -> None:
        """A message recorded or changed: what was read of messages is read again."""
        self.claims = self.recent = None


@dataclass
class ReadAhead:
    """What a batch of steps of one creditor read at once, at ``now``."""

    creditor: str
    now: datetime
    steps: dict[int, StepFacts]
    debtors: dict[str, DebtorAhead]

    def step(self, step_id: int) -> StepFacts | None:
        """The step as read ahead, while its debtor's read-ahead is unused (None: read it)."""
        found = self.steps.get(step_id)
        return found if found is not None and found.debtor_id in self.debtors else None

    def take(self, debtor_id: str) -> DebtorAhead | None:
        """The debtor's read-ahead, once; the steps of the debtor are read live from now on."""
        return self.debtors.pop(debtor_id, None)


def read_ahead(
    connection: Connection,
    creditor: str,
    step_ids: Sequence[int],
    now: datetime,
    step_facts: Callable[[Any], StepFacts],
    invoice_facts: Callable[[Any], InvoiceFacts],
) -> ReadAhead:
    """Read once for the batch of ``step_ids`` what each of its debtors' first step reads."""
    sql = _statements(connection.dialect.name)

    def run(statement: Any, **params: Any) -> Any:
        return connection.execute(statement, {"creditor": creditor, **params})

    steps = {row.id: step_facts(row) for row in run(sql.steps, steps=sorted(set(step_ids)))}
    ahead = ReadAhead(creditor, now, steps, {})
    wanted = _debtors_read_ahead(steps.values())
    if not wanted:
        return ahead
    ahead.debtors = {row.id: DebtorAhead(row) for row in run(sql.lock_debtors, debtors=wanted)}
    debtors = sorted(ahead.debtors)
    if not debtors:
        return ahead
    locked: dict[int, InvoiceFacts] = {}
    for row in run(sql.lock_due_invoices, debtors=debtors, now=now, most=AHEAD_INVOICES + 1):
        locked[row.id] = invoice_facts(row)
    _drop_parts_over(ahead, "due", [i.debtor_id for i in locked.values()], AHEAD_INVOICES)
    read = [i for i, facts in locked.items() if ahead.debtors[facts.debtor_id].due is not None]
    for invoice_id in read:
        ahead.debtors[locked[invoice_id].debtor_id].claims_of.add(invoice_id)
    for row in run(sql.due_steps, debtors=debtors, now=now, invoices=read) if read else ():
        step = step_facts(row)
        _part(ahead, step.debtor_id, "due").append((step, locked[step.invoice_id]))
    rows = run(sql.open_invoices, debtors=debtors, most=AHEAD_OPEN_INVOICES + 1).all()
    _drop_parts_over(ahead, "open_invoices", [row.debtor_id for row in rows], AHEAD_OPEN_INVOICES)
    for row in rows:
        if ahead.debtors[row.debtor_id].open_invoices is not None:
            _part(ahead, row.debtor_id, "open_invoices").append(invoice_facts(row))
    for invoice_id, step_name, channel, message_id, status in run(sql.claims, invoices=read) if read else ():
        owner = locked[invoice_id].debtor_id
        _part(ahead, owner, "claims").append((invoice_id, step_name, channel, message_id, status))
    for row in run(sql.recent_messages, debtors=debtors):
        _part(ahead, row.debtor_id, "recent").append((row.local_day, row.status, row.channel, row.amounts))
    return ahead


def _debtors_read_ahead(steps: Sequence[StepFacts] | Any) -> list[str]:
    """The debtors of the batch's pending reminder steps, in id order, but those with another
    kind of step in the batch (handled by another handler: read live)."""
    reminded = {s.debtor_id for s in steps if s.event in REMINDER_EVENTS and s.status in PENDING}
    others = {s.debtor_id for s in steps if s.event not in REMINDER_EVENTS}
    return sorted(reminded - others)[:AHEAD_DEBTORS]


def _part(ahead: ReadAhead, debtor_id: str, name: str) -> list[Any]:
    found: list[Any] = getattr(ahead.debtors[debtor_id], name)
    return found


def _drop_parts_over(ahead: ReadAhead, name: str, owners: list[str], most: int) -> None:
    """A debtor with more rows of a part than ``most`` reads that part live (a catch-up):
    the part and what is read with it are not kept."""
    counts: dict[str, int] = {}
    for owner in owners:
        counts[owner] = counts.get(owner, 0) + 1
    for owner, count in counts.items():
        if count > most:
            setattr(ahead.debtors[owner], name, None)
            if name == "due":
                ahead.debtors[owner].claims = None  # read with the due invoices


@dataclass(frozen=True)
class _Statements:
    steps: Any
    lock_debtors: Any
    lock_due_invoices: Any
    due_steps: Any
    open_invoices: Any
    claims: Any
    recent_messages: Any


_BUILT: dict[str, _Statements] = {}


def _statements(dialect: str) -> _Statements:
    """The read-ahead's statements for ``dialect``, built once: on PostgreSQL, the ids are
    bound as one array (``= ANY``), one text whatever their number, prepared once."""
    found = _BUILT.get(dialect)
    if found is None:
        found = _BUILT[dialect] = _build(dialect)
    return found


def _build(dialect: str) -> _Statements:
    def among(column: Any, name: str) -> ColumnElement[bool]:
        if dialect == "postgresql":
            return column == any_(bindparam(name, type_=ARRAY(column.type)))
        return column.in_(bindparam(name, expanding=True))

    due = (
        _STEPS.c.creditor_id == _CREDITOR,
        among(_STEPS.c.debtor_id, "debtors"),
        _STEPS.c.status.in_(PENDING),
        _STEPS.c.event.in_(REMINDER_EVENTS),
        _STEPS.c.due_at <= bindparam("now"),
    )
    invoice_columns = [_INVOICES.c[name] for name in INVOICE_COLUMNS]
    # the first invoices with due steps of each debtor, ``:most`` at most
    ranked = (
        select(
            _STEPS.c.invoice_id,
            func.dense_rank()
            .over(partition_by=_STEPS.c.debtor_id, order_by=_STEPS.c.invoice_id)
            .label("rank"),
        )
        .where(*due)
        .subquery()
    )
    first_due = select(ranked.c.invoice_id).where(ranked.c.rank <= bindparam("most"))
    numbered = (
        select(
            *invoice_columns,
            func.row_number().over(partition_by=_INVOICES.c.debtor_id, order_by=_INVOICES.c.id).label("rank"),
        )
        .where(
            _INVOICES.c.creditor_id == _CREDITOR,
            among(_INVOICES.c.debtor_id, "debtors"),
            _INVOICES.c.status == "open",
        )
        .subquery()
    )
    sent = _MESSAGES.alias("sent")
    last_sent_day = (
        select(func.max(sent.c.local_day))
        .where(
            sent.c.creditor_id == _MESSAGES.c.creditor_id,
            sent.c.debtor_id == _MESSAGES.c.debtor_id,
            sent.c.status.not_in(NOT_SENT),
        )
        .scalar_subquery()
    )
    return _Statements(
        steps=select(*(_STEPS.c[name] for name in STEP_COLUMNS)).where(
            _STEPS.c.creditor_id == _CREDITOR, among(_STEPS.c.id, "steps")
        ),
        lock_debtors=select(_DEBTORS, _SALTS.c.salt.label("salt_of_debtor"))
        .select_from(
            _DEBTORS.outerjoin(
                _SALTS,
                and_(_SALTS.c.creditor_id == _DEBTORS.c.creditor_id, _SALTS.c.debtor_id == _DEBTORS.c.id),
            )
        )
        .where(_DEBTORS.c.creditor_id == _CREDITOR, among(_DEBTORS.c.id, "debtors"))
        .order_by(_DEBTORS.c.id)
        .with_for_update(of=_DEBTORS),
        lock_due_invoices=select(*invoice_columns)
        .where(_INVOICES.c.creditor_id == _CREDITOR, _INVOICES.c.id.in_(first_due))
        .order_by(_INVOICES.c.id)
        .with_for_update(of=_INVOICES),
        due_steps=select(*(_STEPS.c[name] for name in STEP_COLUMNS))
        .where(*due, among(_STEPS.c.invoice_id, "invoices"))
        .order_by(_STEPS.c.invoice_id, _STEPS.c.id),
        open_invoices=select(*(numbered.c[name] for name in INVOICE_COLUMNS))
        .where(numbered.c.rank <= bindparam("most"))
        .order_by(numbered.c.id),
        claims=_claims(dialect, among(_ITEMS.c.invoice_id, "invoices")),
        recent_messages=select(
            _MESSAGES.c.debtor_id,
            _MESSAGES.c.local_day,
            _MESSAGES.c.status,
            _MESSAGES.c.channel,
            _MESSAGES.c.amounts,
        ).where(
            _MESSAGES.c.creditor_id == _CREDITOR,
            among(_MESSAGES.c.debtor_id, "debtors"),
            _MESSAGES.c.local_day >= func.coalesce(last_sent_day, bindparam("no_day", date.min, type_=Date)),
        ),
    )


def _claims(dialect: str, of_invoices: ColumnElement[bool]) -> Any:
    """The claims of the invoices with their message's Message-ID and status, in message
    order. On PostgreSQL the items drive the read (``uq_sent_step``, led by ``invoice_id``)
    and each item's message is found by its key in a ``LATERAL`` subquery its ``LIMIT``
    keeps apart: whatever plan is cached, none reads the messages first."""
    if dialect != "postgresql":
        return (
            select(
                _ITEMS.c.invoice_id,
                _ITEMS.c.step,
                _ITEMS.c.channel,
                _MESSAGES.c.message_id,
                _MESSAGES.c.status,
            )
            .join(_MESSAGES, _MESSAGES.c.id == _ITEMS.c.message_pk)
            .where(of_invoices, _MESSAGES.c.creditor_id == _CREDITOR)
            .order_by(_MESSAGES.c.id)
        )
    message = (
        select(_MESSAGES.c.message_id, _MESSAGES.c.status)
        .where(_MESSAGES.c.id == _ITEMS.c.message_pk, _MESSAGES.c.creditor_id == _CREDITOR)
        .limit(1)
        .lateral("message")
    )
    return (
        select(_ITEMS.c.invoice_id, _ITEMS.c.step, _ITEMS.c.channel, message.c.message_id, message.c.status)
        .select_from(_ITEMS.join(message, true()))
        .where(of_invoices)
        .order_by(_ITEMS.c.message_pk)
    )
