"""A message marked sent by a delivery (``UnitsOfWork.mark_sent``): the same row as the unit
of work's ``mark_done`` leaves, committed when the call returns, only for a unit acting for the
message's creditor; on PostgreSQL one statement and no ``BEGIN``/``COMMIT`` around it, and the
pooled connection it used goes back to transactions (on SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import event, func, select

from adapters.orm import MessageRow
from adapters.store import SqlUnitsOfWork, make_engine, migrate, session_factory, transaction
from handlers.ports import ScopedUnits

NOW = datetime(2026, 4, 14, 8, 0, tzinfo=UTC)
LEASE_UNTIL = NOW + timedelta(minutes=5)


@pytest.fixture
def units(database_url):
    engine = make_engine(database_url, pool_size=1)
    migrate(engine)
    yield SqlUnitsOfWork(session_factory(engine))
    engine.dispose()


def _message(units: SqlUnitsOfWork, key: str, creditor: str = "default") -> int:
    with units() as uow:
        uow.scope(creditor)
        row = MessageRow(
            message_id=f"<{key}@example>",
            debtor_id="D-1",
            channel="email",
            step="first",
            local_day=date(2026, 4, 14),
            recipient="compta@example",
            subject="Rappel",
            body_text="Bonjour",
            content=b"bytes",
            content_sha256="ab" * 32,
            amounts={},
            status="pending",
            attempts=0,
            lease_until=LEASE_UNTIL,
            created_at=NOW,
        )
        uow.add(row)
        uow.flush()
        return row.id


_COLUMNS = (
    MessageRow.status,
    MessageRow.attempts,
    MessageRow.lease_until,
    MessageRow.sent_at,
    MessageRow.tracking_id,
    MessageRow.record_due,
)


def _row(units: SqlUnitsOfWork, pk: int) -> tuple:
    with units() as uow:
        uow.scope(None)
        return tuple(uow.execute(select(*_COLUMNS).where(MessageRow.id == pk)).one())


def test_it_leaves_the_row_a_unit_of_work_leaves_and_returns_the_same_item(units):
    alone, in_a_unit = _message(units, "alone"), _message(units, "unit")
    marked = units.mark_sent(alone, NOW, "t-1", count_attempt=True)
    with units() as uow:
        expected = uow.messages().mark_done(in_a_unit, NOW, count_attempt=True, tracking_id="t-1")
    assert marked is not None and expected is not None
    assert _row(units, alone) == _row(units, in_a_unit) == ("sent", 1, None, NOW, "t-1", True)
    assert (marked.status, marked.attempts, marked.lease_until) == ("sent", 1, None)
    assert marked.details == {**expected.details, "message_id": "<alone@example>"}
    assert units.mark_sent(alone, NOW + timedelta(seconds=1), "t-2", count_attempt=True) is None  # sent
    assert _row(units, alone) == ("sent", 1, None, NOW, "t-1", True)


def test_it_marks_only_a_message_of_the_creditor_it_acts_for(units):
    atelier = _message(units, "atelier", creditor="atelier")
    assert units.mark_sent(atelier, NOW, None, count_attempt=False) is None  # acts for "default"
    assert ScopedUnits(units, "other").mark_sent(atelier, NOW, None, count_attempt=False) is None
    assert _row(units, atelier)[0] == "pending"
    sent = ScopedUnits(units, "atelier").mark_sent(atelier, NOW, None, count_attempt=False)
    assert sent is not None and _row(units, atelier) == ("sent", 0, None, NOW, None, True)


def test_the_pooled_connection_it_used_rolls_back_a_failed_unit_of_work_afterwards(units):
    """The pool has one connection: the mark and the unit of work share it."""
    pk, other = _message(units, "first"), _message(units, "second")
    units.mark_sent(pk, NOW, None, count_attempt=True)
    with pytest.raises(RuntimeError), units() as uow:
        uow.messages().mark_done(other, NOW, count_attempt=True)
        raise RuntimeError("the unit of work fails after its write")
    assert _row(units, other)[0] == "pending"
    with units() as uow:
        uow.scope(None)
        assert uow.execute(select(func.count()).select_from(MessageRow)).scalar_one() == 2


@pytest.mark.postgres
def test_on_postgresql_it_is_one_statement_with_no_transaction_around_it(postgres_url, tmp_path):
    engine = make_engine(postgres_url, pool_size=1)
    migrate(engine)
    units = SqlUnitsOfWork(session_factory(engine))
    pk = _message(units, "traced")
    trace = tmp_path / "protocol.trace"
    statements: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _traced(connection, _cursor, statement, *_args):
        statements.append(statement)
        connection.connection.driver_connection.pgconn.trace(trace_file.fileno())

    with trace.open("w") as trace_file:
        units.mark_sent(pk, NOW, None, count_attempt=True)
        with units() as uow:  # a unit of work for comparison, traced the same way
            uow.scope(None)
            uow.execute(select(MessageRow.id).where(MessageRow.id == pk)).scalar_one()
            sent_in_unit = len(statements)
    engine.dispose()
    sent = trace.read_text()
    assert statements[0].startswith("UPDATE messages SET status=") and sent_in_unit == 2
    # the libpq trace of the connection: the mark is one Parse/Bind/Execute/Sync, after which
    # the server is idle ("I": no transaction open); the unit of work opens one and commits it
    mark, unit = sent.split("BEGIN", 1)
    assert "UPDATE messages SET" in mark and "ReadyForQuery\t I" in mark and "COMMIT" not in mark
    assert "SELECT messages.id" in unit and "COMMIT" in unit
    with transaction(session_factory(make_engine(postgres_url))) as uow:
        uow.scope(None)
        assert uow.execute(select(MessageRow.status).where(MessageRow.id == pk)).scalar_one() == "sent"
