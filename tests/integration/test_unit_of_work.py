"""The unit of work (adapters/uow.py): evidence chained at commit, tasks handed over after it,
and what a rolled-back savepoint added dropped with it — on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from adapters.orm import EvidenceHead, EvidenceRecord, PlannedStep, ProcessedMessage, RejectedEvent
from adapters.store import SqlUnitsOfWork, transaction
from handlers import evidence
from handlers.store import NewInvoice, StepFilter

NOW = datetime(2026, 3, 16, 9, 0, tzinfo=UTC)


def kinds(sessions) -> list[str]:
    with transaction(sessions) as uow:
        return list(uow.scalars(select(EvidenceRecord.kind).order_by(EvidenceRecord.seq)))


def test_records_added_in_a_transaction_are_chained_when_it_commits(sessions):
    with transaction(sessions) as uow:
        evidence.append(uow, "event.accepted", NOW, {"n": 1}, debtor_id="D-1")
        evidence.append(uow, "reminder.sent", NOW, {"n": 2}, invoice_numbers=["F-2", "F-1"])
        # nothing is written before the commit: the chain head is not locked yet
        assert uow.scalar(select(func.count()).select_from(EvidenceRecord)) == 0
    with transaction(sessions) as uow:
        records = list(uow.scalars(select(EvidenceRecord).order_by(EvidenceRecord.seq)))
        head = uow.get(EvidenceHead, 1)
        assert [(r.seq, r.kind, r.invoice_numbers) for r in records] == [
            (1, "event.accepted", []),
            (2, "reminder.sent", ["F-1", "F-2"]),
        ]
        assert records[1].prev_hash == records[0].hash
        assert head is not None and (head.seq, head.hash) == (2, records[1].hash)
        assert evidence.verify(records, head).ok


def test_a_transaction_that_fails_writes_none_of_its_records(sessions):
    with pytest.raises(RuntimeError), transaction(sessions) as uow:
        evidence.append(uow, "reminder.sent", NOW, {"n": 1})
        raise RuntimeError("the send could not be recorded")
    assert kinds(sessions) == []


def test_a_rolled_back_savepoint_drops_its_records_and_tasks_and_keeps_the_others(sessions):
    with transaction(sessions) as uow:
        evidence.append(uow, "event.accepted", NOW, {"n": 1})
        uow.after_commit("task-kept")
        with pytest.raises(ValueError), uow.begin_nested():
            evidence.append(uow, "event.parked", NOW, {"n": 2})
            uow.after_commit("task-dropped")
            raise ValueError("this event is refused")
        with uow.begin_nested():
            evidence.append(uow, "payment.received", NOW, {"n": 3})
        tasks = uow.take_tasks()
    assert tasks == ["task-kept"]
    assert kinds(sessions) == ["event.accepted", "payment.received"]


def test_records_written_early_for_a_read_are_not_written_again_at_commit(sessions):
    with transaction(sessions) as uow:
        evidence.append(uow, "case.escalated", NOW, {"n": 1})
        assert evidence.write_pending(uow) == 1  # a dossier read in the same transaction sees it
        evidence.append(uow, "case.handed_over", NOW, {"n": 2})
    assert kinds(sessions) == ["case.escalated", "case.handed_over"]


def test_two_transactions_one_after_the_other_continue_one_chain(sessions):
    for n in range(3):
        with transaction(sessions) as uow:
            evidence.append(uow, "event.accepted", NOW, {"n": n})
    with transaction(sessions) as uow:
        records = list(uow.scalars(select(EvidenceRecord).order_by(EvidenceRecord.seq)))
        assert [r.seq for r in records] == [1, 2, 3]
        assert evidence.verify(records, uow.get(EvidenceHead, 1)).ok


def test_a_plain_session_cannot_record_evidence(sessions):
    plain = sessionmaker(sessions.kw["bind"])
    with plain() as session, pytest.raises(TypeError, match="unit of work"):
        evidence.append(session, "event.accepted", NOW, {})


def test_a_broker_message_remembered_once_is_refused_the_second_time_and_its_work_undone(sessions):
    units = SqlUnitsOfWork(sessions)
    with units() as uow:
        assert uow.remember_message("msg-1", "invoice.due", NOW) is True
    with pytest.raises(LookupError), units() as uow:
        evidence.append(uow, "reminder.sent", NOW, {"n": 1})
        assert uow.remember_message("msg-1", "invoice.due", NOW) is False
        raise LookupError("the caller leaves the unit of work, which rolls it back")
    with transaction(sessions) as uow:
        rows = list(uow.execute(select(ProcessedMessage.message_id, ProcessedMessage.actor)))
    assert [tuple(r) for r in rows] == [("msg-1", "invoice.due")]
    assert kinds(sessions) == []


def test_a_rejected_event_is_stored_through_the_port_with_its_line(sessions):
    with SqlUnitsOfWork(sessions)() as uow:
        uow.store_rejected(
            event_id=None, raw="not json", reason="json: bad", source="feed", line_no=7, received_at=NOW
        )
    with transaction(sessions) as uow:
        row = uow.execute(select(RejectedEvent)).scalar_one()
    assert (row.raw, row.reason, row.source, row.line_no, row.replayed_at) == (
        "not json",
        "json: bad",
        "feed",
        7,
        None,
    )


def _invoice(uow, number: str) -> int:
    """A stored invoice (and its debtor) to plan steps for; its id."""
    store = uow.store
    debtor = store.add_debtor("D-1")
    debtor.name, debtor.kind, debtor.email, debtor.updated_at = "Client SAS", "business", "d@example.com", NOW
    new = NewInvoice(
        number=number,
        debtor_id="D-1",
        issue_date=date(2026, 3, 1),
        due_date=date(2026, 3, 31),
        currency="EUR",
        amount_due=Decimal("120.00"),
        late_penalty_rate=None,
        payment_url=None,
        delivered_on=None,
    )
    return store.add_invoice(new, NOW).id


def _steps(sessions) -> list[tuple[str, str, str]]:
    with transaction(sessions) as uow:
        rows = uow.execute(select(PlannedStep).order_by(PlannedStep.step)).scalars()
        return [(r.creditor_id, r.step, r.status) for r in rows]


def test_planned_steps_are_written_at_the_flush_before_a_query_that_reads_them(sessions):
    with transaction(sessions) as uow:
        invoice_id = _invoice(uow, "F-1")
        uow.store.add_step(invoice_id, "D-1", "reminder_1", "reminder.due", NOW)
        assert uow.has_unflushed_rows()
        found = uow.store.steps_of(invoice_id, ["reminder.due"])  # the query flushes them first
        assert [(s.step, s.status, s.due_at) for s in found] == [("reminder_1", "planned", NOW)]
        assert not uow.has_unflushed_rows()
        assert uow.store.cancel_pending(invoice_id, "paid", StepFilter()) == 1
    assert _steps(sessions) == [("default", "reminder_1", "cancelled")]


def test_a_rolled_back_savepoint_drops_the_steps_it_planned_and_keeps_the_others(sessions):
    with transaction(sessions) as uow:
        invoice_id = _invoice(uow, "F-1")
        uow.store.add_step(invoice_id, "D-1", "kept_before", "reminder.due", NOW)
        with pytest.raises(ValueError), uow.begin_nested():
            uow.store.add_step(invoice_id, "D-1", "dropped", "reminder.due", NOW)
            raise ValueError("this event is refused")
        with uow.begin_nested():
            uow.store.add_step(invoice_id, "D-1", "kept_after", "reminder.due", NOW)
    assert _steps(sessions) == [("default", "kept_after", "planned"), ("default", "kept_before", "planned")]


def test_steps_and_records_of_a_failed_transaction_are_not_written(sessions):
    with pytest.raises(RuntimeError), transaction(sessions) as uow:
        invoice_id = _invoice(uow, "F-1")
        uow.store.add_step(invoice_id, "D-1", "reminder_1", "reminder.due", NOW)
        evidence.append(uow, "event.accepted", NOW, {"n": 1})
        uow.flush()
        raise RuntimeError("the batch fails")
    assert _steps(sessions) == []
    assert kinds(sessions) == []


def test_steps_planned_in_a_savepoint_are_written_before_it_is_released(sessions):
    """The steps wait as plain rows, not as objects SQLAlchemy tracks: the unit of work
    tells SQLAlchemy it is not clean while they wait (``UnitOfWork._is_clean``, a hook of
    SQLAlchemy's own, pinned in constraints.txt), so releasing the savepoint flushes them.
    A statement on the connection, which never autoflushes, then sees the row."""
    with transaction(sessions) as uow:
        invoice_id = _invoice(uow, "F-1")
        uow.flush()
        with uow.begin_nested():
            uow.store.add_step(invoice_id, "D-1", "reminder_1", "reminder.due", NOW)
        assert not uow.has_unflushed_rows()
        count = uow.connection().execute(select(func.count()).select_from(PlannedStep)).scalar()
        assert count == 1
