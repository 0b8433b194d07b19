"""Tampering with the evidence table is detected by `relance evidence verify`, naming the record."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, func, select, update

from adapters.orm import EvidenceRecord
from adapters.store import transaction
from relance.reports import verify_chain
from tests.integration.test_flow import at
from tests.support import advance, ingest, invoice_issued, make_test_app, payment


@pytest.fixture
def app(database_url, tmp_path):
    application = make_test_app(database_url, tmp_path, at("2026-03-02 10:00"))
    ingest(application, invoice_issued("F-1", "2026-04-01"), invoice_issued("F-2", "2026-04-02"))
    advance(application, at("2026-03-27 09:00"))
    advance(application, at("2026-03-30 09:00"))
    ingest(application, payment("F-1", "100.00", "2026-03-30"))
    yield application
    application.dispose()


def records(app) -> int:
    with transaction(app.sessions) as session:
        return session.execute(select(func.count()).select_from(EvidenceRecord)).scalar_one()


def test_an_untouched_chain_verifies(app):
    check = verify_chain(app)
    assert check.ok and check.records == records(app) >= 6


def test_an_altered_record_is_named(app):
    with transaction(app.sessions) as session:
        session.execute(
            update(EvidenceRecord).where(EvidenceRecord.seq == 3).values(payload=EvidenceRecord.payload + " ")
        )
    check = verify_chain(app)
    assert (check.ok, check.broken_seq, check.reason) == (False, 3, "content does not match its hash")


def test_an_altered_record_with_a_recomputed_hash_breaks_the_next_link(app):
    from handlers.evidence import record_hash

    with transaction(app.sessions) as session:
        row = session.get(EvidenceRecord, 2)
        row.payload = row.payload.replace("}", ',"forged":true}', 1)
        row.hash = record_hash(row.prev_hash, row.seq, row.at, row.kind, row.payload)
    check = verify_chain(app)
    assert (check.ok, check.broken_seq, check.reason) == (False, 3, "previous-hash link does not match")


def test_a_deleted_record_is_named(app):
    with transaction(app.sessions) as session:
        session.execute(delete(EvidenceRecord).where(EvidenceRecord.seq == 4))
    check = verify_chain(app)
    assert (check.ok, check.broken_seq, check.reason) == (False, 4, "record 4 is missing")


def test_two_swapped_records_are_detected(app):
    with transaction(app.sessions) as session:
        a, b = session.get(EvidenceRecord, 2), session.get(EvidenceRecord, 3)
        fields = ("at", "kind", "payload", "prev_hash", "hash", "debtor_id", "message_id")
        values_a = {f: getattr(a, f) for f in fields}
        for f in fields:
            setattr(a, f, getattr(b, f))
            setattr(b, f, values_a[f])
    check = verify_chain(app)
    assert (check.ok, check.broken_seq) == (False, 2)


def test_a_truncated_chain_is_detected_through_its_head(app):
    total = records(app)
    with transaction(app.sessions) as session:
        session.execute(delete(EvidenceRecord).where(EvidenceRecord.seq >= total - 1))
    check = verify_chain(app)
    assert (check.ok, check.broken_seq, check.reason) == (
        False,
        total - 1,
        "records after this one were removed",
    )


def test_the_command_exits_1_and_names_the_record(app, capsys, monkeypatch):
    from relance.cli import main

    with transaction(app.sessions) as session:
        session.execute(update(EvidenceRecord).where(EvidenceRecord.seq == 5).values(kind="reminder.skipped"))
    monkeypatch.setenv("RELANCE_DATABASE_URL", str(app.engine.url.render_as_string(hide_password=False)))
    assert main(["evidence", "verify", "--data-dir", str(app.settings.data_dir)]) == 1
    out = capsys.readouterr().out.strip()
    assert out == "broken at record 5: content does not match its hash (4 records verified before it)"
