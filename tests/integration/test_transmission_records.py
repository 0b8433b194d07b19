"""The ``message.transmitted`` records, written after the marking of each message sent:
together at the end of a batch, or by the scheduler's sweep when a crash came between the
marking and the records. Each message gets its record once, whoever writes it, and the
chain verifies. SQLite and PostgreSQL (concurrent writers: PostgreSQL only)."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from typing import Any, cast

import pytest
from sqlalchemy import select

from adapters.orm import EvidenceRecord, MessageRow
from adapters.store import transaction
from handlers import delivery
from handlers.ports import VirtualClock
from relance.reports import verify_chain
from scheduler.loop import safe_tick
from scheduler.tick import tick
from tests.integration.test_flow import at
from tests.support import DEBTOR, InlinePublisher, ingest, invoice_issued, make_test_app

START = at("2026-03-02 10:00")
DUE = at("2026-03-27 09:00")  # the pre-due step of invoices due 1 April


def _app_with_messages(url: str, tmp_path, count: int):
    """An app whose ``count`` debtors each have one message recorded and transmitted (to
    files), its record written or not as the test decides."""
    app = make_test_app(url, tmp_path, START)
    debtors = [DEBTOR | {"id": f"D-{n}", "email": f"d{n}@acme.example"} for n in range(1, count + 1)]
    ingest(app, *(invoice_issued(f"F-{n}", "2026-04-01", debtor=d) for n, d in enumerate(debtors, 1)))
    return app


def _tick_and_run(app, now) -> None:
    cast(VirtualClock, app.clock).set(now)
    tick(app.sessions, app.publisher, now, lease=app.ctx.lease, batch_size=50)
    cast(InlinePublisher, app.publisher).drain()


def _messages(app) -> list[tuple[str, str, bool]]:
    with transaction(app.sessions) as session:
        session.scope(None)
        rows = session.execute(
            select(MessageRow.message_id, MessageRow.status, MessageRow.record_due).order_by(MessageRow.id)
        ).all()
    return [tuple(row) for row in rows]


def _transmitted(app) -> list[Any]:
    """The ``message.transmitted`` records: message id, time, payload, in chain order."""
    records = EvidenceRecord.__table__
    with transaction(app.sessions) as session:
        return list(
            session.connection().execute(
                select(records.c.message_id, records.c.at, records.c.payload)
                .where(records.c.kind == "message.transmitted")
                .order_by(records.c.creditor_id, records.c.seq)
            )
        )


def _crash_before_the_records(app, monkeypatch) -> None:
    """The steps run and their messages are transmitted and marked sent; the process dies
    before the batch's records are written."""

    def killed(*_args, **_kwargs):
        raise SystemExit("process killed between the marking and the records")

    with monkeypatch.context() as patched:
        patched.setattr(delivery, "record_transmitted", killed)
        with pytest.raises(SystemExit):
            _tick_and_run(app, DUE)


def test_each_message_sent_gets_one_record_dated_when_its_channel_accepted_it(database_url, tmp_path):
    app = _app_with_messages(database_url, tmp_path, 3)
    _tick_and_run(app, DUE)

    assert [(status, due) for _, status, due in _messages(app)] == [("sent", False)] * 3
    records = _transmitted(app)
    assert sorted(r.message_id for r in records) == sorted(m for m, _, _ in _messages(app))
    with transaction(app.sessions) as session:
        session.scope(None)
        sent_at = dict(session.execute(select(MessageRow.message_id, MessageRow.sent_at)).all())
    for record in records:
        assert record.at == sent_at[record.message_id]  # when the channel accepted it
        assert set(json.loads(record.payload)) == {
            "message_id",
            "channel",
            "content_sha256",
            "tracking_id",
            "attempts",
        }
    assert verify_chain(app).ok
    app.dispose()


def test_a_crash_between_the_marking_and_the_records_is_closed_by_the_sweep_once(
    database_url, tmp_path, monkeypatch
):
    app = _app_with_messages(database_url, tmp_path, 1)
    _crash_before_the_records(app, monkeypatch)
    ((message_id, status, due),) = _messages(app)
    assert (status, due) == ("sent", True)  # the channel accepted it, it is marked sent
    assert _transmitted(app) == []
    assert verify_chain(app).ok  # a record not yet written is no hole in the chain

    lease = app.ctx.lease
    # within a lease of the marking, the record is left to the batch that marked it
    assert delivery.record_left_transmissions(app.units, DUE + lease - timedelta(seconds=1), lease) == 0
    assert delivery.record_left_transmissions(app.units, DUE + lease, lease) == 1
    assert delivery.record_left_transmissions(app.units, DUE + lease, lease) == 0  # once
    (record,) = _transmitted(app)
    assert (record.message_id, record.at) == (message_id, DUE)  # dated when it was accepted
    assert _messages(app) == [(message_id, "sent", False)]
    # the batch that marked it, were it to write its records now, writes nothing
    with app.units() as uow:
        uow.scope("default")
        with transaction(app.sessions) as session:
            session.scope(None)
            (pk,) = session.execute(select(MessageRow.id)).scalars().all()
        assert delivery.record_transmitted(uow, [pk]) == 0
    assert len(_transmitted(app)) == 1
    assert verify_chain(app).ok
    app.dispose()


def test_the_scheduler_writes_the_records_a_crash_left_behind_a_lease_later(
    database_url, tmp_path, monkeypatch
):
    app = _app_with_messages(database_url, tmp_path, 2)
    _crash_before_the_records(app, monkeypatch)
    assert _transmitted(app) == []

    cast(VirtualClock, app.clock).set(DUE + app.ctx.lease / 2)
    safe_tick(app)
    assert _transmitted(app) == []
    cast(VirtualClock, app.clock).set(DUE + app.ctx.lease + timedelta(seconds=1))
    safe_tick(app)
    # the first message was marked sent before the crash; the second, never transmitted,
    # is emitted again by the same tick
    first, second = _messages(app)
    assert (first[1:], second[1:]) == (("sent", False), ("pending", False))
    assert [r.message_id for r in _transmitted(app)] == [first[0]]
    cast(InlinePublisher, app.publisher).drain()
    assert [r.message_id for r in _transmitted(app)] == [first[0], second[0]]
    assert [m[1:] for m in _messages(app)] == [("sent", False)] * 2
    assert verify_chain(app).ok
    app.dispose()


@pytest.mark.postgres
def test_two_sweeps_at_once_write_each_record_once(postgres_url, tmp_path, monkeypatch):
    app = _app_with_messages(postgres_url, tmp_path, 30)
    with monkeypatch.context() as patched:  # each batch lost before writing its records
        patched.setattr(delivery, "record_transmitted", lambda *_args, **_kwargs: 0)
        _tick_and_run(app, DUE)
    assert [due for _, _, due in _messages(app)] == [True] * 30
    later = DUE + app.ctx.lease + timedelta(seconds=1)
    barrier = threading.Barrier(3)
    written: list[int] = []

    def sweep() -> None:
        barrier.wait()
        written.append(delivery.record_left_transmissions(app.units, later, app.ctx.lease))

    def batch() -> None:  # the batch's own write of the same records, at the same moment
        with transaction(app.sessions) as session:
            session.scope(None)
            pks = session.execute(select(MessageRow.id).order_by(MessageRow.id.desc())).scalars().all()
        barrier.wait()
        with app.units() as uow:
            uow.scope("default")
            written.append(delivery.record_transmitted(uow, pks))

    threads = [threading.Thread(target=sweep), threading.Thread(target=sweep), threading.Thread(target=batch)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(written) == 30
    records = _transmitted(app)
    assert sorted(r.message_id for r in records) == sorted(m for m, _, _ in _messages(app))
    assert all(not due for _, _, due in _messages(app))
    assert verify_chain(app).ok
    app.dispose()
