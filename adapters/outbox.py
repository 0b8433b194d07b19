"""The leased outbox on SQL (SQLite and PostgreSQL): one implementation for every kind of row.

``messages``, ``handovers`` and ``signals`` have the same outbox columns (``status``, ``attempts``,
``lease_until``, ``last_error``) and differ only in their own columns, which a ``Table``
names. Each operation is one or two short statements in the caller's transaction:

- the tick's claim reads only ids and attempt counts, ``ix_*_pending`` in lease order,
  ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (SQLite serialises writers), then leases the
  rows it read in one ``UPDATE … WHERE id IN (…)``;
- taking attempt *n* is one ``UPDATE … WHERE status = 'pending' AND attempts = n
  RETURNING …``: on PostgreSQL a second claimer waits for the row lock, then finds the
  count moved on and updates nothing; only a refused claim reads the row to say why;
- marking done and failing are single ``UPDATE … RETURNING`` statements; a retry reads the
  locked row first, since its back-off depends on the count.

``SqlMessages`` adds what a message refused for good implies beyond its own row: the
debtor's e-mail is marked bounced and the message's steps go back to ``planned``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Integer, Row, Select, Update, bindparam, select, update
from sqlalchemy import Table as Table_
from sqlalchemy.orm import Session

from adapters.connections import server_spoke
from adapters.orm import DebtorRow, HandoverRow, MessageItem, MessageRow, PlannedStep, SignalRow
from handlers.outbox import DONE_STATUS, Due, Item, Kind, Refusal, clip, refusal, retry_at


@dataclass(frozen=True)
class Table:
    """Where one kind of outbox row lives and which of its own columns the core may see or set."""

    kind: Kind
    model: Any
    done_at: str
    details: tuple[str, ...]  # read with every item
    claim_details: tuple[str, ...]  # read too when an attempt is taken (a message's bytes)
    changeable: frozenset[str]
    done_values: Mapping[str, object] = field(default_factory=dict)  # set too when marked done


MESSAGES = Table(
    kind="messages",
    model=MessageRow,
    done_at="sent_at",
    details=("message_id", "channel", "debtor_id", "content_sha256"),
    claim_details=("recipient", "subject", "content"),
    changeable=frozenset({"tracking_id"}),
    done_values={"record_due": True},  # its message.transmitted record is written after
)
HANDOVERS = Table(
    kind="handovers",
    model=HandoverRow,
    done_at="delivered_at",
    details=("case_id", "partner", "partner_kind", "channel", "idempotency_key", "response_code"),
    claim_details=(),
    changeable=frozenset({"channel", "response_code", "dossier_sha256"}),
)
SIGNALS = Table(
    kind="signals",
    model=SignalRow,
    done_at="delivered_at",
    details=("subscriber", "signal_type", "idempotency_key", "response_code"),
    claim_details=("payload",),
    changeable=frozenset({"response_code"}),
)
TABLES: Mapping[Kind, Table] = {"messages": MESSAGES, "handovers": HANDOVERS, "signals": SIGNALS}


@functools.cache
def _overdue(model: Any) -> Select[Any]:
    """The pending rows of ``model`` whose lease or back-off ran out at ``now``, the oldest
    first, at most ``limit``, locked: built once per table (the scheduler asks at every
    tick, and building the statement cost more Python than running it)."""
    return (
        select(model.id, model.attempts)
        .where(model.status == "pending", model.lease_until <= bindparam("now", type_=model.lease_until.type))
        .order_by(model.lease_until)
        .limit(bindparam("limit", type_=Integer))
        .with_for_update(skip_locked=True)
    )


class SqlOutbox:
    """The ``handlers.outbox.Outbox`` port on one table, in the session's transaction."""

    def __init__(self, session: Session, table: Table | Kind) -> None:
        self.session = session
        self.table = table if isinstance(table, Table) else TABLES[table]
        self.kind: Kind = self.table.kind
        model = self.table.model
        self._outbox_columns = (model.id, model.status, model.attempts, model.lease_until, model.last_error)
        self._details = [getattr(model, name) for name in self.table.details]
        self._claim_details = [getattr(model, name) for name in self.table.claim_details]

    # --- the scheduler's claim ---------------------------------------------------------------

    def claim_expired(self, now: datetime, lease: timedelta, limit: int) -> list[Due]:
        if limit <= 0:
            return []
        model = self.table.model
        rows = self.session.execute(_overdue(model), {"now": now, "limit": limit}).all()
        if rows:
            self.session.execute(
                update(model)
                .where(model.id.in_([row.id for row in rows]))
                .values(lease_until=now + lease)
                .execution_options(synchronize_session=False)
            )
        return [Due(row.id, row.attempts) for row in rows]

    # --- one item ----------------------------------------------------------------------------

    def get(self, item_id: int) -> Item | None:
        model = self.table.model
        row = self.session.execute(
            select(*self._outbox_columns, *self._details).where(model.id == item_id).with_for_update()
        ).first()
        return self._item(row) if row is not None else None

    def claim(
        self, item_id: int, attempt: int, now: datetime, lease: timedelta, **changes: object
    ) -> Item | Refusal:
        model = self.table.model
        row = self._update(
            [model.id == item_id, model.status == "pending", model.attempts == attempt],
            {"attempts": model.attempts + 1, "lease_until": now + lease, **self._checked(changes)},
            with_claim_details=True,
        )
        if row is not None:
            return self._item(row, with_claim_details=True)
        found = self.session.execute(select(model.status, model.attempts).where(model.id == item_id)).first()
        why = refusal(found.status if found else None, found.attempts if found else None, attempt)
        return why or Refusal.STALE  # taken by another claimer between the two statements

    def mark_done(
        self, item_id: int, now: datetime, *, count_attempt: bool = False, **changes: object
    ) -> Item | None:
        """One ``UPDATE … RETURNING`` built once per kind of row and set of changes, executed
        on the session's connection (every delivery ends here)."""
        creditor = getattr(self.session, "creditor", None)
        statement = _mark_done(self.kind, tuple(sorted(self._checked(changes))), creditor is not None)
        params = {f"set_{name}": value for name, value in changes.items()}
        params |= {"item": item_id, "now": now, "counted": 1 if count_attempt else 0, "creditor": creditor}
        self.session.flush()
        row = self.session.connection().execute(statement, params).first()
        return self._item(row) if row is not None else None

    def record_retry(
        self, item_id: int, now: datetime, error: str, *, count_attempt: bool = False, **changes: object
    ) -> Item | None:
        current = self.get(item_id)
        if current is None or current.status != "pending":
            return None
        attempts = current.attempts + (1 if count_attempt else 0)
        model = self.table.model
        row = self._update(
            [model.id == item_id],
            {
                "attempts": attempts,
                "last_error": clip(error),
                "lease_until": retry_at(now, attempts),
                **self._checked(changes),
            },
        )
        return self._item(row) if row is not None else None

    def record_failure(
        self, item_id: int, now: datetime, error: str, *, count_attempt: bool = False, **changes: object
    ) -> Item | None:
        model = self.table.model
        row = self._update(
            [model.id == item_id, model.status == "pending"],
            {
                "status": "failed",
                "last_error": clip(error),
                "lease_until": None,
                "attempts": model.attempts + (1 if count_attempt else 0),
                **self._checked(changes),
            },
        )
        return self._item(row) if row is not None else None

    # --- helpers -----------------------------------------------------------------------------

    def _checked(self, changes: Mapping[str, object]) -> dict[str, object]:
        unknown = set(changes) - self.table.changeable
        if unknown:
            raise ValueError(f"{self.kind}: cannot set {sorted(unknown)} through the outbox")
        return dict(changes)

    def _update(
        self, where: list[Any], values: dict[str, Any], *, with_claim_details: bool = False
    ) -> Row[Any] | None:
        extra = self._claim_details if with_claim_details else []
        return self.session.execute(
            update(self.table.model)
            .where(*where)
            .values(**values)
            .returning(*self._outbox_columns, *self._details, *extra)
            .execution_options(synchronize_session=False)
        ).first()

    def _item(self, row: Row[Any], *, with_claim_details: bool = False) -> Item:
        names = self.table.details + (self.table.claim_details if with_claim_details else ())
        return _item_of(row, names)


def _item_of(row: Row[Any], names: Sequence[str]) -> Item:
    """The item an outbox statement returned, with the kind's own columns ``names``."""
    mapping = row._mapping
    return Item(
        id=mapping["id"],
        status=mapping["status"],
        attempts=mapping["attempts"],
        lease_until=mapping["lease_until"],
        last_error=mapping["last_error"],
        details={name: mapping[name] for name in names},
    )


def _done_update(kind: Kind, changes: tuple[str, ...], scoped: bool, attempts: Any) -> Update:
    """The ``UPDATE`` marking the row ``:item`` done (if it is not yet), with ``attempts`` as
    its new attempt count and the ``set_<name>`` values of ``changes``; it names the creditor
    itself when the unit of work has one (``scoped``): Core statements are out of reach of
    the unit of work's creditor filter."""
    table = TABLES[kind]
    rows, done = table.model.__table__, DONE_STATUS[kind]
    where = [rows.c.id == bindparam("item"), rows.c.status != done]
    if scoped:
        where.append(rows.c.creditor_id == bindparam("creditor"))
    values = {
        "status": done,
        table.done_at: bindparam("now", type_=rows.c[table.done_at].type),
        "lease_until": None,
        "attempts": attempts,
    }
    values |= {name: bindparam(f"set_{name}", type_=rows.c[name].type) for name in changes}
    values |= table.done_values
    return update(rows).where(*where).values(values)


@functools.lru_cache(maxsize=32)
def _mark_done(kind: Kind, changes: tuple[str, ...], scoped: bool) -> Update:
    """``mark_done``'s statement: the attempt counted (``:counted``), the row returned."""
    rows = TABLES[kind].model.__table__
    counted = rows.c.attempts + bindparam("counted", type_=Integer)
    outbox = ("id", "status", "attempts", "lease_until", "last_error")
    details = TABLES[kind].details
    return _done_update(kind, changes, scoped, counted).returning(*(rows.c[c] for c in outbox + details))


def mark_sent_alone(
    engine: Engine,
    message_pk: int,
    at: datetime,
    tracking_id: str | None,
    *,
    count_attempt: bool,
    creditor: str,
) -> Item | None:
    """``SqlOutbox.mark_done`` of a message (its tracking id set) as a statement of its own
    in autocommit: one ``UPDATE … RETURNING`` is atomic by itself, so it needs no
    ``BEGIN`` and ``COMMIT`` around it: one round trip where a unit of work makes three,
    and no session. The same statement, built once, the creditor named in it."""
    with engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT")
        return _mark_sent_on(connection, message_pk, at, tracking_id, count_attempt, creditor)


def _mark_sent_on(
    connection: Connection,
    message_pk: int,
    at: datetime,
    tracking_id: str | None,
    count_attempt: bool,
    creditor: str,
) -> Item | None:
    """``mark_sent_alone``'s statement on a connection in autocommit."""
    params = {
        "set_tracking_id": tracking_id,
        "item": message_pk,
        "now": at,
        "counted": 1 if count_attempt else 0,
        "creditor": creditor,
    }
    row = connection.execute(_MARK_SENT, params).first()
    return None if row is None else _item_of(row, MESSAGES.details)


_MARK_SENT = _mark_done("messages", ("tracking_id",), True)


class HeldMarkings:
    """Messages marked sent one after the other as ``mark_sent_alone`` marks each (one
    statement in autocommit, committed when it returns), on one pooled connection held
    between markings: checked out, put in autocommit and given back once for a run of
    markings, not at each one (``UnitsOfWork.markings``).

    ``release`` gives the connection back (a unit of work about to open, the block's end, a
    marking that failed); the next marking checks one out again. A held connection the
    server has spoken on since its last answer (``server_spoke``: closed by a restart, an
    idle timeout) is given back before a marking and another checked out, whose checkout
    check pings it: as a marking that checks out its own connection would find it."""

    def __init__(self, engine: Engine, creditor: str) -> None:
        self._engine, self._creditor = engine, creditor
        self._connection: Connection | None = None

    def mark_sent(
        self,
        message_pk: int,
        at: datetime,
        tracking_id: str | None,
        *,
        count_attempt: bool,
        creditor: str | None = None,
    ) -> Item | None:
        connection = self._held()
        try:
            return _mark_sent_on(
                connection, message_pk, at, tracking_id, count_attempt, creditor or self._creditor
            )
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()  # back to the pool, out of autocommit

    def _held(self) -> Connection:
        connection = self._connection
        if connection is not None and server_spoke(connection.connection.driver_connection):
            self.release()
            connection = None
        if connection is None:
            connection = self._engine.connect()
            connection.execution_options(isolation_level="AUTOCOMMIT")
            self._connection = connection
        return connection


class SqlMessages(SqlOutbox):
    """The outbox of ``messages``, with the fall-back to post of a refused e-mail."""

    def __init__(self, session: Session) -> None:
        super().__init__(session, MESSAGES)

    def fall_back_to_post(self, item_id: int, now: datetime) -> int:
        """Mark the debtor's e-mail bounced and plan again, now, the steps the message carried.

        The send path then records a letter for each (invoice, step) that has none yet,
        since the debtor's e-mail is marked bounced. Returns how many steps were planned.
        """
        owner = self.session.execute(
            select(MessageRow.creditor_id, MessageRow.debtor_id).where(MessageRow.id == item_id)
        ).one()
        self.session.execute(
            update(DebtorRow)
            .where(DebtorRow.creditor_id == owner.creditor_id, DebtorRow.id == owner.debtor_id)
            .values(email_bounced=True)
            .execution_options(synchronize_session=False)
        )
        pairs = self.session.execute(
            select(MessageItem.invoice_id, MessageItem.step).where(MessageItem.message_pk == item_id)
        ).all()
        for invoice_id, step in pairs:
            self.session.execute(
                update(PlannedStep)
                .where(
                    PlannedStep.invoice_id == invoice_id,
                    PlannedStep.step == step,
                    PlannedStep.status == "done",
                )
                .values(status="planned", due_at=now, lease_until=None, reason="e-mail refused: sent by post")
                .execution_options(synchronize_session=False)
            )
        return len(pairs)

    def unrecorded(self, sent_before: datetime, limit: int) -> list[int]:
        """Up to ``limit`` messages sent at or before ``sent_before`` whose record is still due,
        oldest first: a read of the partial index ``ix_messages_record_due`` alone."""
        if limit <= 0:
            return []
        scoped = getattr(self.session, "creditor", None)
        statement = _unrecorded(scoped is not None)
        params = {"before": sent_before, "limit": limit, "creditor": scoped}
        self.session.flush()
        return list(self.session.connection().execute(statement, params).scalars())

    def take_unrecorded(self, item_ids: Sequence[int]) -> list[Item]:
        """Those of these messages whose record is due, no longer due (one ``UPDATE …
        RETURNING``, the rows locked in id order first): each is taken by one transaction
        only, a second taker waits for the first to end, then finds nothing to take."""
        if not item_ids:
            return []
        creditor = getattr(self.session, "creditor", None)
        params = {"items": sorted(set(item_ids)), "creditor": creditor}
        self.session.flush()
        rows = self.session.connection().execute(_take_unrecorded(creditor is not None), params)
        taken = [self._item(row) for row in rows]
        return sorted(taken, key=lambda item: item.id)

    def _item(self, row: Row[Any], *, with_claim_details: bool = False) -> Item:
        item = super()._item(row, with_claim_details=with_claim_details)
        mapping = row._mapping
        extra = {name: mapping[name] for name in _TRANSMISSION if name in mapping}
        return replace(item, details={**item.details, **extra}) if extra else item


# what a message's ``message.transmitted`` record says beyond the outbox's details
_TRANSMISSION = ("sent_at", "tracking_id")
_MESSAGE_ROWS: Table_ = MessageRow.__table__  # type: ignore[assignment]


@functools.lru_cache(maxsize=2)
def _unrecorded(scoped: bool) -> Select[Any]:
    rows = _MESSAGE_ROWS
    where = [rows.c.record_due, rows.c.sent_at <= bindparam("before", type_=rows.c.sent_at.type)]
    if scoped:
        where.append(rows.c.creditor_id == bindparam("creditor"))
    return select(rows.c.id).where(*where).order_by(rows.c.sent_at, rows.c.id).limit(bindparam("limit"))


@functools.lru_cache(maxsize=2)
def _take_unrecorded(scoped: bool) -> Update:
    rows = _MESSAGE_ROWS
    where = [rows.c.id.in_(bindparam("items", expanding=True)), rows.c.record_due]
    if scoped:
        where.append(rows.c.creditor_id == bindparam("creditor"))
    locked = select(rows.c.id).where(*where).order_by(rows.c.id).with_for_update()
    outbox = ("id", "status", "attempts", "lease_until", "last_error")
    returned = outbox + MESSAGES.details + _TRANSMISSION
    return (
        update(rows)
        .where(rows.c.id.in_(locked), rows.c.record_due)
        .values(record_due=False)
        .returning(*(rows.c[name] for name in returned))
    )
