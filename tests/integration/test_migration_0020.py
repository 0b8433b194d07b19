"""Migration 0020 adds ``messages.record_due``: a message sent before it has its record
already, so none is due after the upgrade, and the sweep finds nothing to write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import inspect, text

from adapters.store import _alembic_config, make_engine, session_factory, transaction
from handlers.delivery import record_left_transmissions

NOW = datetime(2026, 4, 1, 7, 0, tzinfo=UTC)


def _message(connection, number: int, status: str, sent_at: datetime | None) -> None:
    connection.execute(
        text(
            "INSERT INTO messages (id, message_id, debtor_id, channel, step, local_day, recipient, "
            "subject, body_text, content, content_sha256, amounts, status, attempts, created_at, "
            "sent_at) VALUES (:id, :message_id, 'D-1', 'email', 'pre_due', '2026-03-27', "
            "'compta@acme.example', 'Rappel', '…', :content, :sha, '{}', :status, 1, :now, :sent_at)"
        ),
        {
            "id": number,
            "message_id": f"<m-{number}@test>",
            "content": b"bytes",
            "sha": "ab" * 32,
            "status": status,
            "now": NOW - timedelta(days=1),
            "sent_at": sent_at,
        },
    )


def test_0020_leaves_no_record_due_for_messages_sent_before_it(database_url):
    from alembic import command

    engine = make_engine(database_url)
    config = _alembic_config(engine)
    command.upgrade(config, "0019")
    with engine.begin() as connection:
        _message(connection, 1, "sent", NOW - timedelta(days=1))
        _message(connection, 2, "pending", None)
    command.upgrade(config, "0020")
    with engine.connect() as connection:
        assert "ix_messages_record_due" in {i["name"] for i in inspect(connection).get_indexes("messages")}
        due = dict(connection.execute(text("SELECT id, record_due FROM messages")).all())
        assert {pk: bool(flag) for pk, flag in due.items()} == {1: False, 2: False}
    sessions = session_factory(engine)
    units = lambda: transaction(sessions)  # noqa: E731  # units of work on this store
    assert record_left_transmissions(units, NOW + timedelta(days=1), timedelta(minutes=5)) == 0

    command.downgrade(config, "0019")
    with engine.connect() as connection:
        assert "record_due" not in {c["name"] for c in inspect(connection).get_columns("messages")}
        assert connection.execute(text("SELECT count(*) FROM messages")).scalar_one() == 2
    engine.dispose()
