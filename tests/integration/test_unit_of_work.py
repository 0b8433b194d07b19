"""The unit of work (adapters/uow.py): evidence chained at commit, tasks handed over after it,
and what a rolled-back savepoint added dropped with it — on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from adapters.orm import EvidenceHead, EvidenceRecord, ProcessedMessage, RejectedEvent
from adapters.store import SqlUnitsOfWork, transaction
from handlers import evidence

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
