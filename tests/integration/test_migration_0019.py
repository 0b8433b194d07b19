"""Migration 0019 moves the claims of planned steps into step_leases: a store at 0018 with
steps in flight keeps them in flight, and the next emission numbers follow the old ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import inspect, text

from adapters.store import _alembic_config, make_engine, session_factory
from scheduler.tick import tick

NOW = datetime(2026, 4, 1, 7, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)


class Recorder:
    def __init__(self) -> None:
        self.published: list = []

    def publish(self, tasks) -> None:
        self.published.extend(tasks)


def _at_0018(connection) -> dict[str, int]:
    """One debtor, one invoice, four steps: in flight, lease run out, planned, done."""
    connection.execute(
        text(
            "INSERT INTO debtors (id, name, kind, language, timezone, country, address, opt_out, "
            "email_bounced, updated_at) VALUES ('D-1', 'ACME', 'business', 'fr', 'Europe/Paris', 'FR', "
            "'{}', false, false, :now)"
        ),
        {"now": NOW},
    )
    connection.execute(
        text(
            "INSERT INTO invoices (id, number, debtor_id, issue_date, due_date, currency, amount_due, "
            "paid, credited, status, disputed, ever_disputed, in_payment_plan, created_at, updated_at) "
            "VALUES (1, 'F-1', 'D-1', '2026-01-01', '2026-03-01', 'EUR', 10000, 0, 0, "
            "'open', false, false, false, :now, :now)"
        ),
        {"now": NOW},
    )
    rows = {
        # step: (status, lease_until, emit_count)
        "in_flight": ("emitted", NOW + timedelta(minutes=2), 1),
        "ran_out": ("emitted", NOW - timedelta(minutes=1), 2),
        "planned": ("planned", None, 0),
        "done": ("done", NOW - timedelta(days=1), 1),
    }
    ids = {}
    for number, (step, (status, lease_until, emit_count)) in enumerate(rows.items(), 1):
        connection.execute(
            text(
                "INSERT INTO planned_steps (id, invoice_id, debtor_id, step, event, due_at, status, "
                "lease_until, emit_count) VALUES (:id, 1, 'D-1', :step, 'invoice.overdue', :due, :status, "
                ":lease, :count)"
            ),
            {
                "id": number,
                "step": step,
                "due": NOW - timedelta(hours=1),
                "status": status,
                "lease": lease_until,
                "count": emit_count,
            },
        )
        ids[step] = number
    return ids


def _steps(connection) -> dict[int, tuple[str, int]]:
    rows = connection.execute(text("SELECT id, status, emit_count FROM planned_steps"))
    return {r.id: (r.status, r.emit_count) for r in rows}


def test_0019_keeps_the_steps_in_flight_and_their_emission_numbers(database_url):
    """Given a store at 0018 with a step in flight, a step whose lease ran out, a planned step
    and a done one, when upgraded to 0019 and ticked, then the step in flight is not emitted
    again, the one whose lease ran out is, as its third emission, the planned one as its first,
    and the claims write leases, not the steps; downgraded, the leased steps are emitted again."""
    from alembic import command

    engine = make_engine(database_url)
    config = _alembic_config(engine)
    command.upgrade(config, "0018")
    with engine.begin() as connection:
        ids = _at_0018(connection)
    command.upgrade(config, "0019")
    with engine.connect() as connection:
        found = inspect(connection)
        assert {"step_id", "creditor_id", "lease_until", "emission"} <= {
            c["name"] for c in found.get_columns("step_leases")
        }
        assert "ix_planned_steps_lease" not in {i["name"] for i in found.get_indexes("planned_steps")}
        leases = {r.step_id: r.emission for r in connection.execute(text("SELECT * FROM step_leases"))}
        assert leases == {ids["in_flight"]: 0, ids["ran_out"]: 0}
        assert {s for s, _ in _steps(connection).values()} == {"planned", "done"}

    recorder = Recorder()
    assert tick(session_factory(engine), recorder, NOW, lease=LEASE, batch_size=10).steps == 2
    assert [(t.step_id, t.emission) for t in recorder.published] == [(ids["planned"], 1), (ids["ran_out"], 3)]
    with engine.connect() as connection:
        assert _steps(connection) == {
            ids["in_flight"]: ("planned", 1),
            ids["ran_out"]: ("planned", 2),
            ids["planned"]: ("planned", 0),
            ids["done"]: ("done", 1),
        }

    command.downgrade(config, "0018")
    with engine.connect() as connection:
        assert "step_leases" not in inspect(connection).get_table_names()
        assert _steps(connection) == {
            ids["in_flight"]: ("emitted", 1),
            ids["ran_out"]: ("emitted", 3),
            ids["planned"]: ("emitted", 1),
            ids["done"]: ("done", 1),
        }
    engine.dispose()
