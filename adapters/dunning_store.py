"""The dunning store on SQL: the reminder path's port (``handlers.dunning.DunningStore``)
over one unit of work.

A debtor may have tens of thousands of steps due at once (a catch-up): the store reads
steps and invoices as plain columns, never as mapped rows (a mapped row and the copy of its
loaded state the session keeps cost about ten times the values), and writes what the core
decides about steps with statements on sets of ids, in chunks. The values it hands out
share their repeated parts (step names, events, instants, the debtor's id): one object each.
"""

from __future__ import annotations

from array import array
from collections.abc import Container, Hashable, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar, cast

from sqlalchemy import (
    BindParameter,
    Connection,
    Date,
    Table,
    and_,
    any_,
    bindparam,
    delete,
    false,
    func,
    insert,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from adapters.dunning_ahead import DebtorAhead, ReadAhead, read_ahead
from adapters.orm import (
    DebtorRow,
    DebtorSalt,
    InvoiceRow,
    MessageItem,
    MessageRow,
    PlannedStep,
    StepLease,
    TaskRow,
    lock_debtor,
    movements_of,
)
from adapters.sql_store import SqlStore, closed_emissions
from adapters.uow import UnitOfWork
from handlers import plans
from handlers.approval import DRAFT, NOT_SENT, Claim, DraftFacts
from handlers.dunning import DebtorFacts, InvoiceFacts, NewMessage, NewTask, StepFacts
from handlers.evidence import EvidenceSink, PendingRecord, is_sink
from handlers.money import Movement
from handlers.planning import PENDING

REMINDER_EVENTS = ("invoice.due", "invoice.overdue")
CHUNK = 500  # ids per statement: well within the bound parameters of SQLite and PostgreSQL
BATCH_INVOICES = 400  # invoices per batch of due steps: about 2 000 steps in a catch-up

_STEP_COLUMNS = (
    PlannedStep.id,
    PlannedStep.invoice_id,
    PlannedStep.debtor_id,
    PlannedStep.step,
    PlannedStep.event,
    PlannedStep.status,
    PlannedStep.due_at,
)
_INVOICE_COLUMNS = (
    InvoiceRow.id,
    InvoiceRow.number,
    InvoiceRow.debtor_id,
    InvoiceRow.status,
    InvoiceRow.currency,
    InvoiceRow.amount_due,
    InvoiceRow.paid,
    InvoiceRow.credited,
    InvoiceRow.issue_date,
    InvoiceRow.due_date,
    InvoiceRow.late_penalty_rate,
    InvoiceRow.payment_url,
    InvoiceRow.disputed,
    InvoiceRow.in_payment_plan,
    InvoiceRow.paused_until,
    InvoiceRow.ever_disputed,
    InvoiceRow.delivered_on,
    InvoiceRow.factored_by,
    InvoiceRow.hold_reason,
    InvoiceRow.held_until,
)

# -- the reminder path's reads, built once per process: Core statements executed on the unit
# of work's connection, rows read as tuples. The unit of work's ``do_orm_execute`` filter does
# not see them: each names its creditor (``:creditor``) itself.
_STEPS: Table = PlannedStep.__table__  # type: ignore[assignment]
_INVOICES = InvoiceRow.__table__
_DEBTORS = DebtorRow.__table__
_SALTS = DebtorSalt.__table__
_MESSAGES: Table = MessageRow.__table__  # type: ignore[assignment]
_ITEMS: Table = MessageItem.__table__  # type: ignore[assignment]
_CREDITOR: BindParameter[str] = bindparam("creditor")
_DEBTOR_ID: BindParameter[str] = bindparam("debtor")

_READ_STEP = select(*(_STEPS.c[c.key] for c in _STEP_COLUMNS)).where(
    _STEPS.c.id == bindparam("step"), _STEPS.c.creditor_id == _CREDITOR
)
# the debtor, locked, with its salt if it has one (the evidence of the reminder needs it)
_LOCK_DEBTOR = (
    select(_DEBTORS, _SALTS.c.salt.label("salt_of_debtor"))
    .select_from(
        _DEBTORS.outerjoin(
            _SALTS, and_(_SALTS.c.creditor_id == _DEBTORS.c.creditor_id, _SALTS.c.debtor_id == _DEBTORS.c.id)
        )
    )
    .where(_DEBTORS.c.creditor_id == _CREDITOR, _DEBTORS.c.id == _DEBTOR_ID)
    .with_for_update(of=_DEBTORS)
)
_OPEN_INVOICES = (
    select(*(_INVOICES.c[c.key] for c in _INVOICE_COLUMNS))
    .where(
        _INVOICES.c.creditor_id == _CREDITOR,
        _INVOICES.c.debtor_id == _DEBTOR_ID,
        _INVOICES.c.status == "open",
    )
    .execution_options(yield_per=CHUNK)  # each row dropped once its facts are found
)
# invoices read again by id (``invoices``): the messages of a catch-up, a batch at a time
_INVOICES_BY_ID = select(*(_INVOICES.c[c.key] for c in _INVOICE_COLUMNS)).where(
    _INVOICES.c.creditor_id == _CREDITOR, _INVOICES.c.id.in_(bindparam("invoices", expanding=True))
)
# message_items has no creditor of its own: its message's says whose it is
_RECORDED_CLAIMS = (
    select(_ITEMS.c.invoice_id, _ITEMS.c.step, _ITEMS.c.channel)
    .join(_MESSAGES, _MESSAGES.c.id == _ITEMS.c.message_pk)
    .where(
        _ITEMS.c.invoice_id.in_(bindparam("invoices", expanding=True)), _MESSAGES.c.creditor_id == _CREDITOR
    )
)
# the claims of invoices with their message's id and status: the drafts they wait for and the
# claims the decision needs, in one read (``awaiting_drafts``, then ``recorded_claims``)
_CLAIMS_AND_DRAFTS = (
    select(_ITEMS.c.invoice_id, _ITEMS.c.step, _ITEMS.c.channel, _MESSAGES.c.message_id, _MESSAGES.c.status)
    .join(_MESSAGES, _MESSAGES.c.id == _ITEMS.c.message_pk)
    .where(
        _ITEMS.c.invoice_id.in_(bindparam("invoices", expanding=True)), _MESSAGES.c.creditor_id == _CREDITOR
    )
    .order_by(_MESSAGES.c.id)
)
_SENT = _MESSAGES.alias("sent")
_LAST_SENT_DAY = (
    select(func.max(_SENT.c.local_day))
    .where(_SENT.c.creditor_id == _CREDITOR, _SENT.c.debtor_id == _DEBTOR_ID, _SENT.c.status.not_in(NOT_SENT))
    .scalar_subquery()
)
# the debtor's messages since its last message sent (all of them if none was): its last
# message's day and, for any day from then on, the messages of that day, in one read
_RECENT_MESSAGES = select(
    _MESSAGES.c.local_day, _MESSAGES.c.status, _MESSAGES.c.channel, _MESSAGES.c.amounts
).where(
    _MESSAGES.c.creditor_id == _CREDITOR,
    _MESSAGES.c.debtor_id == _DEBTOR_ID,
    _MESSAGES.c.local_day >= func.coalesce(_LAST_SENT_DAY, bindparam("no_day", date.min, type_=Date)),
)
_MESSAGES_ON = select(_MESSAGES.c.channel, _MESSAGES.c.amounts).where(
    _MESSAGES.c.creditor_id == _CREDITOR,
    _MESSAGES.c.debtor_id == _DEBTOR_ID,
    _MESSAGES.c.local_day == bindparam("day"),
)

# the due steps of a debtor, read batch by batch (``due_step_batches``): the ids of the next
# invoices with steps due, the invoices locked, then their due steps
_DUE = (
    _STEPS.c.creditor_id == _CREDITOR,
    _STEPS.c.debtor_id == _DEBTOR_ID,
    _STEPS.c.status.in_(PENDING),
    _STEPS.c.event.in_(REMINDER_EVENTS),
    _STEPS.c.due_at <= bindparam("now"),
)
_LOCK_DUE_INVOICES: dict[int, Any] = {}  # by the number of invoices per batch


def _lock_due_invoices(invoices: int) -> Any:
    """The next ``invoices`` invoices with steps due after invoice ``:after``, read and
    locked in id order in one statement (the ids found by a subquery)."""
    found = _LOCK_DUE_INVOICES.get(invoices)
    if found is None:
        due_ids = (
            select(_STEPS.c.invoice_id)
            .where(*_DUE, _STEPS.c.invoice_id > bindparam("after"))
            .group_by(_STEPS.c.invoice_id)
            .order_by(_STEPS.c.invoice_id)
            .limit(invoices)
        )
        found = _LOCK_DUE_INVOICES[invoices] = (
            select(*(_INVOICES.c[c.key] for c in _INVOICE_COLUMNS))
            .where(_INVOICES.c.creditor_id == _CREDITOR, _INVOICES.c.id.in_(due_ids))
            .order_by(_INVOICES.c.id)
            .with_for_update(of=_INVOICES)
        )
    return found


_DUE_STEPS_OF = (
    select(*(_STEPS.c[c.key] for c in _STEP_COLUMNS))
    .where(*_DUE, _STEPS.c.invoice_id.in_(bindparam("invoices", expanding=True)))
    .order_by(_STEPS.c.invoice_id, _STEPS.c.id)
)

# the message and its items (``record_message``): the message's values bound as ``m_<column>``
_MESSAGE_COLUMNS = (
    "creditor_id",
    "message_id",
    "debtor_id",
    "channel",
    "step",
    "local_day",
    "recipient",
    "subject",
    "body_text",
    "content",
    "content_sha256",
    "amounts",
    "status",
    "attempts",
    "lease_until",
    "created_at",
)
# ``record_due`` written, not left to its column's default: a default computed before the
# statement runs is lost where the statement also updates (``_INSERT_MESSAGE_FINISHING_STEPS``)
_NEW_MESSAGE = insert(_MESSAGES).values(
    {name: bindparam(f"m_{name}", type_=_MESSAGES.c[name].type) for name in _MESSAGE_COLUMNS}
    | {"record_due": false()}
)
_INSERT_MESSAGE = _NEW_MESSAGE.returning(_MESSAGES.c.id)
_INSERT_ITEMS = insert(_ITEMS)


def _message_with_items() -> Any:
    """PostgreSQL: the message and all its items in one statement, ``WITH m AS (INSERT INTO
    messages … RETURNING id, channel), items AS (INSERT INTO message_items SELECT m.id, …
    FROM m JOIN unnest(:claim_invoices, :claim_steps) …) SELECT m.id FROM m`` (the claims
    bound as two arrays; none gives no item and still the message's id)."""
    message = _NEW_MESSAGE.returning(_MESSAGES.c.id, _MESSAGES.c.channel).cte("m")
    claims = (
        func.unnest(
            bindparam("claim_invoices", type_=ARRAY(_ITEMS.c.invoice_id.type)),
            bindparam("claim_steps", type_=ARRAY(_ITEMS.c.step.type)),
        )
        .table_valued("invoice_id", "step")
        .render_derived()
    )
    items = insert(_ITEMS).from_select(
        ["message_pk", "invoice_id", "step", "channel"],
        select(message.c.id, claims.c.invoice_id, claims.c.step, message.c.channel)
        .select_from(message)
        .join(claims, true()),
    )
    return select(message.c.id).add_cte(items.cte("items"))


_INSERT_MESSAGE_WITH_ITEMS = _message_with_items()
# a step's lease's emissions added to its ``emit_count`` as the lease ends (``closed_emissions``)
_LEASES: Table = StepLease.__table__  # type: ignore[assignment]


def _message_finishing_steps() -> Any:
    """PostgreSQL: ``_INSERT_MESSAGE_WITH_ITEMS`` that also finishes the steps the message
    finishes (``:finishes``, one array), as ``finish_steps`` without a reason would: ``…,
    gone AS (DELETE FROM step_leases … RETURNING step_id, emission), done AS (UPDATE
    planned_steps SET status = 'done', done_at = :finished_at, emit_count = emit_count +
    coalesce(the lease's emission, 0) …) SELECT m.id FROM m``. Every part is a top-level
    WITH: each runs once, whatever the SELECT reads of it."""
    finishing = bindparam("finishes", type_=ARRAY(_STEPS.c.id.type))
    gone = (
        delete(_LEASES)
        .where(_LEASES.c.creditor_id == _CREDITOR, _LEASES.c.step_id == any_(finishing))
        .returning(_LEASES.c.step_id, _LEASES.c.emission)
        .cte("gone")
    )
    emitted = select(gone.c.emission).where(gone.c.step_id == _STEPS.c.id).scalar_subquery()
    done = (
        update(_STEPS)
        .where(_STEPS.c.creditor_id == _CREDITOR, _STEPS.c.id == any_(finishing))
        .values(
            status="done",
            done_at=bindparam("finished_at", type_=_STEPS.c.done_at.type),
            emit_count=_STEPS.c.emit_count + func.coalesce(emitted, 0),
        )
        .cte("done")
    )
    return _message_with_items().add_cte(gone).add_cte(done)


_INSERT_MESSAGE_FINISHING_STEPS = _message_finishing_steps()
_CLOSED_EMISSIONS = _STEPS.c.emit_count + func.coalesce(
    select(_LEASES.c.emission).where(_LEASES.c.step_id == _STEPS.c.id).scalar_subquery(), 0
)
_SET_STEPS: dict[tuple[tuple[str, ...], bool], Any] = {}  # by the names of the values set
_END_LEASES = delete(_LEASES).where(
    _LEASES.c.creditor_id == _CREDITOR, _LEASES.c.step_id.in_(bindparam("steps", expanding=True))
)


def _set_steps(names: tuple[str, ...], *, with_leases: bool) -> Any:
    """The UPDATE of steps that sets ``names`` (bound as ``new_<name>``) and adds their
    leases' emissions to ``emit_count``: built once per set of names. ``with_leases``
    (PostgreSQL): the leases are deleted by the same statement, ``WITH gone AS (DELETE FROM
    step_leases … RETURNING …) UPDATE planned_steps …``; otherwise ``_END_LEASES`` follows."""
    found = _SET_STEPS.get((names, with_leases))
    if found is None:
        values: dict[str, Any] = {name: bindparam(f"new_{name}", type_=_STEPS.c[name].type) for name in names}
        statement = update(_STEPS).where(
            _STEPS.c.creditor_id == _CREDITOR, _STEPS.c.id.in_(bindparam("steps", expanding=True))
        )
        if with_leases:
            gone = _END_LEASES.returning(_LEASES.c.step_id, _LEASES.c.emission).cte("gone")
            emitted = select(gone.c.emission).where(gone.c.step_id == _STEPS.c.id).scalar_subquery()
            values["emit_count"] = _STEPS.c.emit_count + func.coalesce(emitted, 0)
            statement = statement.add_cte(gone)
        else:
            values["emit_count"] = _CLOSED_EMISSIONS
        found = _SET_STEPS[(names, with_leases)] = statement.values(values)
    return found


H = TypeVar("H", bound=Hashable)


class _Shared:
    """One object per distinct value: the same step name, event, instant or amount read on
    100 000 rows is kept once instead of 100 000 times.

    Values are told apart by more than equality where equal values differ in what they
    show: 0.1 and 0.10 (a rate prints as read), an instant in two zones.
    """

    def __init__(self) -> None:
        self._seen: dict[Hashable, Any] = {}

    def __call__(self, value: H) -> H:
        if value is None:  # most optional facts: nothing to share
            return value
        key: Hashable
        kind = type(value)
        if kind is str or kind is date or kind is int:  # the common exact types first
            key = (kind, value)
        elif isinstance(value, Decimal):
            key = (Decimal, value.as_tuple())
        elif isinstance(value, datetime):
            key = (datetime, value, value.tzinfo)
        else:
            key = (type(value), value)
        found: H = self._seen.setdefault(key, value)
        return found


def step_facts(row: Any, shared: _Shared | None = None) -> StepFacts:
    """The facts of a step from its mapped row or a row of ``_STEP_COLUMNS``."""
    same = shared or _Shared()
    return StepFacts(
        row.id,
        row.invoice_id,
        same(row.debtor_id),
        same(row.step),
        same(row.event),
        same(row.status),
        same(row.due_at),
    )


def invoice_facts(row: Any, shared: _Shared | None = None) -> InvoiceFacts:
    """The facts of an invoice from its mapped row or a row of ``_INVOICE_COLUMNS``."""
    same = shared or _Shared()
    return InvoiceFacts(
        id=row.id,
        number=row.number,
        debtor_id=same(row.debtor_id),
        status=same(row.status),
        currency=same(row.currency),
        amount_due=row.amount_due,  # as many as invoices: nothing to share
        paid=same(row.paid),
        credited=same(row.credited),
        issue_date=same(row.issue_date),
        due_date=same(row.due_date),
        late_penalty_rate=same(row.late_penalty_rate),
        payment_url=row.payment_url,
        disputed=row.disputed,
        in_payment_plan=row.in_payment_plan,
        paused_until=same(row.paused_until),
        ever_disputed=row.ever_disputed,
        delivered_on=same(row.delivered_on),
        factored_by=same(row.factored_by),
        hold_reason=same(row.hold_reason),
        held_until=same(row.held_until),
    )


def debtor_facts(row: Any) -> DebtorFacts:
    """The facts of a debtor from its mapped row or a row of ``debtors``' columns."""
    return DebtorFacts(
        id=row.id,
        name=row.name,
        kind=row.kind,
        language=row.language,
        timezone=row.timezone,
        country=row.country,
        email=row.email,
        email_bounced=row.email_bounced,
        phone=row.phone,
        address=dict(row.address or {}),
        segment=row.segment,
        opt_out=row.opt_out,
        insolvency_procedure=row.insolvency_procedure,
        insolvency_judgment_date=row.insolvency_judgment_date,
        hold_reason=row.hold_reason,
        held_until=row.held_until,
        creditor_id=row.creditor_id,
    )


def _chunks(ids: Iterable[int]) -> Iterable[list[int]]:
    chunk: list[int] = []
    for each in ids:
        chunk.append(each)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class SqlDunningStore:
    """``handlers.dunning.DunningStore`` on a unit of work (``adapters.uow.UnitOfWork``)."""

    def __init__(self, uow: object) -> None:
        if not (isinstance(uow, Session) and is_sink(uow)):
            raise TypeError(f"the dunning store runs in a unit of work, not in a {type(uow).__name__}")
        self._session: Session = uow
        self._sink: EvidenceSink = cast(EvidenceSink, uow)  # checked by ``is_sink``
        self._records = SqlStore(uow)  # the store port, for the payment plans and planning
        self._shared = _Shared()
        self._invoices: dict[int, InvoiceFacts] = {}  # read and locked by ``due_steps``
        self._debtor: DebtorRow | None = None  # mapped: read for an installment reminder only
        self._locked_debtor: str | None = None
        # what the reads of messages found, until this unit of work records or changes one:
        # the claims of the invoices read by ``awaiting_drafts`` (and which invoices), and
        # the debtor's messages since its last one sent (``last_message_day``)
        self._claims: set[tuple[int, str, str]] = set()
        self._claims_of = array("q")  # ids, not a set of 20 000 ints kept through the reading
        self._recent: tuple[str, date | None, list[tuple[date, str, str | None]]] | None = None
        self._ahead: DebtorAhead | None = None  # the locked debtor's read-ahead, if the batch has one

    def _read(self, statement: Any, **params: Any) -> Any:
        """Execute a statement built once on the unit of work's connection, for its creditor,
        after what the unit of work holds unwritten (as its own reads would autoflush)."""
        self._session.flush()
        return self._connection().execute(statement, {"creditor": self._creditor(), **params})

    def _connection(self) -> Connection:
        return self._session.connection()

    def _creditor(self) -> str:
        creditor = getattr(self._session, "creditor", None)
        if creditor is None:
            raise RuntimeError("the dunning store reads one creditor's rows: its unit of work names none")
        return str(creditor)

    def read_ahead(self, step_ids: Sequence[int], now: datetime) -> None:
        """Read at once what the first step of each debtor of the batch reads
        (``adapters.dunning_ahead``), kept on the unit of work until its transaction ends."""
        if not isinstance(self._session, UnitOfWork) or len(step_ids) < 2:
            return
        self._session.flush()
        self._session.read_ahead = read_ahead(
            self._connection(), self._creditor(), step_ids, now, self._step, self._invoice
        )

    def _batch_read(self) -> ReadAhead | None:
        found = getattr(self._session, "read_ahead", None)
        return found if isinstance(found, ReadAhead) and found.creditor == self._creditor() else None

    def _ahead_of(self, debtor_id: str) -> DebtorAhead | None:
        """The locked debtor's read-ahead (None: it has none, or it is someone else's)."""
        ahead = self._ahead
        return ahead if ahead is not None and ahead.debtor_id == debtor_id else None

    def step(self, step_id: int) -> StepFacts | None:
        batch = self._batch_read()
        found = batch.step(step_id) if batch is not None else None
        return found if found is not None else self._live_step(step_id)

    def _live_step(self, step_id: int) -> StepFacts | None:
        row = self._read(_READ_STEP, step=step_id).first()
        return None if row is None else step_facts(row, self._shared)

    def lock_debtor(self, debtor_id: str) -> DebtorFacts | None:
        batch = self._batch_read()
        self._ahead = batch.take(debtor_id) if batch is not None else None
        if self._ahead is not None:  # locked by the batch's read-ahead
            row = self._ahead.row
        else:
            row = self._read(_LOCK_DEBTOR, debtor=debtor_id).first()
        self._debtor, self._locked_debtor = None, None if row is None else row.id
        if row is None:
            return None
        if isinstance(self._session, UnitOfWork):  # read under the lock: the evidence's salt
            self._session.know_salt(row.creditor_id, row.id, row.salt_of_debtor)
        return debtor_facts(row)

    def _debtor_row(self, debtor_id: str) -> DebtorRow:
        """The mapped row of the locked debtor: the payment plans read it as a record."""
        assert self._locked_debtor == debtor_id  # locked first
        if self._debtor is None:
            self._debtor = lock_debtor(self._session, debtor_id)  # locked already: no wait
        if self._debtor is None:
            raise LookupError(f"debtor {debtor_id} is gone")
        return self._debtor

    def due_steps(self, debtor_id: str, now: datetime) -> list[tuple[StepFacts, InvoiceFacts]]:
        due = (
            PlannedStep.debtor_id == debtor_id,
            PlannedStep.status.in_(PENDING),
            PlannedStep.event.in_(REMINDER_EVENTS),
            PlannedStep.due_at <= now,
        )
        # the invoices first, locked: re-checked by the core against payments arriving now;
        # a payment committed before the lock shows in the steps read after it (cancelled)
        of_due = select(PlannedStep.invoice_id).where(*due)
        self._lock_invoices(InvoiceRow.id.in_(of_due))
        rows = self._session.execute(
            select(*_STEP_COLUMNS)
            .join(InvoiceRow, InvoiceRow.id == PlannedStep.invoice_id)
            .where(*due)
            .order_by(InvoiceRow.due_date, InvoiceRow.number, PlannedStep.id)
            .execution_options(yield_per=CHUNK)  # fetched in batches, not all rows at once first
        )
        steps = [step_facts(row, self._shared) for row in rows]
        missing = {s.invoice_id for s in steps} - self._invoices.keys()
        for chunk in _chunks(sorted(missing)):  # invoices made since the lock, their steps due already
            self._lock_invoices(InvoiceRow.id.in_(chunk))
        return [(step, self._invoices[step.invoice_id]) for step in steps]

    def due_step_batches(
        self, debtor_id: str, now: datetime, invoices: int = BATCH_INVOICES
    ) -> Iterator[list[tuple[StepFacts, InvoiceFacts]]]:
        """``due_steps`` read ``invoices`` invoices at a time, in order of invoice id (keyset:
        each batch starts after the last invoice of the one before), each invoice whole with
        its steps in id order, locked before its steps are read. Nothing is kept from one
        batch to the next. The first step of a debtor of a batch of steps takes them from
        the batch's read-ahead, when they fit in one batch."""
        ahead = self._ahead_of(debtor_id)
        if ahead is not None and ahead.due is not None and now == self._ahead_now():
            read, ahead.due = ahead.due, None
            if len({invoice.id for _, invoice in read}) <= invoices:
                if read:
                    yield read
                return
        after = -1
        while True:
            # the batch's invoices found and locked at once, in id order, as every worker
            # locks a debtor's invoices, before their steps are read
            rows = self._read(_lock_due_invoices(invoices), debtor=debtor_id, now=now, after=after)
            locked = {row.id: invoice_facts(row, self._shared) for row in rows}
            if not locked:
                return
            ids = list(locked)
            after = ids[-1]
            batch: list[tuple[StepFacts, InvoiceFacts]] = []
            for chunk in _chunks(ids):
                rows = self._read(_DUE_STEPS_OF, debtor=debtor_id, now=now, invoices=chunk)
                batch.extend((step, locked[step.invoice_id]) for step in map(self._step, rows))
            if batch:  # every step of the batch finished since its ids were read: the next one
                yield batch
            if len(ids) < invoices:  # a short batch was the last: no read to find nothing more
                return

    def _ahead_now(self) -> datetime | None:
        batch = getattr(self._session, "read_ahead", None)
        return batch.now if isinstance(batch, ReadAhead) else None

    def _step(self, row: Any) -> StepFacts:
        return step_facts(row, self._shared)

    def _invoice(self, row: Any) -> InvoiceFacts:
        return invoice_facts(row, self._shared)

    def _lock_invoices(self, which: Any) -> None:
        """Read and lock these invoices, in id order (one order for every worker that locks
        several invoices of a debtor at once)."""
        rows = self._session.execute(
            select(*_INVOICE_COLUMNS).where(which).order_by(InvoiceRow.id).with_for_update(of=InvoiceRow)
        )
        for row in rows:
            self._invoices[row.id] = invoice_facts(row, self._shared)

    def reread_step(self, step_id: int) -> StepFacts:
        self._session.flush()  # what this unit of work changed is read back too (a skip)
        found = self._live_step(step_id)
        if found is None:
            raise LookupError(f"step {step_id} is gone")
        return found

    def open_invoices(
        self, debtor_id: str, known: Mapping[int, InvoiceFacts] | None = None
    ) -> list[InvoiceFacts]:
        rows = self._read(_OPEN_INVOICES, debtor=debtor_id)
        # an invoice locked by ``due_steps`` or known to the caller (read under the same lock)
        # is as it was read then: the same facts, not a copy
        return [self._known(row.id, known) or invoice_facts(row, self._shared) for row in rows]

    def other_open_invoices(self, debtor_id: str, held: Container[int]) -> Iterator[InvoiceFacts]:
        ahead = self._ahead_of(debtor_id)
        if ahead is not None and ahead.open_invoices is not None:
            found, ahead.open_invoices = ahead.open_invoices, None
            return (invoice for invoice in found if invoice.id not in held)
        rows = self._read(_OPEN_INVOICES, debtor=debtor_id)
        return (invoice_facts(row, self._shared) for row in rows if row.id not in held)

    def invoices(self, invoice_ids: Sequence[int]) -> list[InvoiceFacts]:
        found: dict[int, InvoiceFacts] = {}
        for chunk in _chunks(sorted(set(invoice_ids))):
            for row in self._read(_INVOICES_BY_ID, invoices=chunk):
                found[row.id] = self._invoices.get(row.id) or invoice_facts(row, self._shared)
        return [found[i] for i in invoice_ids if i in found]

    def _known(self, invoice_id: int, known: Mapping[int, InvoiceFacts] | None) -> InvoiceFacts | None:
        return self._invoices.get(invoice_id) or (known.get(invoice_id) if known else None)

    def installment_blocker(self, step_id: int, debtor_id: str) -> str | None:
        return plans.send_blocker(self._records, self._step_row(step_id), self._debtor_row(debtor_id))

    def _step_row(self, step_id: int) -> PlannedStep:
        """The mapped row of an installment reminder: the payment plans read steps as records."""
        row = self._session.get(PlannedStep, step_id, populate_existing=True)
        if row is None:
            raise LookupError(f"step {step_id} is gone")
        return row

    def recorded_claims(self, invoice_ids: Iterable[int]) -> set[tuple[int, str, str]]:
        wanted = set(invoice_ids)
        found = {claim for claim in self._claims if claim[0] in wanted}
        read_with_drafts, self._claims, self._claims_of = self._claims_of, set(), array("q")  # not kept twice
        for chunk in _chunks(sorted(wanted.difference(read_with_drafts))):
            rows = self._read(_RECORDED_CLAIMS, invoices=chunk)
            found.update((i, self._shared(s), self._shared(c)) for i, s, c in rows)
        return found

    def messages_on(self, debtor_id: str, day: date) -> list[tuple[str, str | None]]:
        if self._recent is not None and self._recent[0] == debtor_id:
            _, last, recent = self._recent
            if last is None or day >= last:  # read already with the last message's day
                return [(channel, currency) for on, channel, currency in recent if on == day]
        found = self._read(_MESSAGES_ON, debtor=debtor_id, day=day).all()
        return [(channel, (amounts or {}).get("currency")) for channel, amounts in found]

    def last_message_day(self, debtor_id: str) -> date | None:
        ahead = self._ahead_of(debtor_id)
        if ahead is not None and ahead.recent is not None:
            rows, ahead.recent = ahead.recent, None
        else:
            rows = self._read(_RECENT_MESSAGES, debtor=debtor_id).all()
        last = max((day for day, status, _, _ in rows if status not in NOT_SENT), default=None)
        recent = [(day, channel, (amounts or {}).get("currency")) for day, _, channel, amounts in rows]
        self._recent = (debtor_id, last, recent)
        return last

    def _forget_messages(self) -> None:
        """A message recorded or changed: what was read of messages is read again."""
        self._claims, self._claims_of, self._recent = set(), array("q"), None
        if self._ahead is not None:
            self._ahead.forget_messages()

    def movements(self, invoice_ids: Iterable[int]) -> dict[int, list[Movement]]:
        found: dict[int, list[Movement]] = {}
        for chunk in _chunks(sorted(set(invoice_ids))):
            found.update(movements_of(self._session, chunk))
        return found

    def installment_context(self, step_ids: Sequence[int]) -> dict[str, Any]:
        return plans.message_context(self._records, [self._step_row(i) for i in step_ids])

    def record_message(self, message: NewMessage) -> int:
        """The message and its items, with statements built once: no mapped row to flush,
        then the steps it finishes. One statement on PostgreSQL: the message, its items and
        the steps finished (``_INSERT_MESSAGE_FINISHING_STEPS``), or without steps
        (``_INSERT_MESSAGE_WITH_ITEMS``). The steps are finished apart (``_set``) when
        they are more than a chunk (a catch-up's: by chunks, as each step's lease is looked
        up in those the statement deleted) or while the session holds mapped steps (an
        installment reminder's: its copies follow). On SQLite the message, its items by
        chunks, then the steps finished."""
        self._forget_messages()
        self._session.flush()  # what the unit of work holds unwritten goes first, as a flush would
        connection = self._connection()
        values = {
            "m_creditor_id": self._creditor(),
            "m_message_id": message.message_id,
            "m_debtor_id": message.debtor_id,
            "m_channel": message.channel,
            "m_step": message.step,
            "m_local_day": message.local_day,
            "m_recipient": message.recipient,
            "m_subject": message.subject,
            "m_body_text": message.body_text,
            "m_content": message.content,
            "m_content_sha256": message.content_sha256,
            "m_amounts": message.amounts,
            "m_status": "draft" if message.draft else "pending",
            "m_attempts": 0,
            "m_lease_until": None if message.draft else message.lease_until,
            "m_created_at": message.created_at,
        }
        if connection.dialect.name == "postgresql":
            values |= self._claim_arrays(message)
            if 0 < len(message.finishes) <= CHUNK and not self._holds_steps():
                values |= {"creditor": values["m_creditor_id"], "finishes": list(message.finishes)}
                values["finished_at"] = message.created_at
                return int(connection.execute(_INSERT_MESSAGE_FINISHING_STEPS, values).scalar_one())
            pk = connection.execute(_INSERT_MESSAGE_WITH_ITEMS, values).scalar_one()
        else:
            pk = self._insert_message(connection, message, values)
        if message.finishes:  # in id order, as the steps finished together always were
            self.finish_steps(sorted(message.finishes), message.created_at)
        return int(pk)

    @staticmethod
    def _claim_arrays(message: NewMessage) -> dict[str, list[Any]]:
        """The claims bound as two arrays (PostgreSQL's one statement per message)."""
        return {
            "claim_invoices": [invoice_id for invoice_id, _ in message.claims],
            "claim_steps": [step for _, step in message.claims],
        }

    @staticmethod
    def _insert_message(connection: Connection, message: NewMessage, values: dict[str, Any]) -> int:
        """SQLite: the message, then its items by chunks."""
        pk: int = connection.execute(_INSERT_MESSAGE, values).scalar_one()
        claims = message.claims
        for start in range(0, len(claims), CHUNK):  # one statement, many rows: no mapped row each
            chunk = [  # the rows of one chunk only: 20 000 claims are not 20 000 dicts at once
                {"message_pk": pk, "invoice_id": invoice_id, "step": step, "channel": message.channel}
                for invoice_id, step in claims[start : start + CHUNK]
            ]
            connection.execute(_INSERT_ITEMS, chunk[0] if len(chunk) == 1 else chunk)
        return pk

    def awaiting_drafts(self, invoice_ids: Iterable[int]) -> dict[int, str]:
        """The drafts the invoices wait for; their claims are kept for ``recorded_claims``."""
        wanted = set(invoice_ids)
        read = self._claims_read_ahead(wanted)
        if read is not None:
            return read
        found: dict[int, str] = {}
        for chunk in _chunks(sorted(wanted)):
            rows = self._read(_CLAIMS_AND_DRAFTS, invoices=chunk)
            for invoice_id, step, channel, message_id, status in rows:
                self._claims.add((invoice_id, self._shared(step), self._shared(channel)))
                if status == DRAFT:
                    found.setdefault(invoice_id, message_id)
            self._claims_of.extend(chunk)
        return found

    def _claims_read_ahead(self, wanted: set[int]) -> dict[int, str] | None:
        """``awaiting_drafts`` from the locked debtor's read-ahead, when it read the claims
        of every invoice ``wanted`` (its due invoices); None otherwise."""
        ahead = self._ahead
        if ahead is None or ahead.claims is None or not wanted <= ahead.claims_of:
            return None
        rows, ahead.claims = ahead.claims, None
        found: dict[int, str] = {}
        for invoice_id, step, channel, message_id, status in rows:
            if invoice_id in wanted:
                self._claims.add((invoice_id, self._shared(step), self._shared(channel)))
                if status == DRAFT:
                    found.setdefault(invoice_id, message_id)
        self._claims_of.extend(sorted(wanted))
        return found

    # --- drafts (handlers.approval) -----------------------------------------------------------

    def drafts(self, step: str | None = None) -> list[DraftFacts]:
        which = [MessageRow.status == DRAFT] + ([MessageRow.step == step] if step else [])
        rows = self._session.execute(
            select(MessageRow).where(*which).order_by(MessageRow.created_at, MessageRow.id)
        )
        return [self._draft_facts(row) for row in rows.scalars().all()]

    def draft(self, message_pk: int) -> DraftFacts | None:
        row = self._session.execute(
            select(MessageRow).where(MessageRow.id == message_pk).with_for_update()
        ).scalar_one_or_none()
        return None if row is None else self._draft_facts(row)

    def _draft_facts(self, row: MessageRow) -> DraftFacts:
        claims = self._session.execute(
            select(MessageItem.invoice_id, InvoiceRow.number, MessageItem.step)
            .join(InvoiceRow, InvoiceRow.id == MessageItem.invoice_id)
            .where(MessageItem.message_pk == row.id)
            .order_by(InvoiceRow.number, MessageItem.step)
        )
        return DraftFacts(
            id=row.id,
            message_id=row.message_id,
            creditor_id=row.creditor_id,
            debtor_id=row.debtor_id,
            step=row.step,
            channel=row.channel,
            status=row.status,
            subject=row.subject,
            content_sha256=row.content_sha256,
            amounts=dict(row.amounts or {}),
            created_at=row.created_at,
            claims=tuple(Claim(i, n, s) for i, n, s in claims),
        )

    def lock_invoices(self, invoice_ids: Iterable[int]) -> list[InvoiceFacts]:
        wanted = sorted(set(invoice_ids))
        for chunk in _chunks(wanted):
            self._lock_invoices(InvoiceRow.id.in_(chunk))
        return [self._invoices[i] for i in wanted if i in self._invoices]

    def close_draft(self, message_pk: int, status: str) -> None:
        self._forget_messages()
        self._session.execute(
            update(MessageRow)
            .where(MessageRow.id == message_pk, MessageRow.status == DRAFT)
            .values(status=status)
        )

    def release_draft(self, message_pk: int, lease_until: datetime) -> None:
        self._forget_messages()
        self._session.execute(
            update(MessageRow)
            .where(MessageRow.id == message_pk, MessageRow.status == DRAFT)
            .values(status="pending", attempts=0, lease_until=lease_until)
        )

    def record_task(self, task: NewTask) -> tuple[int, bool]:
        found = self._session.execute(select(TaskRow.id).where(TaskRow.task_key == task.key)).scalar()
        if found is not None:
            return found, False
        row = TaskRow(
            task_key=task.key,
            debtor_id=task.debtor_id,
            kind=task.kind,
            step=task.step,
            phone=task.phone,
            invoice_numbers=list(task.invoice_numbers),
            amounts=dict(task.amounts),
            due_on=task.due_on,
            status="open",
            created_at=task.created_at,
        )
        self._session.add(row)
        self._session.flush()
        return row.id, True

    def skip_step(self, step_id: int, reason: str, now: datetime) -> None:
        self._set([step_id], status="skipped", reason=reason[:300], done_at=now)

    def postpone_step(self, step_id: int, until: datetime) -> None:
        self.postpone_steps([step_id], until)

    def postpone_steps(self, step_ids: Iterable[int], until: datetime) -> None:
        self._set(step_ids, status="planned", due_at=until, lease_until=None)

    def release_step(self, step_id: int) -> None:
        self._set([step_id], status="planned", lease_until=None)

    def finish_step(self, step_id: int, now: datetime, reason: str | None = None) -> None:
        self.finish_steps([step_id], now, reason)

    def finish_steps(self, step_ids: Iterable[int], now: datetime, reason: str | None = None) -> None:
        if reason is None:
            self._set(step_ids, status="done", done_at=now)
        else:
            self._set(step_ids, status="done", done_at=now, reason=reason[:300])

    def _set(self, step_ids: Iterable[int], **values: Any) -> None:
        """One UPDATE per chunk of ids; the session's copies of these rows, if it holds
        any (an installment reminder's), are updated with them. The steps' leases end
        with it (their emissions added to ``emit_count``): whether finished, released or
        postponed, a step is no longer in flight. Without such copies, the statements are
        built once per set of values and name their creditor (``_set_steps``)."""
        if self._holds_steps():
            for chunk in _chunks(step_ids):
                self._session.execute(
                    update(PlannedStep)
                    .where(PlannedStep.id.in_(chunk))
                    .values(**values, emit_count=closed_emissions())
                )
                self._session.execute(delete(StepLease).where(StepLease.step_id.in_(chunk)))
            return
        with_leases = self._connection().dialect.name == "postgresql"
        update_steps = _set_steps(tuple(sorted(values)), with_leases=with_leases)
        for chunk in _chunks(step_ids):
            self._read(update_steps, steps=chunk, **{f"new_{k}": v for k, v in values.items()})
            if not with_leases:
                self._read(_END_LEASES, steps=chunk)

    def _holds_steps(self) -> bool:
        """Whether the session holds mapped steps (the payment plans read steps as records)."""
        return any(isinstance(row, PlannedStep) for row in self._session.identity_map.values())

    def plan_deadline(self, invoice_id: int, step: str, event: str, due_at: datetime) -> None:
        exists = self._session.execute(
            select(PlannedStep.id).where(PlannedStep.invoice_id == invoice_id, PlannedStep.step == step)
        ).first()
        if exists is None:  # a step of that name is never planned twice (uq_planned_step)
            known = self._invoices.get(invoice_id)  # read by ``due_steps``; not kept by the batches
            debtor_id = known.debtor_id if known else self._debtor_of(invoice_id)
            self._records.add_step(invoice_id, debtor_id, step, event, due_at)

    def _debtor_of(self, invoice_id: int) -> str:
        found = self._session.scalar(select(InvoiceRow.debtor_id).where(InvoiceRow.id == invoice_id))
        if found is None:
            raise LookupError(f"invoice {invoice_id} is gone")
        return found

    def record_evidence(self, record: PendingRecord) -> None:
        self._sink.record_evidence(record)

    def write_evidence(self) -> int:
        return self._sink.write_evidence()
