"""The tick's claims: every due step once, in claim order, across batches; through indexes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import event, select, text

from adapters.orm import DebtorRow, InvoiceRow, PlannedStep
from adapters.store import make_engine, migrate, session_factory, transaction
from handlers.messages import StepDue
from scheduler.tick import tick

NOW = datetime(2026, 4, 1, 7, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)


class Recorder:
    def __init__(self) -> None:
        self.batches: list[list] = []

    def publish(self, tasks) -> None:
        self.batches.append(list(tasks))

    @property
    def published(self) -> list:
        return [task for batch in self.batches for task in batch]


def _store(sessions, steps: list[tuple[int, str, datetime, str, datetime | None, int]]) -> None:
    """Rows (invoice number, step, due_at, status, lease_until, emit_count), for one debtor."""
    with transaction(sessions) as session:
        session.add(
            DebtorRow(
                id="D-1",
                name="ACME",
                kind="business",
                email=None,
                language="fr",
                timezone="Europe/Paris",
                country="FR",
                address={},
                opt_out=False,
                email_bounced=False,
                updated_at=NOW,
            )
        )
        invoices = {}
        for number in sorted({s[0] for s in steps}):
            invoices[number] = InvoiceRow(
                number=f"F-{number}",
                debtor_id="D-1",
                issue_date=date(2026, 1, 1),
                due_date=date(2026, 3, 1),
                currency="EUR",
                amount_due=Decimal("100.00"),
                paid=Decimal("0.00"),
                credited=Decimal("0.00"),
                status="open",
                disputed=False,
                ever_disputed=False,
                in_payment_plan=False,
                created_at=NOW,
                updated_at=NOW,
            )
            session.add(invoices[number])
        session.flush()
        session.add_all(
            PlannedStep(
                invoice_id=invoices[number].id,
                debtor_id="D-1",
                step=step,
                event="invoice.overdue",
                due_at=due_at,
                status=status,
                lease_until=lease_until,
                emit_count=emit_count,
            )
            for number, step, due_at, status, lease_until, emit_count in steps
        )


def test_a_tick_claims_every_due_step_once_in_claim_order_across_batches(sessions):
    tied, earlier, later = NOW, NOW - timedelta(hours=1), NOW + timedelta(days=1)
    rows = []
    for number in range(120):  # 960 steps: most due at the same instant (ties), some earlier
        for k in range(8):
            due = earlier if (number + k) % 5 == 0 else later if (number + k) % 7 == 0 else tied
            rows.append((number, f"s{k}", due, "planned", None, 0))
    for number in range(120, 130):  # emitted before: lease ran out (claimed after the fresh)
        rows.append((number, "s0", earlier, "emitted", NOW - timedelta(minutes=number % 3), 1))
        rows.append((number, "s1", earlier, "emitted", NOW + timedelta(minutes=1), 1))  # in flight
    _store(sessions, rows)
    with transaction(sessions) as session:
        every = session.execute(
            select(PlannedStep.id, PlannedStep.due_at, PlannedStep.status, PlannedStep.lease_until)
        ).all()
    fresh = sorted((r.due_at, r.id) for r in every if r.status == "planned" and r.due_at <= NOW)
    expired = sorted((r.lease_until, r.id) for r in every if r.status == "emitted" and r.lease_until <= NOW)

    recorder = Recorder()
    result = tick(sessions, recorder, NOW, lease=LEASE, batch_size=128, max_in_flight=None)

    published = recorder.published
    assert result.steps == len(published) == len(fresh) + len(expired)
    assert [t.step_id for t in published] == [i for _, i in fresh] + [i for _, i in expired]
    assert all(isinstance(t, StepDue) for t in published)
    assert {t.emission for t in published[: len(fresh)]} == {1}
    assert {t.emission for t in published[len(fresh) :]} == {2}
    assert [len(b) for b in recorder.batches[:-1]] == [128] * (len(recorder.batches) - 1)
    with transaction(sessions) as session:
        leased = (
            session.execute(
                select(PlannedStep.id).where(
                    PlannedStep.status == "emitted", PlannedStep.lease_until == NOW + LEASE
                )
            )
            .scalars()
            .all()
        )
    assert sorted(leased) == sorted(t.step_id for t in published)
    again = Recorder()
    assert tick(sessions, again, NOW, lease=LEASE, batch_size=128).steps == 0
    assert again.published == []


def test_a_capped_tick_counts_the_steps_in_flight_once_and_stops_at_the_cap(sessions):
    rows = [(number, f"s{k}", NOW, "planned", None, 0) for number in range(30) for k in range(4)]
    rows += [(100 + n, "s0", NOW, "emitted", NOW + timedelta(minutes=2), 1) for n in range(15)]
    _store(sessions, rows)
    recorder = Recorder()
    assert tick(sessions, recorder, NOW, lease=LEASE, batch_size=10, max_in_flight=50).steps == 35
    assert [len(b) for b in recorder.batches] == [10, 10, 10, 5]
    assert tick(sessions, Recorder(), NOW, lease=LEASE, batch_size=10, max_in_flight=50).steps == 0


@pytest.mark.postgres
def test_the_tick_queries_read_indexes_not_the_tables(postgres_url):
    """EXPLAIN of each statement a tick runs, at a few tens of thousands of rows."""
    engine = make_engine(postgres_url)
    migrate(engine)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO debtors (id, name, kind, language, timezone, country, address, opt_out, "
                "email_bounced, updated_at) SELECT 'D-' || g, 'D', 'business', 'fr', 'Europe/Paris', "
                "'FR', '{}', false, false, now() FROM generate_series(1, 500) g"
            )
        )
        connection.execute(
            text(
                "INSERT INTO invoices (number, debtor_id, issue_date, due_date, currency, amount_due, "
                "paid, credited, status, disputed, ever_disputed, in_payment_plan, created_at, "
                "updated_at) SELECT 'F-' || g, 'D-' || (1 + g % 500), current_date, current_date, "
                "'EUR', 100, 0, 0, 'open', false, false, false, now(), now() "
                "FROM generate_series(1, 4000) g"
            )
        )
        connection.execute(
            text(
                "INSERT INTO planned_steps (invoice_id, debtor_id, step, event, due_at, status, "
                "lease_until, emit_count) SELECT i.id, i.debtor_id, 's' || k, 'invoice.overdue', "
                "CASE WHEN k < 3 THEN now() - interval '10 days' ELSE now() + k * interval '1 day' END, "
                "CASE WHEN k < 3 THEN 'done' ELSE 'planned' END, "
                "CASE WHEN k < 3 THEN now() - interval '10 days' END, CASE WHEN k < 3 THEN 1 ELSE 0 END "
                "FROM invoices i CROSS JOIN generate_series(0, 7) k"
            )
        )
        connection.execute(
            text(
                "INSERT INTO messages (message_id, debtor_id, channel, step, local_day, recipient, "
                "subject, body_text, content, content_sha256, amounts, status, attempts, lease_until, "
                "created_at) SELECT '<' || g || '@x>', 'D-1', 'email', 's0', current_date, 'a@b.c', "
                "'s', 'b', '\\x00'::bytea, '0', '{}', CASE WHEN g % 100 = 0 THEN 'pending' ELSE 'sent' "
                "END, 1, now() + CASE WHEN g % 100 = 0 THEN interval '1 hour' "
                "ELSE -interval '9 days' END, now() FROM generate_series(1, 8000) g"
            )
        )
    with engine.connect() as connection:
        connection.execute(text("ANALYZE"))
        connection.commit()
    plans: list[tuple[str, str]] = []

    def explain(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith(("SELECT", "WITH")) and "pg_" not in statement:
            cursor.execute("EXPLAIN " + statement, parameters)
            plans.append((statement, "\n".join(row[0] for row in cursor.fetchall())))

    event.listen(engine, "before_cursor_execute", explain)
    now = datetime.now(UTC)
    tick(session_factory(engine), Recorder(), now, lease=LEASE, batch_size=500, max_in_flight=2000)
    # the same statements with steps emitted and in flight
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE planned_steps SET status = 'emitted', "
                "lease_until = now() + interval '5 minutes' WHERE step = 's3'"
            )
        )
    tick(session_factory(engine), Recorder(), now, lease=LEASE, batch_size=500, max_in_flight=None)
    event.remove(engine, "before_cursor_execute", explain)
    engine.dispose()

    def plan_of(*words: str) -> list[str]:
        return [plan for statement, plan in plans if all(w in statement for w in words)]

    counts = plan_of("count(*)")
    fresh = plan_of("WITH picked", "planned_steps.due_at <=")
    expired = plan_of("WITH picked", "planned_steps.lease_until <=")
    pending = plan_of("FROM messages")
    assert counts and fresh and expired and pending
    for plan in counts + expired:
        assert "ix_planned_steps_lease" in plan, plan
    for plan in fresh:
        assert "ix_planned_steps_due" in plan, plan
    for plan in pending:
        assert "ix_messages_pending" in plan, plan
    for plan in counts + fresh + expired + pending:
        assert "Seq Scan" not in plan, plan
