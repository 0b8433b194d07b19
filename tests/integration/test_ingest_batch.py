"""``relance ingest`` applies a batch in one transaction without a savepoint per event.

What each event sees and leaves is the same as with one savepoint per event (as the broker
path and ``relance inbox replay`` apply events): checked event by event below and, on a
feed like a real one, by comparing the whole store with the store the savepoint path
leaves. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import gc
import io
import json
import logging
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import select

from adapters.ingest_batch import Batch
from adapters.orm import (
    DebtorRow,
    EvidenceHead,
    EvidenceRecord,
    InboxEvent,
    InvoiceRow,
    PaymentRow,
    PlannedStep,
    RejectedEvent,
)
from adapters.store import transaction
from config.logging import configure_logging
from handlers import accounting
from handlers.service import ingest_one
from intake import ingest as ingest_module
from intake.ingest import _lines, ingest_stream
from tests.support import DEBTOR, invoice_issued, make_test_app, payment

START = datetime(2026, 3, 12, 9, tzinfo=UTC)


@pytest.fixture
def app(database_url, tmp_path):
    application = make_test_app(database_url, tmp_path, START)
    yield application
    application.dispose()


def feed(app, *events: Any, batch_size: int = 500) -> tuple[dict, list[str]]:
    lines = [e if isinstance(e, str) else json.dumps(e) for e in events]
    out = io.StringIO()
    counts = ingest_stream(
        app, io.BytesIO(("\n".join(lines) + "\n").encode()), "feed.jsonl", out, batch_size=batch_size
    )
    return counts, out.getvalue().splitlines()


def invoice(app, number: str) -> InvoiceRow:
    """The stored invoice; fails when there is none."""
    with transaction(app.sessions) as session:
        return session.execute(select(InvoiceRow).where(InvoiceRow.number == number)).scalar_one()


def stored(app, number: str) -> bool:
    with transaction(app.sessions) as session:
        found = session.execute(select(InvoiceRow.id).where(InvoiceRow.number == number)).first()
    return found is not None


def inbox(app) -> dict[str, tuple[str, str | None]]:
    with transaction(app.sessions) as session:
        return {
            row.event_id: (row.status, row.waiting_for)
            for row in session.execute(select(InboxEvent)).scalars()
        }


def rejected(app) -> list[tuple[str | None, int | None, str]]:
    with transaction(app.sessions) as session:
        return [
            (row.event_id, row.line_no, row.reason)
            for row in session.execute(select(RejectedEvent).order_by(RejectedEvent.id)).scalars()
        ]


def plan(numbers: list[str], total: str, event_id: str = "plan-1") -> dict:
    return {
        "event_id": event_id,
        "type": "payment_plan.agreed",
        "occurred_at": "2026-03-10T10:00:00+01:00",
        "debtor_id": "D-1",
        "invoice_numbers": numbers,
        "installments": [{"due_date": "2026-04-15", "amount": total}],
    }


def test_a_bad_line_in_the_middle_of_a_batch_keeps_the_others_and_its_line_number(app):
    bad_money = json.dumps(payment("F-1", "10.00", "2026-03-05")).replace('"10.00"', "10.0")
    counts, out = feed(
        app,
        invoice_issued("F-1", "2026-04-01"),
        "{not json",
        payment("F-1", "200.00", "2026-03-05"),
        bad_money,
        invoice_issued("F-2", "2026-04-01"),
    )
    assert counts == {"accepted": 3, "duplicate": 0, "rejected": 2}
    assert [line.split(":")[0] for line in out[:-1]] == ["line 2", "line 4"]
    assert [(event_id, line) for event_id, line, _ in rejected(app)] == [
        (None, 2),
        ("pay-F-1-10.00-2026-03-05", 4),
    ]
    assert invoice(app, "F-1").paid == 200
    assert stored(app, "F-2")


def test_an_event_the_applier_rejects_leaves_nothing_and_the_batch_goes_on(app):
    counts, out = feed(
        app,
        invoice_issued("F-1", "2026-04-01"),
        plan(["F-1"], "999.00"),  # the open balance is 1200.00
        payment("F-1", "200.00", "2026-03-05"),
        plan(["F-1"], "1000.00", event_id="plan-2"),
    )
    assert counts == {"accepted": 3, "duplicate": 0, "rejected": 1}
    assert out[0] == "line 2: rejected: installments: total 999.00 differs from the open balance 1200.00"
    assert rejected(app) == [
        ("plan-1", 2, "installments: total 999.00 differs from the open balance 1200.00")
    ]
    assert "plan-1" not in inbox(app)
    f1 = invoice(app, "F-1")
    assert (f1.paid, f1.in_payment_plan) == (200, True)
    # the rejected id can be used again: nothing of the rejected event was kept
    counts, _ = feed(app, plan(["F-1"], "1000.00"))
    assert counts["rejected"] == 1  # the invoice is already in plan-2, nothing else
    assert rejected(app)[-1][2] == "invoice_numbers: F-1 is already in an active payment plan"


def test_duplicates_inside_one_batch(app):
    first = invoice_issued("F-1", "2026-04-01", event_id="evt-1")
    other = invoice_issued("F-2", "2026-04-01", event_id="evt-1")
    counts, out = feed(app, first, first, json.dumps(first, indent=1).replace("\n", " "), other)
    assert counts == {"accepted": 1, "duplicate": 2, "rejected": 1}
    assert out[0] == "line 4: rejected: event_id: 'evt-1' was already used by a different event"
    assert not stored(app, "F-2")
    # and in the next batch, against what the first one stored
    counts, _ = feed(app, first, other)
    assert counts == {"accepted": 0, "duplicate": 1, "rejected": 1}


def test_parked_then_released_within_a_batch_and_across_batches(app):
    other = dict(DEBTOR, id="D-2", name="Bleu SARL")
    counts, _ = feed(
        app,
        payment("F-1", "200.00", "2026-03-05"),
        {
            "event_id": "ins-1",
            "type": "debtor.insolvency_opened",
            "occurred_at": "2026-03-20T10:00:00+01:00",
            "debtor_id": "D-2",
            "procedure": "sauvegarde",
            "judgment_date": "2026-03-20",
        },
        invoice_issued("F-1", "2026-04-01"),
        payment("F-9", "50.00", "2026-03-06"),
        invoice_issued("F-2", "2026-04-01", debtor=other),
        payment("F-1", "100.00", "2026-03-07"),
        batch_size=3,
    )
    assert counts == {"accepted": 6, "duplicate": 0, "rejected": 0}
    state = inbox(app)
    assert state["pay-F-1-200.00-2026-03-05"] == ("applied", None)  # released in its batch
    assert state["ins-1"] == ("applied", None)  # released by the next batch
    assert state["pay-F-9-50.00-2026-03-06"] == ("parked", "invoice:F-9")
    assert invoice(app, "F-1").paid == 300
    counts, _ = feed(app, invoice_issued("F-9", "2026-04-01"))
    assert inbox(app)["pay-F-9-50.00-2026-03-06"] == ("applied", None)
    assert invoice(app, "F-9").paid == 50


def test_an_invoice_issued_twice_in_a_batch_is_updated_and_planned_once(app):
    counts, _ = feed(
        app,
        invoice_issued("F-1", "2026-04-01", event_id="a"),
        invoice_issued("F-1", "2026-04-20", "900.00", event_id="b"),
        invoice_issued("F-2", "2026-04-01", event_id="c"),
    )
    assert counts["accepted"] == 3
    f1 = invoice(app, "F-1")
    assert (f1.due_date, f1.amount_due) == (date(2026, 4, 20), 900)
    with transaction(app.sessions) as session:
        steps = (
            session.execute(select(PlannedStep.step).where(PlannedStep.invoice_id == f1.id)).scalars().all()
        )
    assert len(steps) == len(set(steps)) > 0


def test_nothing_of_a_batch_outlives_it(app, monkeypatch):
    made = []
    init, parse = Batch.__init__, ingest_module.parse_line

    def tracked(self, *args, **kwargs):
        init(self, *args, **kwargs)
        made.append(weakref.ref(self))

    def parsed(raw):
        line = parse(raw)
        made.append(weakref.ref(line))
        return line

    monkeypatch.setattr(Batch, "__init__", tracked)
    monkeypatch.setattr(ingest_module, "parse_line", parsed)
    lines = []
    for i in range(12):  # each batch has lines refused by a validator of the event contract
        bad = json.dumps(payment(f"F-{i}", "10.00", "2026-03-05")).replace('"10.00"', "10.0")
        lines += [invoice_issued(f"F-{i}", "2026-04-01"), bad, "{not json"]
    counts, _ = feed(app, *lines, batch_size=6)
    assert counts == {"accepted": 12, "duplicate": 0, "rejected": 24}
    gc.collect()
    assert len(made) == 6 + 36 and [ref() for ref in made] == [None] * len(made)


def _write_then_park(original):
    def applier(session, event, now, policies):
        row = accounting.invoice_by_number(session, event.invoice_number)
        row.paid += 1  # a write, then parked: only a savepoint can take it back
        raise accounting.Parked("invoice:elsewhere")

    return applier


def test_an_applier_that_parks_after_writing_makes_the_batch_run_again_with_savepoints(app, monkeypatch):
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    try:
        monkeypatch.setitem(
            accounting.APPLY, "credit_note.issued", _write_then_park(accounting.APPLY["credit_note.issued"])
        )
        counts, _ = feed(
            app,
            invoice_issued("F-1", "2026-04-01"),
            payment("F-1", "200.00", "2026-03-05"),
            {
                "event_id": "cn-1",
                "type": "credit_note.issued",
                "occurred_at": "2026-03-06T10:00:00+01:00",
                "invoice_number": "F-1",
                "credit_note_number": "AV-1",
                "amount": "10.00",
            },
            invoice_issued("F-2", "2026-04-01"),
        )
    finally:
        configure_logging("WARNING")
        logging.disable(logging.NOTSET)
    assert counts == {"accepted": 4, "duplicate": 0, "rejected": 0}
    assert inbox(app)["cn-1"] == ("parked", "invoice:elsewhere")
    assert invoice(app, "F-1").paid == 200  # the write before parking was undone
    assert stored(app, "F-2")
    logged = [json.loads(line)["event"] for line in stream.getvalue().splitlines()]
    assert logged == ["event.accepted", "event.accepted", "event.parked", "event.accepted"]


def test_a_change_to_an_invoice_of_the_batch_not_yet_written_then_parked_is_undone(app, monkeypatch):
    """The invoice issued just before is still a draft when the next applier starts: what the
    applier changes on it counts as a write, and the batch runs again with savepoints."""
    monkeypatch.setitem(
        accounting.APPLY, "credit_note.issued", _write_then_park(accounting.APPLY["credit_note.issued"])
    )
    counts, _ = feed(
        app,
        invoice_issued("F-1", "2026-04-01"),
        {
            "event_id": "cn-1",
            "type": "credit_note.issued",
            "occurred_at": "2026-03-06T10:00:00+01:00",
            "invoice_number": "F-1",
            "credit_note_number": "AV-1",
            "amount": "10.00",
        },
    )
    assert counts == {"accepted": 2, "duplicate": 0, "rejected": 0}
    assert inbox(app)["cn-1"] == ("parked", "invoice:elsewhere")
    assert invoice(app, "F-1").paid == 0


def test_a_change_to_an_invoice_changed_before_the_mark_and_not_yet_written_then_parked_is_undone(
    app, monkeypatch
):
    """The payment's change to an invoice stored before the batch (locked by it) is not
    flushed before the next applier starts: the mark notes it as it is, and the next
    applier's further change to that same row, then parked, still counts as a write."""
    feed(app, invoice_issued("F-1", "2026-04-01"))
    monkeypatch.setitem(
        accounting.APPLY, "credit_note.issued", _write_then_park(accounting.APPLY["credit_note.issued"])
    )
    counts, _ = feed(
        app,
        payment("F-1", "200.00", "2026-03-05"),
        {
            "event_id": "cn-1",
            "type": "credit_note.issued",
            "occurred_at": "2026-03-06T10:00:00+01:00",
            "invoice_number": "F-1",
            "credit_note_number": "AV-1",
            "amount": "10.00",
        },
        payment("F-1", "300.00", "2026-03-07"),
    )
    assert counts == {"accepted": 3, "duplicate": 0, "rejected": 0}
    assert inbox(app)["cn-1"] == ("parked", "invoice:elsewhere")
    assert invoice(app, "F-1").paid == 500  # the 1 added before parking was undone


def test_an_applier_expected_never_to_park_is_retried_with_savepoints_if_it_does(app, monkeypatch):
    def parks(session, event, now, policies):
        raise accounting.Parked("debtor:nobody")

    monkeypatch.setitem(accounting.APPLY, "debtor.updated", parks)
    counts, _ = feed(
        app,
        invoice_issued("F-1", "2026-04-01"),
        {
            "event_id": "deb-1",
            "type": "debtor.updated",
            "occurred_at": "2026-03-06T10:00:00+01:00",
            "debtor": DEBTOR,
        },
    )
    assert counts["accepted"] == 2
    assert inbox(app)["deb-1"] == ("parked", "debtor:nobody")


# --- the whole store, against the savepoint path --------------------------------------


def _savepoint_path(app, lines: list[tuple[int, bytes]], batch_size: int) -> None:
    """How ``relance ingest`` applied a stream before batches: a savepoint per event."""
    for start in range(0, len(lines), batch_size):
        with transaction(app.sessions) as session:
            for number, raw in lines[start : start + batch_size]:
                ingest_one(session, raw, app.clock.now(), app.ctx, source="feed.jsonl", line_no=number)


def _store(app) -> dict[str, list]:
    with transaction(app.sessions) as session:
        numbers = dict(session.execute(select(InvoiceRow.id, InvoiceRow.number)).all())

        def rows(model, order):  # without the ids the database numbers
            columns = [
                c.key
                for c in model.__table__.columns
                if c.key != "invoice_id" and not (c.key == "id" and c.autoincrement is True)
            ]
            found = session.execute(select(model).order_by(*order)).scalars().all()
            return [
                tuple(getattr(r, c) for c in columns)
                + ((numbers[r.invoice_id],) if hasattr(r, "invoice_id") else ())
                for r in found
            ]

        steps = sorted(rows(PlannedStep, [PlannedStep.id]), key=lambda r: (r[-1], r[1]))
        return {
            "inbox": rows(InboxEvent, [InboxEvent.id]),
            "rejected": rows(RejectedEvent, [RejectedEvent.id]),
            "invoices": rows(InvoiceRow, [InvoiceRow.number]),
            "debtors": rows(DebtorRow, [DebtorRow.id]),
            "payments": rows(PaymentRow, [PaymentRow.event_id]),
            "steps": steps,
            "evidence": rows(EvidenceRecord, [EvidenceRecord.seq]),
            "head": rows(EvidenceHead, [EvidenceHead.id]),
        }


def test_a_feed_like_a_real_one_leaves_the_same_store_as_the_savepoint_path(database_url, tmp_path):
    from bench.ingest import Feed

    generator = Feed(seed=7, today=date(2026, 3, 12))
    text = "".join(generator.line()[1] + "\n" for _ in range(700))
    assert {"duplicate", "invalid", "early_payment", "payment", "credit_note"} <= set(generator.counts)
    batched = make_test_app(database_url, tmp_path / "batched", START)
    out = io.StringIO()
    counts = ingest_stream(batched, io.BytesIO(text.encode()), "feed.jsonl", out, batch_size=64)
    store = _store(batched)
    batched.dispose()
    if database_url.startswith("sqlite"):
        reference = make_test_app(f"sqlite:///{tmp_path / 'reference.db'}", tmp_path / "ref", START)
    else:
        reference = make_test_app(database_url, tmp_path / "ref", START)
        _empty(reference)  # same schema: start from nothing
    _savepoint_path(reference, [(n, raw) for n, raw in _lines(io.BytesIO(text.encode())) if raw.strip()], 64)
    expected = _store(reference)
    reference.dispose()
    assert counts["rejected"] == len(expected["rejected"]) > 0
    for table in expected:
        assert store[table] == expected[table], table


def test_an_import_refreshes_the_planner_statistics_as_its_tables_grow(app, monkeypatch):
    """PostgreSQL: ANALYZE once the applied events double; SQLite has nothing to refresh."""
    from sqlalchemy import text

    monkeypatch.setattr(ingest_module, "ANALYZE_FIRST", 2)
    events = [invoice_issued(f"F-S{i}", "2026-04-01", debtor={**DEBTOR, "id": f"D-S{i}"}) for i in range(6)]
    ingest_stream(
        app, io.BytesIO("\n".join(json.dumps(e) for e in events).encode()), "t", io.StringIO(), batch_size=2
    )
    statistics = ingest_module.Statistics(app)
    if app.engine.dialect.name != "postgresql":
        assert statistics.next is None
        return
    with app.engine.connect() as connection:
        estimated = connection.execute(
            text(
                "SELECT reltuples FROM pg_class WHERE relname = 'planned_steps' "
                "AND relnamespace = to_regnamespace(current_schema())"
            )
        ).scalar()
    assert estimated > 0  # never analyzed would be -1: the planner knows what was written
    statistics.after(5)
    assert statistics.next == 8  # 2 -> 4 -> 8: the next refresh once 8 events are applied


def test_an_event_id_stored_by_another_process_meanwhile_reruns_the_batch_with_savepoints(
    postgres_url, tmp_path, monkeypatch
):
    """Two parts of ``relance ingest --jobs`` may hold the same event id (with other content,
    for two debtors): the one that stores it second finds it only when it inserts its inbox
    row. Its batch runs again with savepoints and rejects that event alone."""
    application = make_test_app(postgres_url, tmp_path, START)
    prefetch, attempts = Batch.prefetch, []

    def racing_prefetch(self, events):
        prefetch(self, events)
        attempts.append(self.savepoints)
        if not self.savepoints:  # the other process commits the same id after this read
            with transaction(application.sessions) as other:
                other.add(
                    InboxEvent(
                        event_id="shared",
                        type="payment.received",
                        occurred_at=START,
                        raw="{}",
                        content_sha256="0" * 64,
                        status="parked",
                        waiting_for="invoice:F-9",
                        received_at=START,
                    )
                )

    monkeypatch.setattr(Batch, "prefetch", racing_prefetch)
    try:
        counts, out = feed(
            application,
            invoice_issued("F-1", "2026-04-01"),
            invoice_issued("F-2", "2026-04-01", event_id="shared"),
            invoice_issued("F-3", "2026-04-01"),
        )
        assert attempts == [False, True]
        assert counts == {"accepted": 2, "duplicate": 0, "rejected": 1}
        assert out == [
            "line 2: rejected: event_id: 'shared' was already used by a different event",
            "accepted 2, duplicate 0, rejected 1",
        ]
        assert stored(application, "F-1") and stored(application, "F-3") and not stored(application, "F-2")
        assert inbox(application)["shared"] == ("parked", "invoice:F-9")  # the other process's row
    finally:
        application.dispose()


# --- new invoices and debtors written set-based --------------------------------------------


def _inserts_of(app, lines: list[Any], rejected: int = 0) -> dict[str, int]:
    """The INSERT statements (a COPY counted as one) of ingesting ``lines`` in one batch, by
    table; an ``executemany`` counts once per row, as the server runs it."""
    from sqlalchemy import event

    import adapters.uow as uow_module

    counted: dict[str, int] = {}
    insert_rows = uow_module.insert_rows

    def copying(connection, table, rows):
        counted[table.name] = counted.get(table.name, 0) + 1
        insert_rows(connection, table, rows)

    def executing(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("INSERT INTO"):
            table = statement.split()[2]
            counted[table] = counted.get(table, 0) + (len(parameters) if executemany else 1)

    uow_module.insert_rows = copying
    event.listen(app.engine, "before_cursor_execute", executing)
    try:
        counts, _ = feed(app, *lines)
    finally:
        event.remove(app.engine, "before_cursor_execute", executing)
        uow_module.insert_rows = insert_rows
    assert counts == {"accepted": len(lines) - rejected, "duplicate": 0, "rejected": rejected}
    return counted


@pytest.mark.postgres
def test_the_inserts_of_a_batch_of_new_invoices_do_not_grow_with_their_number(postgres_url, tmp_path):
    application = make_test_app(postgres_url, tmp_path, START)

    def invoices(first: int, count: int) -> list[dict]:  # half of them with a debtor of their own
        return [
            invoice_issued(f"F-{i}", "2026-04-01", debtor={**DEBTOR, "id": f"D-{i // 2}"})
            for i in range(first, first + count)
        ]

    try:
        _inserts_of(application, invoices(1000, 2))  # the creditor's chain head made first
        few = _inserts_of(application, invoices(0, 4))
        many = _inserts_of(application, invoices(100, 60))
        with transaction(application.sessions) as session:
            stored_invoices = session.query(InvoiceRow).count()
            stored_debtors = session.query(DebtorRow).count()
            steps = session.query(PlannedStep).count()
    finally:
        application.dispose()
    assert many == few
    assert {"invoices", "debtors", "planned_steps", "inbox_events"} <= set(many)
    assert max(many.values()) == 1  # each table in one statement, whatever the number of rows
    assert (stored_invoices, stored_debtors) == (66, 33) and steps > 66


def test_a_feed_leaves_the_same_rows_in_batches_of_one_and_of_five_hundred(database_url, tmp_path):
    """The batch's drafts (new invoices and debtors), plain rows (payments, steps, inbox) and
    the writes it leaves for a later flush end as the rows of events applied one at a time."""
    from bench.ingest import Feed

    generator = Feed(seed=11, today=date(2026, 3, 12))
    text = "".join(generator.line()[1] + "\n" for _ in range(600)).encode()
    assert {"duplicate", "invalid", "early_payment", "payment", "credit_note"} <= set(generator.counts)
    stores, outputs = [], []
    for size in (1, 500):
        url = database_url
        if database_url.startswith("sqlite"):
            url = f"sqlite:///{tmp_path / f'batch-{size}.db'}"
        application = make_test_app(url, tmp_path / f"batch-{size}", START)
        if size == 500 and not database_url.startswith("sqlite"):
            _empty(application)  # the same schema: start from nothing
        out = io.StringIO()
        ingest_stream(application, io.BytesIO(text), "feed.jsonl", out, batch_size=size)
        stores.append(_store(application))
        outputs.append(out.getvalue())
        application.dispose()
    one_at_a_time, batched = stores
    assert outputs[0] == outputs[1]
    assert len(one_at_a_time["invoices"]) > 100 and len(one_at_a_time["payments"]) > 20
    for table in one_at_a_time:
        assert batched[table] == one_at_a_time[table], table


def _empty(app) -> None:
    with transaction(app.sessions) as session:
        for model in (
            EvidenceRecord,
            EvidenceHead,
            PaymentRow,
            PlannedStep,
            InvoiceRow,
            DebtorRow,
            InboxEvent,
            RejectedEvent,
        ):
            session.query(model).delete()


# --- the movements of the invoices a batch's payments name, read once ------------------------


def _credit_note(number: str, amount: str, day: str, credit_note: str) -> dict:
    return {
        "event_id": f"avo-{credit_note}",
        "type": "credit_note.issued",
        "occurred_at": f"{day}T15:00:00+01:00",
        "invoice_number": number,
        "amount": amount,
        "credit_note_number": credit_note,
    }


def _penalties_reported(app) -> list[dict]:
    with transaction(app.sessions) as session:
        payloads = session.execute(
            select(EvidenceRecord.payload)
            .where(EvidenceRecord.kind == "invoice.penalties_outstanding")
            .order_by(EvidenceRecord.seq)
        ).scalars()
        return [json.loads(p) for p in payloads]


def _reads_of_movements(app, events: list[dict], *, batched: bool) -> int:
    """The reads of invoices' movements while ``events`` are applied: in one batch of
    ``relance ingest``, or one at a time with a savepoint each (``ingest_one``)."""
    from sqlalchemy import event

    reads = 0

    def executing(conn, cursor, statement, parameters, context, executemany):
        nonlocal reads
        words = " ".join(statement.split())
        if words.startswith("SELECT payments.invoice_id, payments.on_day, payments.amount"):
            reads += 1

    event.listen(app.engine, "before_cursor_execute", executing)
    try:
        if batched:
            counts, _ = feed(app, *events)
            assert counts == {"accepted": len(events), "duplicate": 0, "rejected": 0}
        else:
            _savepoint_path(app, [(n, json.dumps(e).encode()) for n, e in enumerate(events, 1)], 1)
    finally:
        event.remove(app.engine, "before_cursor_execute", executing)
    return reads


def test_the_penalties_of_invoices_settled_in_a_batch_are_those_of_events_applied_one_at_a_time(
    database_url, tmp_path
):
    """A payment that settles its invoice late reports the penalties still owed from the
    invoice's movements: stored before the batch, and added by the batch's earlier events
    (payments, a credit note, on an invoice stored before and on one issued in the batch; a
    payment reversed, then paid again). In one batch they come from what it read ahead,
    without a read per settled invoice but after a reversal (the row handed out may change)."""
    before = [
        invoice_issued("F-1", "2026-01-05", "1000.00", issued="2025-12-01"),
        invoice_issued("F-2", "2026-01-05", "500.00", issued="2025-12-01"),
        payment("F-1", "300.00", "2026-01-20"),
    ]
    batch = [
        payment("F-1", "200.00", "2026-02-01"),
        _credit_note("F-1", "100.00", "2026-02-05", "AV-1"),
        invoice_issued("F-3", "2026-01-10", "100.00", issued="2025-12-01"),
        payment("F-3", "40.00", "2026-01-25"),
        {**payment("F-1", "400.00", "2026-02-10"), "payment_id": "P-1"},
        payment("F-3", "60.00", "2026-02-20"),
        {**payment("F-2", "500.00", "2026-03-01"), "payment_id": "P-2"},
        {
            "event_id": "rev-P-1",
            "type": "payment.reversed",
            "occurred_at": "2026-03-03T10:00:00+01:00",
            "invoice_number": "F-1",
            "payment_id": "P-1",
            "reversed_on": "2026-03-03",
            "reason": "returned debit",
        },
        {**payment("F-1", "400.00", "2026-03-05"), "payment_id": "P-3"},
    ]
    reported, reads = [], []
    for batched in (False, True):
        url = database_url
        if database_url.startswith("sqlite"):
            url = f"sqlite:///{tmp_path / f'batched-{batched}.db'}"
        application = make_test_app(url, tmp_path / f"batched-{batched}", START)
        try:
            if batched and not database_url.startswith("sqlite"):
                _empty(application)  # the same schema: start from nothing
            feed(application, *before)
            reads.append(_reads_of_movements(application, batch, batched=batched))
            reported.append(_penalties_reported(application))
            payments = _store(application)["payments"]
        finally:
            application.dispose()
        assert len(payments) == 8
    one_at_a_time, in_one_batch = reported
    assert [r["invoice_numbers"] for r in in_one_batch] == [["F-1"], ["F-3"], ["F-2"], ["F-1"]]
    assert in_one_batch == one_at_a_time
    assert "0.00" not in {r["late_interest"] for r in in_one_batch}  # the movements' days count
    assert reads[0] >= 4  # one at a time, each settled invoice's payments are read
    # in one batch, the read ahead, and F-1's payments read again once one was reversed: F-3,
    # issued in the batch, is a draft on PostgreSQL (its id drawn ahead); on SQLite it is
    # inserted at once and its payments read from the store
    assert reads[1] == (3 if database_url.startswith("sqlite") else 2)


@pytest.mark.postgres
def test_payments_settling_invoices_stored_before_leave_the_batch_s_new_rows_to_one_flush(
    postgres_url, tmp_path
):
    """A payment that settles an invoice stored before the batch cancels its steps without
    writing the rows the batch's other events added (inbox rows, new invoices and their
    steps, payments): each table's are written together, however many payments come between."""
    application = make_test_app(postgres_url, tmp_path, START)
    try:
        _inserts_of(application, [invoice_issued(f"F-{i}", "2026-04-01", "100.00") for i in range(6)])
        mixed = [
            event
            for i in range(6)
            for event in (
                invoice_issued(f"G-{i}", "2026-04-01", "100.00"),
                payment(f"F-{i}", "100.00", "2026-03-10"),
            )
        ]
        inserts = _inserts_of(application, mixed)
        with transaction(application.sessions) as session:
            statuses = dict(session.execute(select(InvoiceRow.number, InvoiceRow.status)).all())
            cancelled = set(
                session.execute(
                    select(InvoiceRow.number)
                    .join(PlannedStep, PlannedStep.invoice_id == InvoiceRow.id)
                    .where(PlannedStep.status == "cancelled", PlannedStep.reason == "invoice settled")
                ).scalars()
            )
    finally:
        application.dispose()
    assert {n: s for n, s in statuses.items() if n.startswith("F-")} == {
        f"F-{i}": "settled" for i in range(6)
    }
    assert cancelled == {f"F-{i}" for i in range(6)}  # the steps of the settled invoices alone
    assert {"invoices", "planned_steps", "inbox_events", "payments"} <= set(inserts)
    assert max(inserts.values()) == 1  # each table in one statement (before: one per payment)


@pytest.mark.postgres
def test_the_changes_of_payments_to_invoices_stored_before_are_written_together(postgres_url, tmp_path):
    """Payments on invoices the batch locked (stored before it) leave their changes to those
    invoices for the batch's next flush: one ``UPDATE`` round trip for the six of them (the
    code before: one per payment), the same invoices in the end."""
    from sqlalchemy import event

    application = make_test_app(postgres_url, tmp_path, START)
    updates: list[int] = []

    def executing(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("UPDATE INVOICES"):
            updates.append(len(parameters) if executemany else 1)

    try:
        feed(application, *[invoice_issued(f"F-{i}", "2026-04-01", "100.00") for i in range(6)])
        event.listen(application.engine, "before_cursor_execute", executing)
        counts, _ = feed(application, *[payment(f"F-{i}", "40.00", "2026-03-10") for i in range(6)])
        event.remove(application.engine, "before_cursor_execute", executing)
        with transaction(application.sessions) as session:
            paid = dict(session.execute(select(InvoiceRow.number, InvoiceRow.paid)).all())
    finally:
        application.dispose()
    assert counts == {"accepted": 6, "duplicate": 0, "rejected": 0}
    assert paid == {f"F-{i}": 40 for i in range(6)}
    assert updates == [6]  # one executemany of the six rows


@pytest.mark.postgres
def test_payments_and_credit_notes_changing_other_columns_are_written_together(postgres_url, tmp_path):
    """Partial payments (``paid``), settling ones (``paid``, ``status``) and credit notes
    (``credited``, ``updated_at``) change other columns of the invoices the batch locked:
    still one ``UPDATE`` round trip for the six invoices, and each invoice as expected."""
    from sqlalchemy import event

    application = make_test_app(postgres_url, tmp_path, START)
    updates: list[int] = []

    def executing(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("UPDATE INVOICES"):
            updates.append(len(parameters) if executemany else 1)

    def credit_note(number: str, amount: str) -> dict:
        return {
            "event_id": f"avoir-{number}",
            "type": "credit_note.issued",
            "occurred_at": "2026-03-10T10:00:00+01:00",
            "invoice_number": number,
            "credit_note_number": f"AV-{number}",
            "amount": amount,
        }

    try:
        feed(application, *[invoice_issued(f"F-{i}", "2026-04-01", "100.00") for i in range(6)])
        event.listen(application.engine, "before_cursor_execute", executing)
        counts, _ = feed(
            application,
            payment("F-0", "40.00", "2026-03-10"),
            payment("F-1", "100.00", "2026-03-10"),
            credit_note("F-2", "25.00"),
            payment("F-3", "10.00", "2026-03-10"),
            credit_note("F-4", "100.00"),
            payment("F-5", "100.00", "2026-03-10"),
        )
        event.remove(application.engine, "before_cursor_execute", executing)
        with transaction(application.sessions) as session:
            rows = session.execute(
                select(InvoiceRow.number, InvoiceRow.paid, InvoiceRow.credited, InvoiceRow.status)
            ).all()
    finally:
        application.dispose()
    assert counts == {"accepted": 6, "duplicate": 0, "rejected": 0}
    assert sorted((n, str(p), str(c), s) for n, p, c, s in rows) == [
        ("F-0", "40.00", "0.00", "open"),
        ("F-1", "100.00", "0.00", "settled"),
        ("F-2", "0.00", "25.00", "open"),
        ("F-3", "10.00", "0.00", "open"),
        ("F-4", "0.00", "100.00", "settled"),
        ("F-5", "100.00", "0.00", "settled"),
    ]
    assert updates == [6]  # one executemany (before: one statement per set of columns changed)


@pytest.mark.postgres
def test_an_invoice_issued_and_settled_in_one_batch_has_its_steps_cancelled_before_they_are_written(
    postgres_url, tmp_path
):
    """The steps of an invoice still waiting to be written (issued in the batch) are cancelled
    where they wait, without a statement: they end as those of an invoice issued in an
    earlier batch and settled alike, which the cancellation's statement takes."""
    from sqlalchemy import event

    application = make_test_app(postgres_url, tmp_path, START)
    cancellations: list[str] = []

    def executing(conn, cursor, statement, parameters, context, executemany):
        if "cancelled_now" in statement:
            cancellations.append(statement)

    try:
        feed(application, invoice_issued("H-1", "2026-04-01", "100.00"))
        event.listen(application.engine, "before_cursor_execute", executing)
        counts, _ = feed(
            application,
            payment("H-1", "100.00", "2026-03-10"),
            invoice_issued("G-1", "2026-04-01", "100.00"),
            payment("G-1", "100.00", "2026-03-10"),
        )
        event.remove(application.engine, "before_cursor_execute", executing)
        with transaction(application.sessions) as session:
            rows = session.execute(
                select(InvoiceRow.number, PlannedStep.step, PlannedStep.status, PlannedStep.reason)
                .join(PlannedStep, PlannedStep.invoice_id == InvoiceRow.id)
                .order_by(PlannedStep.step)
            ).all()
            statuses = dict(session.execute(select(InvoiceRow.number, InvoiceRow.status)).all())
    finally:
        application.dispose()
    assert counts == {"accepted": 3, "duplicate": 0, "rejected": 0}
    assert statuses == {"H-1": "settled", "G-1": "settled"}
    steps = {
        number: [(step, status, reason) for n, step, status, reason in rows if n == number]
        for number in statuses
    }
    assert steps["G-1"] == steps["H-1"]
    assert {status for _, status, _ in steps["G-1"]} >= {"cancelled"}
    assert len(cancellations) == 1  # H-1's; G-1's steps were cancelled before being written


def test_a_payment_in_a_batch_keeps_the_live_case_holding_its_invoice_in_step(app):
    """The read of the cases holding a payment's invoice asks first whether there is any
    (a Core statement): a case there is found, and the payment that settles its only
    invoice stops it, as before; a partial payment on an invoice of no case finds none."""
    from adapters.orm import CaseRow

    feed(app, invoice_issued("F-1", "2026-04-01", "100.00"), invoice_issued("F-2", "2026-04-01", "100.00"))
    with transaction(app.sessions) as session:
        held = session.execute(select(InvoiceRow.id).where(InvoiceRow.number == "F-1")).scalar_one()
        case_id = _open_case(session, [held], "100.00")
    counts, _ = feed(app, payment("F-2", "10.00", "2026-03-10"), payment("F-1", "100.00", "2026-03-10"))
    with transaction(app.sessions) as session:
        found = session.get(CaseRow, case_id)
        assert found is not None
        status, notes = found.status, list(found.notes)
    assert counts == {"accepted": 2, "duplicate": 0, "rejected": 0}
    assert invoice(app, "F-1").status == "settled"
    assert status != "open", (status, notes)


@pytest.mark.postgres
def test_bad_lines_between_new_invoices_leave_the_batch_s_rows_to_one_flush(postgres_url, tmp_path):
    """A rejected line is kept as a row written with the batch's others: a payment after it
    does not write the rows waiting before it (new invoices, their steps, inbox rows)."""
    application = make_test_app(postgres_url, tmp_path, START)
    try:
        _inserts_of(application, [invoice_issued(f"F-{i}", "2026-04-01", "100.00") for i in range(4)])
        lines: list[Any] = []
        for i in range(4):
            lines += [
                invoice_issued(f"G-{i}", "2026-04-01", "100.00"),
                '{"event_id": "bad-' + str(i),
                payment(f"F-{i}", "40.00", "2026-03-10"),
            ]
        inserts = _inserts_of(application, lines, rejected=4)
        kept = rejected(application)
    finally:
        application.dispose()
    assert [line for _, line, _ in kept] == [2, 5, 8, 11]  # every bad line kept, in order
    assert {"invoices", "planned_steps", "inbox_events", "payments", "rejected_events"} <= set(inserts)
    assert max(inserts.values()) == 1  # each table in one statement (before: split at each bad line)


@pytest.mark.postgres
def test_a_batch_s_reads_ahead_have_the_same_text_for_few_and_many_events(postgres_url, tmp_path):
    """The batch reads its event ids, debtors and invoices with one array parameter each
    (``adapters.sql_lists``): the statements' texts do not grow with the batch."""
    from sqlalchemy import event

    def selects_of(count: int) -> set[str]:
        application = make_test_app(postgres_url, tmp_path / str(count), START)
        seen: set[str] = set()

        def keep(_conn, _cursor, statement, *_args):
            if statement.lstrip().upper().startswith("SELECT"):
                seen.add(" ".join(statement.split()))

        event.listen(application.engine, "before_cursor_execute", keep)
        try:
            feed(application, *[invoice_issued(f"N{count}-{i}", "2026-04-01") for i in range(count)])
        finally:
            event.remove(application.engine, "before_cursor_execute", keep)
            application.dispose()
        return seen

    few, many = selects_of(2), selects_of(40)
    assert few == many
    assert any("inbox_events.event_id = ANY" in text for text in many)


def test_the_payments_of_a_batch_read_the_cases_holding_their_invoices_at_once(app):
    """The cases holding the invoices a batch's payments name are read with the batch's
    other reads ahead: one statement for six payments (before: one per payment)."""
    from sqlalchemy import event

    feed(app, *[invoice_issued(f"F-{i}", "2026-04-01", "100.00") for i in range(6)])
    reads: list[str] = []

    def executing(conn, cursor, statement, parameters, context, executemany):
        if "case_invoices" in statement and statement.lstrip().upper().startswith("SELECT"):
            reads.append(statement)

    event.listen(app.engine, "before_cursor_execute", executing)
    try:
        counts, _ = feed(app, *[payment(f"F-{i}", "100.00", "2026-03-10") for i in range(6)])
    finally:
        event.remove(app.engine, "before_cursor_execute", executing)
    assert counts == {"accepted": 6, "duplicate": 0, "rejected": 0}
    assert [invoice(app, f"F-{i}").status for i in range(6)] == ["settled"] * 6
    assert len(reads) == 1


def _feed_as(app, creditor: str, events: list[dict], batch_size: int = 500) -> None:
    """Feed ``events`` as ``creditor``'s, in batches of ``batch_size``; each is accepted."""
    counts, _ = feed(app, *[event | {"creditor_id": creditor} for event in events], batch_size=batch_size)
    assert counts == {"accepted": len(events), "duplicate": 0, "rejected": 0}


@contextmanager
def _session_of(app, creditor: str) -> Iterator[Any]:
    """A unit of work acting for ``creditor``."""
    with transaction(app.sessions) as session:
        session.scope(creditor)
        yield session


def _together_and_alone(database_url: str, tmp_path, scenario) -> tuple[Any, Any]:
    """What ``scenario(app, creditor, batch_size)`` leaves with its events in one batch (the
    default creditor's), then in batches of one (the same events, another creditor's)."""
    from tests.integration.test_creditors import creditors_file

    application = make_test_app(database_url, tmp_path, START, creditors_file=creditors_file(tmp_path))
    try:
        return scenario(application, "default", 500), scenario(application, "atelier", 1)
    finally:
        application.dispose()


def _open_case(session, invoice_ids: list[int], principal: str) -> int:
    from decimal import Decimal

    from handlers.store import NewCase

    case = session.store.add_case(
        NewCase(
            debtor_id=DEBTOR["id"],
            kind="escalation",
            recommended_procedure="injonction_de_payer",
            reasons=["formal notice unanswered"],
            currency="EUR",
            principal=Decimal(principal),
            late_interest=Decimal("0.00"),
            indemnities=Decimal("0.00"),
            deadline=date(2026, 5, 1),
            notes=[],
        ),
        START,
    )
    session.store.add_case_invoices(case.id, invoice_ids)
    return int(case.id)


def _case_after_payments(app, creditor: str, batch_size: int) -> tuple:
    """The case holding two invoices of ``creditor`` after three payments: part of the
    first, all of the second, the rest of the first."""
    from adapters.orm import CaseRow

    _feed_as(
        app,
        creditor,
        [invoice_issued(n, "2026-02-20", "100.00", issued="2026-01-21") for n in ("F-1", "F-2")],
    )
    with _session_of(app, creditor) as session:
        ids = list(
            session.execute(select(InvoiceRow.id).where(InvoiceRow.number.in_(["F-1", "F-2"]))).scalars()
        )
        case_id = _open_case(session, sorted(ids), "200.00")
    paid = [
        payment("F-1", "30.00", "2026-03-10"),
        payment("F-2", "100.00", "2026-03-10"),
        payment("F-1", "70.00", "2026-03-11"),
    ]
    _feed_as(app, creditor, paid, batch_size)
    with _session_of(app, creditor) as session:
        c = session.get(CaseRow, case_id)
        return (c.status, c.principal, c.late_interest, c.indemnities, c.amount_claimed, c.notes)


def test_the_payments_of_one_batch_on_a_case_s_invoices_leave_it_as_one_at_a_time(database_url, tmp_path):
    """The batch read the case holding the invoices once, before its three payments: each
    payment sees what the ones before it did to the case, and the case ends as when each
    payment is applied in a batch of its own (the same events, of another creditor)."""
    together, alone = _together_and_alone(database_url, tmp_path, _case_after_payments)
    assert together[0] != "open"  # both invoices paid: the case stopped
    assert together == alone


@pytest.mark.postgres
def test_a_case_joins_an_invoice_only_once_no_other_transaction_holds_it(postgres_url, tmp_path):
    """An ingest batch holds the invoices it names locked and reads the cases holding them
    once: a case joining one of them meanwhile waits for the batch's commit."""
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    from adapters.orm import CaseInvoice

    application = make_test_app(postgres_url, tmp_path, START)
    try:
        feed(application, invoice_issued("F-1", "2026-04-01", "100.00"))
        held = invoice(application, "F-1").id
        with application.engine.connect() as batch:  # the batch, holding the invoice locked
            batch.execute(text("SELECT id FROM invoices WHERE id = :id FOR UPDATE"), {"id": held})
            with pytest.raises(OperationalError, match="lock"), transaction(application.sessions) as session:
                session.execute(text("SET LOCAL lock_timeout = '300ms'"))
                _open_case(session, [held], "100.00")
            batch.rollback()
        with transaction(application.sessions) as session:
            links = session.execute(select(CaseInvoice.invoice_id)).scalars().all()
    finally:
        application.dispose()
    assert links == []


def _steps_of(app, creditor: str) -> list[tuple]:
    with _session_of(app, creditor) as session:
        return [
            tuple(row)
            for row in session.execute(
                select(
                    InvoiceRow.number,
                    PlannedStep.step,
                    PlannedStep.status,
                    PlannedStep.reason,
                    PlannedStep.emit_count,
                )
                .join(PlannedStep, PlannedStep.invoice_id == InvoiceRow.id)
                .order_by(InvoiceRow.number, PlannedStep.step)
            )
        ]


def _lease_first_steps(app, creditor: str, numbers: list[str], emission: int) -> None:
    """Lease the first reminder of each invoice, as a claim of the scheduler would."""
    from adapters.orm import StepLease

    with _session_of(app, creditor) as session:
        for number in numbers:
            step_id = session.execute(
                select(PlannedStep.id)
                .join(InvoiceRow, InvoiceRow.id == PlannedStep.invoice_id)
                .where(InvoiceRow.number == number, PlannedStep.event == "invoice.due")
                .order_by(PlannedStep.due_at)
                .limit(1)
            ).scalar_one()
            session.add(StepLease(step_id=step_id, lease_until=START, emission=emission))


def _settled_with_leases(app, creditor: str, batch_size: int) -> tuple[list[tuple], int]:
    """Three stored invoices, the first reminders of two leased, settled by payments mixed
    with a partial one and a new invoice: the steps, and the leases left."""
    from adapters.orm import StepLease

    _feed_as(app, creditor, [invoice_issued(f"F-{i}", "2026-04-01", "100.00") for i in range(3)])
    _lease_first_steps(app, creditor, ["F-0", "F-2"], emission=2)
    events = [
        payment("F-0", "100.00", "2026-03-10"),
        invoice_issued("G-1", "2026-04-01", "100.00"),
        payment("F-1", "40.00", "2026-03-10"),
        payment("F-2", "100.00", "2026-03-10"),
    ]
    _feed_as(app, creditor, events, batch_size)
    with _session_of(app, creditor) as session:
        leases = len(session.execute(select(StepLease.step_id)).all())
    return _steps_of(app, creditor), leases


@pytest.mark.postgres
def test_the_invoices_a_batch_settles_have_their_steps_cancelled_in_one_statement(postgres_url, tmp_path):
    """A batch cancels the pending steps of the stored invoices its payments settle in one
    statement at its next write (before: one per payment): the steps cancelled, the leases
    of the two leased ones deleted with their emissions added to the steps' count, and the
    same steps as when each event is applied in a batch of its own (another creditor's)."""
    from sqlalchemy import event

    from tests.integration.test_creditors import creditors_file

    application = make_test_app(postgres_url, tmp_path, START, creditors_file=creditors_file(tmp_path))
    cancellations: list[str] = []

    def executing(conn, cursor, statement, parameters, context, executemany):
        if "cancelled_now" in statement:
            cancellations.append(statement)

    try:
        event.listen(application.engine, "before_cursor_execute", executing)
        together, leases_left = _settled_with_leases(application, "default", 500)
        event.remove(application.engine, "before_cursor_execute", executing)
        alone, _ = _settled_with_leases(application, "atelier", 1)
    finally:
        application.dispose()
    assert len(cancellations) == 1  # F-0's and F-2's steps together
    assert leases_left == 0
    by_invoice = {
        number: [(s, st, why, n) for num, s, st, why, n in together if num == number]
        for number in ("F-0", "F-1", "F-2")
    }
    assert {status for _, status, _, _ in by_invoice["F-1"]} <= {"planned"}  # partly paid: still dunned
    for number in ("F-0", "F-2"):
        assert [why for _, status, why, _ in by_invoice[number] if status == "cancelled"], number
        assert all(
            why == "invoice settled" for _, status, why, _ in by_invoice[number] if status == "cancelled"
        )
        assert sum(count for _, _, _, count in by_invoice[number]) == 2  # the lease's two emissions kept
    assert together == alone


def _reopened(app, creditor: str, batch_size: int) -> list[tuple]:
    """A stored invoice settled, its payment reversed and part of it paid again, in a batch."""
    _feed_as(app, creditor, [invoice_issued("F-1", "2026-04-01", "100.00")])
    paid = payment("F-1", "100.00", "2026-03-10") | {"payment_id": "VIR-1"}
    events = [
        paid,
        {
            "event_id": "rev-1",
            "type": "payment.reversed",
            "occurred_at": "2026-03-11T09:00:00+01:00",
            "invoice_number": "F-1",
            "payment_id": "VIR-1",
            "reversed_on": "2026-03-11",
            "reason": "direct debit returned",
        },
        payment("F-1", "30.00", "2026-03-11"),
    ]
    _feed_as(app, creditor, events, batch_size)
    return _steps_of(app, creditor)


def test_an_invoice_settled_then_reopened_in_one_batch_has_the_steps_of_one_at_a_time(database_url, tmp_path):
    """The steps a settlement cancels at the batch's next write are cancelled before the
    reversal that reopens the invoice reads them: the steps end as when each event is applied
    in a batch of its own (the same events, of another creditor)."""
    together, alone = _together_and_alone(database_url, tmp_path, _reopened)
    # reopened, its ladder planned again: a cancellation run after the reversal would show here
    assert {status for _, _, status, _, _ in together} == {"planned"}
    assert together == alone
