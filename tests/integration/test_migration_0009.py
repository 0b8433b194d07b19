"""Migration 0009 adds the version of evidence records to a store at 0007: the records
stored before are version 1 and still verify; it can be undone."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import inspect, select, text
from sqlalchemy.orm import Session

from adapters.orm import EvidenceHead, EvidenceRecord
from adapters.store import _alembic_config, make_engine, schema_is_current
from handlers.evidence import GENESIS, canonical, record_hash, verify


def _columns(engine, table: str) -> set[str]:
    with engine.connect() as connection:
        return {c["name"] for c in inspect(connection).get_columns(table)}


def test_records_stored_before_0009_are_version_1_and_verify_and_0009_can_be_undone(database_url):
    from alembic import command

    engine = make_engine(database_url)
    config = _alembic_config(engine)
    command.upgrade(config, "0007")
    at = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    payload = canonical({"event_id": "E-1", "type": "invoice.issued"})
    digest = record_hash(GENESIS, 1, at, "event.accepted", payload)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO evidence (seq, at, kind, debtor_id, invoice_numbers, payload, prev_hash, hash)"
                " VALUES (1, :at, 'event.accepted', 'D-1', '[\"F-1\"]', :payload, :prev, :hash)"
            ),
            {"at": at, "payload": payload, "prev": GENESIS, "hash": digest},
        )
        connection.execute(text("INSERT INTO evidence_head (id, seq, hash) VALUES (1, 1, :h)"), {"h": digest})
    assert "version" not in _columns(engine, "evidence")

    command.upgrade(config, "head")
    assert schema_is_current(engine)
    with Session(engine) as session:
        rows = session.execute(select(EvidenceRecord)).scalars().all()
        assert [r.version for r in rows] == [1]
        assert verify(rows, session.get(EvidenceHead, 1)).ok

    command.downgrade(config, "0007")
    assert "version" not in _columns(engine, "evidence")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT hash FROM evidence")).scalar_one() == digest
    engine.dispose()
