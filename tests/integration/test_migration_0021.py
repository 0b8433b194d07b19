"""Migration 0021: a debtor's messages indexed by (debtor, creditor, day), the items' index on
invoice_id dropped; up and down on SQLite and PostgreSQL. On PostgreSQL without statistics on
``messages``, the marking of a message by id goes by its primary key and the read of a
debtor's recent messages by the debtor, not through every message of the creditor; and a
statement built once is prepared by the server after a few executions on a connection."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect, text

from adapters.store import _alembic_config, make_engine, migrate

NOW = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


def _indexes(connection, table: str) -> set[str]:
    return {i["name"] for i in inspect(connection).get_indexes(table)}


def _compression(connection) -> str:
    """The compression set on messages.content: "l" lz4, "p" pglz, "" the default."""
    return connection.execute(
        text(
            "SELECT attcompression FROM pg_attribute "
            "WHERE attrelid = 'messages'::regclass AND attname = 'content'"
        )
    ).scalar_one()


def test_0021_replaces_the_message_indexes_and_undoes_it(database_url):
    """Given a store at 0020, when upgraded to 0021, then messages have the (creditor, debtor,
    day) index instead of the creditor's and the debtor's, and the items no index of their own
    on invoice_id (uq_sent_step starts with it); downgraded, the three indexes are back."""
    from alembic import command

    engine = make_engine(database_url)
    config = _alembic_config(engine)
    command.upgrade(config, "0020")
    with engine.connect() as connection:
        assert {"ix_messages_creditor_id", "ix_messages_debtor_id"} <= _indexes(connection, "messages")
        assert "ix_message_items_invoice_id" in _indexes(connection, "message_items")
        if connection.dialect.name == "postgresql":
            assert _compression(connection) == ""  # the server's default
    command.upgrade(config, "0021")
    with engine.connect() as connection:
        messages = _indexes(connection, "messages")
        assert "ix_messages_debtor_day" in messages
        assert not {"ix_messages_creditor_id", "ix_messages_debtor_id"} & messages
        columns = {i["name"]: i["column_names"] for i in inspect(connection).get_indexes("messages")}[
            "ix_messages_debtor_day"
        ]
        assert columns == ["debtor_id", "creditor_id", "local_day"]
        assert "ix_message_items_invoice_id" not in _indexes(connection, "message_items")
        uniques = inspect(connection).get_unique_constraints("message_items")
        assert ["invoice_id", "step", "channel"] in [u["column_names"] for u in uniques]
        if connection.dialect.name == "postgresql":
            assert _compression(connection) == "l"  # lz4, built into the server here
    command.downgrade(config, "0020")
    with engine.connect() as connection:
        messages = _indexes(connection, "messages")
        assert {"ix_messages_creditor_id", "ix_messages_debtor_id"} <= messages
        assert "ix_messages_debtor_day" not in messages
        assert "ix_message_items_invoice_id" in _indexes(connection, "message_items")
        if connection.dialect.name == "postgresql":
            assert _compression(connection) == ""  # the server's default
    command.upgrade(config, "0021")
    engine.dispose()


def _more_messages(connection, first: int, last: int) -> None:
    """Messages ``first`` to ``last`` of the default creditor, one per debtor, as a reminder
    writes them (a 3 kB e-mail, its text), the half of them sent."""
    connection.execute(
        text(
            "INSERT INTO messages (message_id, debtor_id, channel, step, local_day, recipient, subject, "
            "body_text, content, content_sha256, amounts, status, attempts, created_at, creditor_id) "
            "SELECT 'm-' || g, 'D-' || lpad(g::text, 5, '0'), 'email', 'reminder_1', DATE '2026-12-07', "
            "'debtor@example.com', 'Reminder', repeat('Invoice F-' || g || ' is overdue. ', 40), "
            "convert_to(repeat(md5(g::text) || ' ', 96), 'UTF8'), md5(g::text), '{}', "
            "CASE WHEN g % 2 = 0 THEN 'sent' ELSE 'pending' END, 0, :now, 'default' "
            "FROM generate_series(CAST(:first AS integer), CAST(:last AS integer)) AS g"
        ),
        {"now": NOW, "first": first, "last": last},
    )


def _generic_plan(connection, prepare: str, execute: str) -> dict:
    """The plan PostgreSQL caches for a prepared statement (its generic plan), executed."""
    connection.exec_driver_sql("SET LOCAL plan_cache_mode = force_generic_plan")
    connection.exec_driver_sql(prepare)
    plan = connection.exec_driver_sql(f"EXPLAIN (ANALYZE, FORMAT JSON) {execute}").scalar_one()[0]
    return plan["Plan"]


def _scans(node: dict) -> list[tuple[str, int]]:
    """(index, rows removed by its filter) of each scan of a plan; "seq" for a whole table."""
    found = []
    if "Index Name" in node:
        found.append((node["Index Name"], node.get("Rows Removed by Filter", 0)))
    elif node.get("Node Type") == "Seq Scan":
        found.append(("seq", node.get("Rows Removed by Filter", 0)))
    for child in node.get("Plans", []):
        found.extend(_scans(child))
    return found


@pytest.mark.postgres
def test_without_statistics_a_message_is_marked_by_its_id_and_read_by_its_debtor(postgres_url):
    """Given the messages of one creditor and no statistics on them (ANALYZE ran on the empty
    table: a new store, autovacuum not run yet), when a message is marked by id and a debtor's
    messages since its last sent one are read (prepared statements, generic plans), then at
    100, 300, 1 000 and 3 000 messages the marking goes by the primary key and the read by the
    debtor's index, each reading only its own rows: before 0021 both went through the
    creditor's index and read all its messages."""
    engine = make_engine(postgres_url)
    migrate(engine)
    with engine.connect() as connection:
        connection.execute(text("ANALYZE messages"))
        connection.commit()
        written = 0
        for count in (100, 300, 1000, 3000):
            _more_messages(connection, written + 1, count)
            written = count
            with connection.begin_nested():
                marking = _generic_plan(
                    connection,
                    "PREPARE marking(int, varchar) AS UPDATE messages SET status = 'sent', "
                    "attempts = messages.attempts + 1, sent_at = now() WHERE messages.id = $1 "
                    "AND messages.status != 'sent' AND messages.creditor_id = $2 RETURNING messages.id",
                    f"EXECUTE marking({count - 1}, 'default')",
                )
                recent = _generic_plan(
                    connection,
                    "PREPARE recent(varchar, varchar, date) AS SELECT messages.local_day, "
                    "messages.status, messages.channel, messages.amounts FROM messages "
                    "WHERE messages.creditor_id = $1 AND messages.debtor_id = $2 "
                    "AND messages.local_day >= coalesce((SELECT max(sent.local_day) FROM messages AS sent "
                    "WHERE sent.creditor_id = $1 AND sent.debtor_id = $2 "
                    "AND sent.status NOT IN ('draft', 'rejected', 'withdrawn')), $3)",
                    f"EXECUTE recent('default', 'D-{count // 2:05d}', DATE '0001-01-01')",
                )
                connection.exec_driver_sql("DEALLOCATE marking")
                connection.exec_driver_sql("DEALLOCATE recent")
            assert _scans(marking) == [("messages_pkey", 0)], count
            scans = _scans(recent)
            assert scans and {index for index, _ in scans} == {"ix_messages_debtor_day"}, count
            assert all(removed == 0 for _, removed in scans), count
        connection.commit()
    engine.dispose()


@pytest.mark.postgres
def test_a_statement_built_once_is_prepared_by_the_server_after_a_few_executions(postgres_url):
    """Given the engine of the store, when the chain head's locking read (built once per
    process) runs six times on one connection, then the server holds it prepared: its text is
    the same each time and the engine leaves psycopg's preparation on."""
    from adapters.uow import _LOCK_HEAD

    engine = make_engine(postgres_url)
    migrate(engine)
    with engine.connect() as connection:
        for _ in range(6):
            with connection.begin():
                connection.execute(_LOCK_HEAD, {"creditor": "default"}).all()
        prepared = connection.execute(
            text("SELECT statement FROM pg_prepared_statements WHERE statement LIKE :table"),
            {"table": "%evidence_head%"},
        ).all()
        assert len(prepared) == 1
        assert "FOR UPDATE" in prepared[0].statement
    engine.dispose()
