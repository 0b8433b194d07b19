"""Messages marked sent in a block of ``UnitsOfWork.markings``: on PostgreSQL one pooled
connection held between the markings (checked out once, not once per message), each marking
still committed when it returns; the connection given back whenever a unit of work opens in
the block, and replaced when the server closed it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import event, select

from adapters.orm import MessageRow
from adapters.store import SqlUnitsOfWork, make_engine, migrate, session_factory
from handlers.ports import ScopedUnits
from tests.integration.test_mark_sent_alone import _message

NOW = datetime(2026, 4, 14, 8, 0, tzinfo=UTC)


@pytest.fixture
def engine(database_url):
    engine = make_engine(database_url, pool_size=1)
    migrate(engine)
    yield engine
    engine.dispose()


def _messages(units: SqlUnitsOfWork, count: int, creditor: str = "default") -> list[int]:
    """``count`` pending e-mails of ``creditor`` (those ``test_mark_sent_alone`` marks)."""
    return [_message(units, f"m-{creditor}-{n}", creditor) for n in range(count)]


def _statuses(engine, pks: list[int]) -> list[tuple[str, int, str | None, bool]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(MessageRow.status, MessageRow.attempts, MessageRow.tracking_id, MessageRow.record_due)
            .where(MessageRow.id.in_(pks))
            .order_by(MessageRow.id)
        )
        return [tuple(row) for row in rows]


def _checkouts(engine) -> list[int]:
    seen: list[int] = []
    event.listen(engine, "checkout", lambda *_args: seen.append(1))
    return seen


def test_each_marking_is_committed_when_it_returns_and_leaves_the_rows_mark_sent_leaves(engine):
    units = SqlUnitsOfWork(session_factory(engine))
    held, alone = _messages(units, 3), _messages(units, 3, creditor="atelier")
    other = make_engine(str(engine.url))  # another process's view: only what is committed
    try:
        with units.markings() as marks:
            for n, pk in enumerate(held):
                assert marks.mark_sent(pk, NOW, f"t-{n}", count_attempt=True) is not None
                assert _statuses(other, [pk]) == [("sent", 1, f"t-{n}", True)]
            assert marks.mark_sent(held[0], NOW, "again", count_attempt=True) is None  # sent already
    finally:
        other.dispose()
    for n, pk in enumerate(alone):
        units.mark_sent(pk, NOW, f"t-{n}", count_attempt=True, creditor="atelier")
    expected = [("sent", 1, f"t-{n}", True) for n in range(3)]
    assert _statuses(engine, held) == _statuses(engine, alone) == expected


def test_a_scoped_block_marks_only_its_creditors_messages(engine):
    units = SqlUnitsOfWork(session_factory(engine))
    ours, theirs = _messages(units, 1, creditor="atelier")[0], _messages(units, 1, creditor="other")[0]
    with ScopedUnits(units, "atelier").markings() as marks:
        assert marks.mark_sent(theirs, NOW, None, count_attempt=False) is None
        assert marks.mark_sent(ours, NOW, None, count_attempt=False) is not None
    assert [status for status, *_ in _statuses(engine, [ours, theirs])] == ["sent", "pending"]


@pytest.mark.postgres
def test_on_postgresql_a_block_of_markings_checks_out_one_connection(postgres_url):
    engine = make_engine(postgres_url, pool_size=1)
    migrate(engine)
    units = SqlUnitsOfWork(session_factory(engine))
    pks = _messages(units, 5)
    checkouts = _checkouts(engine)
    with units.markings() as marks:
        for pk in pks:
            marks.mark_sent(pk, NOW, None, count_attempt=True)
    assert len(checkouts) == 1  # 5 without the block, one per marking
    assert engine.pool.checkedout() == 0  # given back at the block's end
    engine.dispose()


@pytest.mark.postgres
def test_on_postgresql_a_unit_of_work_opened_in_the_block_takes_the_held_connection_back(postgres_url):
    """A thread holding the markings' connection never waits for a second one."""
    engine = make_engine(postgres_url, pool_size=1)
    migrate(engine)
    units = SqlUnitsOfWork(session_factory(engine))
    first, second = _messages(units, 2)
    most: list[int] = []
    event.listen(engine, "checkout", lambda *_args: most.append(engine.pool.checkedout()))
    with units.markings() as marks:
        marks.mark_sent(first, NOW, None, count_attempt=True)
        with units() as uow:
            uow.scope(None)
            assert uow.execute(select(MessageRow.status).where(MessageRow.id == first)).scalar_one() == "sent"
        marks.mark_sent(second, NOW, None, count_attempt=True)
    assert most == [1, 1, 1]  # the marking's, the unit's, the marking's: never two at once
    assert [status for status, *_ in _statuses(engine, [first, second])] == ["sent", "sent"]
    engine.dispose()


@pytest.mark.postgres
def test_on_postgresql_a_held_connection_the_server_closed_is_replaced_before_the_next_marking(
    postgres_url, postgres_admin_url
):
    import psycopg

    engine = make_engine(postgres_url, pool_size=1)
    migrate(engine)
    units = SqlUnitsOfWork(session_factory(engine))
    first, second = _messages(units, 2)
    with units.markings() as marks:
        marks.mark_sent(first, NOW, None, count_attempt=True)
        pid = marks._connection.connection.driver_connection.info.backend_pid  # type: ignore[attr-defined]
        admin_url = postgres_admin_url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))  # waits for its end
        assert marks.mark_sent(second, NOW, "t-2", count_attempt=True) is not None
    assert _statuses(engine, [first, second]) == [("sent", 1, None, True), ("sent", 1, "t-2", True)]
    engine.dispose()
