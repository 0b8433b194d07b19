"""The tick's claims: every due step once, in claim order, across batches, each a narrow
lease row with the step left ``planned``; through indexes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, select, text

from adapters.orm import DebtorRow, InvoiceRow, PlannedStep, StepLease
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
    """Rows (invoice number, step, due_at, status, lease_until, emit_count), for one debtor;
    an ``emitted`` step is stored as the claim leaves it: ``planned``, with a lease of its
    ``emit_count`` emissions until ``lease_until``."""
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
        for number, step, due_at, status, lease_until, emit_count in steps:
            row = PlannedStep(
                invoice_id=invoices[number].id,
                debtor_id="D-1",
                step=step,
                event="invoice.overdue",
                due_at=due_at,
                status="planned" if status == "emitted" else status,
                lease_until=None if status == "emitted" else lease_until,
                emit_count=0 if status == "emitted" else emit_count,
            )
            session.add(row)
            if status == "emitted":
                session.flush()
                session.add(StepLease(step_id=row.id, lease_until=lease_until, emission=emit_count))


def _leases(sessions) -> dict[int, tuple[datetime, int]]:
    with transaction(sessions) as session:
        rows = session.execute(select(StepLease.step_id, StepLease.lease_until, StepLease.emission))
        return {r.step_id: (r.lease_until, r.emission) for r in rows}


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
        every = session.execute(select(PlannedStep.id, PlannedStep.due_at, PlannedStep.status)).all()
    before = _leases(sessions)
    fresh = sorted((r.due_at, r.id) for r in every if r.id not in before and r.due_at <= NOW)
    expired = sorted((until, i) for i, (until, _) in before.items() if until <= NOW)

    recorder = Recorder()
    result = tick(sessions, recorder, NOW, lease=LEASE, batch_size=128, max_in_flight=None)

    published = recorder.published
    assert result.steps == len(published) == len(fresh) + len(expired)
    assert [t.step_id for t in published] == [i for _, i in fresh] + [i for _, i in expired]
    assert all(isinstance(t, StepDue) for t in published)
    assert {t.emission for t in published[: len(fresh)]} == {1}
    assert {t.emission for t in published[len(fresh) :]} == {2}
    assert [len(b) for b in recorder.batches[:-1]] == [128] * (len(recorder.batches) - 1)
    leases = _leases(sessions)
    leased = [i for i, (until, _) in leases.items() if until == NOW + LEASE]
    assert sorted(leased) == sorted(t.step_id for t in published)
    assert {leases[t.step_id][1] for t in published} == {1, 2}
    assert {t.debtor_id for t in published} == {"D-1"} and {t.creditor_id for t in published} == {"default"}
    with transaction(sessions) as session:  # the claim left the steps' rows as they were
        after = session.execute(select(PlannedStep.id, PlannedStep.status, PlannedStep.emit_count)).all()
    assert {(r.status, r.emit_count) for r in after} == {("planned", 0)}
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


class Checking(Recorder):
    """Records, at each publication, whether its steps' leases are already committed (read
    in a transaction of its own), and fails the publication numbered ``fail_at`` (from 1)."""

    def __init__(self, sessions, fail_at: int | None = None) -> None:
        super().__init__()
        self.sessions, self.fail_at, self.committed_first = sessions, fail_at, []

    def publish(self, tasks) -> None:
        leases = _leases(self.sessions)
        self.committed_first.append(all(t.step_id in leases for t in tasks))
        if len(self.committed_first) == self.fail_at:
            raise ConnectionError("broker down")
        super().publish(tasks)


def test_each_batch_is_published_in_claim_order_once_its_claim_has_committed(sessions):
    _store(sessions, [(number, f"s{k}", NOW, "planned", None, 0) for number in range(10) for k in range(5)])
    checking = Checking(sessions)
    assert tick(sessions, checking, NOW, lease=LEASE, batch_size=8).steps == 50
    assert checking.committed_first == [True] * 7
    assert [len(b) for b in checking.batches] == [8] * 6 + [2]
    published = [t.step_id for t in checking.published]
    assert published == sorted(published) and len(set(published)) == 50


@pytest.mark.parametrize("fail_at", [1, 3])
def test_a_failed_publication_stops_the_tick_and_its_batch_waits_for_its_lease(sessions, fail_at):
    """The batch whose publication failed stays leased (its claim had committed) and goes out
    when its lease ends; the batches after it are not claimed: the next tick sends them."""
    _store(sessions, [(number, f"s{k}", NOW, "planned", None, 0) for number in range(7) for k in range(5)])
    failing = Checking(sessions, fail_at=fail_at)
    with pytest.raises(ConnectionError):
        tick(sessions, failing, NOW, lease=LEASE, batch_size=10)
    sent = [t.step_id for t in failing.published]
    assert len(sent) == 10 * (fail_at - 1)
    lost = set(_leases(sessions)) - set(sent)
    assert len(lost) == 10
    nxt = Recorder()
    assert tick(sessions, nxt, NOW + LEASE / 2, lease=LEASE, batch_size=10).steps == 35 - 10 * fail_at
    assert not lost & {t.step_id for t in nxt.published}
    late = Recorder()
    # the leases of the failing tick run out (the next tick's run later): lost and sent alike
    assert tick(sessions, late, NOW + LEASE, lease=LEASE, batch_size=10).steps == 10 * fail_at
    assert {(t.step_id, t.emission) for t in late.published} == {(i, 2) for i in lost | set(sent)}


def test_a_lease_ends_with_its_step_and_the_next_emission_has_the_next_number(sessions):
    """Given four due steps claimed once, when a worker finishes the first and releases the
    second, an event cancels the third and the fourth is marked done on its row alone, then
    the first three leases are gone, their emissions counted in ``emit_count``; the released
    step goes out again at the next tick as emission 2, and the fourth's lease, once it ran
    out, is deleted without an emission."""
    from adapters.dunning_store import SqlDunningStore
    from adapters.sql_store import SqlStore
    from handlers.store import StepFilter

    names = ("finished", "released", "cancelled", "elsewhere")
    _store(sessions, [(n, name, NOW, "planned", None, 0) for n, name in enumerate(names)])
    assert tick(sessions, Recorder(), NOW, lease=LEASE, batch_size=10).steps == 4
    with transaction(sessions) as session:
        ids = {r.step: (r.id, r.invoice_id) for r in session.execute(select(PlannedStep)).scalars()}
    with transaction(sessions) as session:
        store = SqlDunningStore(session)
        store.finish_steps([ids["finished"][0]], NOW)
        store.release_step(ids["released"][0])
        SqlStore(session).cancel_pending(ids["cancelled"][1], "paid", StepFilter())
        session.get(PlannedStep, ids["elsewhere"][0]).status = "done"
    with transaction(sessions) as session:
        rows = {r.step: (r.status, r.emit_count) for r in session.execute(select(PlannedStep)).scalars()}
    assert rows == {
        "finished": ("done", 1),
        "released": ("planned", 1),
        "cancelled": ("cancelled", 1),
        "elsewhere": ("done", 0),
    }
    assert set(_leases(sessions)) == {ids["elsewhere"][0]}

    again = Recorder()
    assert tick(sessions, again, NOW, lease=LEASE, batch_size=10).steps == 1
    assert [(t.step_id, t.emission) for t in again.published] == [(ids["released"][0], 2)]
    later = Recorder()
    assert (
        tick(sessions, later, NOW + LEASE * 3, lease=LEASE, batch_size=10).steps == 1
    )  # released: lease ran out
    assert [(t.step_id, t.emission) for t in later.published] == [(ids["released"][0], 3)]
    assert set(_leases(sessions)) == {ids["released"][0]}


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
        catalog = "pg_" in statement.replace("pg_try_advisory", "")
        if statement.lstrip().upper().startswith(("SELECT", "WITH")) and not catalog:
            cursor.execute("EXPLAIN " + statement, parameters)
            plans.append((statement, "\n".join(row[0] for row in cursor.fetchall())))

    event.listen(engine, "before_cursor_execute", explain)
    now = datetime.now(UTC)
    tick(session_factory(engine), Recorder(), now, lease=LEASE, batch_size=500, max_in_flight=2000)
    # the same statements with steps in flight and leases run out
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO step_leases (step_id, lease_until, emission) SELECT id, "
                "now() + CASE WHEN id % 2 = 0 THEN interval '5 minutes' ELSE -interval '1 minute' END, 1 "
                "FROM planned_steps WHERE step = 's3'"
            )
        )
        connection.execute(
            text("UPDATE planned_steps SET due_at = now() - interval '1 hour' WHERE step = 's3'")
        )
        connection.execute(text("ANALYZE step_leases"))
    plans.clear()  # a table of no rows is read whole: the plans with leases are the ones wanted
    tick(session_factory(engine), Recorder(), now, lease=LEASE, batch_size=500, max_in_flight=10**6)
    event.remove(engine, "before_cursor_execute", explain)
    engine.dispose()

    def plan_of(*words: str) -> list[str]:
        return [plan for statement, plan in plans if all(w in statement for w in words)]

    counts = plan_of("count(*)")
    fresh = plan_of("WITH picked", "INSERT INTO step_leases")
    expired = plan_of("WITH picked", "UPDATE step_leases")
    pending = plan_of("FROM messages")
    assert counts and fresh and expired and pending
    # step_leases holds the steps in flight and the leases run out, no more: the planner
    # may read it whole while it is small (here 4 000 rows); the count stops at its cap
    for plan in counts:
        assert "Limit" in plan, plan
    for plan in fresh:
        assert "ix_planned_steps_due" in plan and "step_leases_pkey" in plan, plan
    for plan in expired:
        assert "planned_steps_pkey" in plan, plan
    for plan in pending:
        assert "ix_messages_pending" in plan, plan
    for plan in counts + fresh + expired + pending:
        assert "Seq Scan on planned_steps" not in plan and "Seq Scan on messages" not in plan, plan


_ACTIONS = st.lists(
    st.one_of(
        st.tuples(st.just("tick"), st.integers(0, 12)),  # minutes later, then a tick
        st.tuples(st.just("release"), st.just(0)),
        st.tuples(st.just("postpone"), st.integers(-3, 12)),  # to now + minutes
        st.tuples(st.just("finish"), st.just(0)),
    ),
    max_size=12,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(actions=_ACTIONS)
def test_a_step_is_emitted_only_without_a_live_lease_each_time_under_a_new_message_id(sqlite_url, actions):
    """Whatever the order of ticks, releases, postponements and the end of one step: a tick
    emits it only when it is planned, due and holds no live lease; each emission's number is
    one more than the last, so its message id is new; after its end it is never emitted."""
    from adapters.dunning_store import SqlDunningStore

    engine = make_engine(sqlite_url)
    if not _MIGRATED.get(sqlite_url):
        migrate(engine)
        _MIGRATED[sqlite_url] = True
    sessions = session_factory(engine)
    with transaction(sessions) as session:
        session.execute(StepLease.__table__.delete())
        session.execute(PlannedStep.__table__.delete())
        session.execute(InvoiceRow.__table__.delete())
        session.execute(DebtorRow.__table__.delete())
    _store(sessions, [(1, "s", NOW, "planned", None, 0)])
    with transaction(sessions) as session:
        step_id = session.execute(select(PlannedStep.id)).scalar_one()

    now, due_at, status, lease_until, emissions, ids = NOW, NOW, "planned", None, 0, set()
    for action, minutes in actions:
        if action == "tick":
            now += timedelta(minutes=minutes)
            recorder = Recorder()
            tick(sessions, recorder, now, lease=LEASE, batch_size=10, max_in_flight=100)
            expected = status == "planned" and due_at <= now and (lease_until is None or lease_until <= now)
            if expected:
                emissions, lease_until = emissions + 1, now + LEASE
            assert [(t.step_id, t.emission) for t in recorder.published] == (
                [(step_id, emissions)] if expected else []
            )
            assert all(t.message_id not in ids for t in recorder.published)
            ids.update(t.message_id for t in recorder.published)
            continue
        with transaction(sessions) as session:
            store = SqlDunningStore(session)
            if action == "release" and status == "planned":
                store.release_step(step_id)
            elif action == "postpone" and status == "planned":
                due_at = now + timedelta(minutes=minutes)
                store.postpone_step(step_id, due_at)
            elif action == "finish" and status == "planned":
                store.finish_step(step_id, now)
                status = "done"
            else:
                continue
        lease_until = None
    with transaction(sessions) as session:
        emit_count = session.execute(select(PlannedStep.emit_count)).scalar_one()
    leased = _leases(sessions).get(step_id, (None, 0))[1]
    assert emit_count + leased == emissions
    engine.dispose()


_MIGRATED: dict[str, bool] = {}


def _lease_on_cancelled(sessions, number: int, step: str) -> None:
    """A lease left on a step already cancelled (as a store written before leases were
    deleted on cancellation may hold)."""
    with transaction(sessions) as session:
        invoice = session.execute(select(InvoiceRow).where(InvoiceRow.number == f"F-{number}")).scalar_one()
        row = session.execute(
            select(PlannedStep).where(PlannedStep.invoice_id == invoice.id, PlannedStep.step == step)
        ).scalar_one()
        row.status = "cancelled"
        session.add(StepLease(step_id=row.id, lease_until=NOW + LEASE, emission=1))


def test_a_cancellation_deletes_the_leases_of_the_invoices_cancelled_steps_and_keeps_their_count(sessions):
    """On PostgreSQL in one statement, on SQLite in two: the same rows either way."""
    from handlers.store import StepFilter

    later = NOW + timedelta(days=3)
    _store(
        sessions,
        [
            (1, "reminder_1", NOW, "emitted", NOW + LEASE, 2),
            (1, "reminder_2", later, "planned", None, 0),
            (1, "old", NOW, "planned", None, 0),
            (2, "old", NOW, "planned", None, 0),
            (2, "reminder_3", NOW, "done", None, 1),
            (3, "reminder_4", NOW, "emitted", NOW + LEASE, 1),
        ],
    )
    _lease_on_cancelled(sessions, 1, "old")
    _lease_on_cancelled(sessions, 2, "old")
    with transaction(sessions) as session:
        ids = {number: id_ for number, id_ in session.execute(select(InvoiceRow.number, InvoiceRow.id))}
        step = session.execute(select(PlannedStep).where(PlannedStep.step == "reminder_1")).scalar_one()
        assert (step.status, step.emit_count) == ("planned", 0)  # mapped before the cancellation
        store = session.store
        assert store.cancel_pending(ids["F-1"], "invoice settled", StepFilter()) == 2
        assert (step.status, step.reason, step.emit_count) == ("cancelled", "invoice settled", 2)
        assert store.cancel_pending(ids["F-2"], "invoice settled", StepFilter()) == 0  # nothing pending
    with transaction(sessions) as session:
        steps = {
            (r.invoice_id, r.step): (r.status, r.emit_count)
            for r in session.execute(select(PlannedStep)).scalars()
        }
    assert steps[(ids["F-1"], "reminder_1")] == ("cancelled", 2)  # its lease's emissions kept
    assert steps[(ids["F-1"], "reminder_2")] == ("cancelled", 0)
    leased = {step_id for step_id in _leases(sessions)}
    with transaction(sessions) as session:
        owners = {
            id_: invoice for id_, invoice in session.execute(select(PlannedStep.id, PlannedStep.invoice_id))
        }
    # invoice 1: every lease gone, the old cancelled step's too; invoice 2 cancelled nothing,
    # its old lease stays; invoice 3 was not touched
    assert sorted(owners[s] for s in leased) == [ids["F-2"], ids["F-3"]]
