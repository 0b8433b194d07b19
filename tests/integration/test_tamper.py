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
    from handlers.evidence import hash_of

    with transaction(app.sessions) as session:
        row = session.get(EvidenceRecord, ("default", 2))
        row.payload = row.payload.replace("}", ',"forged":true}', 1)
        row.hash = hash_of(row)
    check = verify_chain(app)
    assert (check.ok, check.broken_seq, check.reason) == (False, 3, "previous-hash link does not match")


def test_a_deleted_record_is_named(app):
    with transaction(app.sessions) as session:
        session.execute(delete(EvidenceRecord).where(EvidenceRecord.seq == 4))
    check = verify_chain(app)
    assert (check.ok, check.broken_seq, check.reason) == (False, 4, "record 4 is missing")


def test_two_swapped_records_are_detected(app):
    with transaction(app.sessions) as session:
        a, b = session.get(EvidenceRecord, ("default", 2)), session.get(EvidenceRecord, ("default", 3))
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


def test_a_record_moved_to_another_debtor_is_named(app):
    with transaction(app.sessions) as session:
        seq = (
            session.execute(
                select(EvidenceRecord.seq)
                .where(EvidenceRecord.kind == "event.accepted")
                .order_by(EvidenceRecord.seq.desc())
            )
            .scalars()
            .first()
        )
        session.execute(update(EvidenceRecord).where(EvidenceRecord.seq == seq).values(debtor_id="D-OTHER"))
    check = verify_chain(app)
    assert (check.ok, check.broken_seq, check.reason) == (False, seq, "content does not match its hash")


@pytest.mark.parametrize(
    "column, value",
    [("invoice_numbers", ["F-9"]), ("case_id", 99), ("message_id", "<forged@example>")],
)
def test_a_record_given_other_selectors_is_named(app, column, value):
    with transaction(app.sessions) as session:
        session.execute(update(EvidenceRecord).where(EvidenceRecord.seq == 2).values({column: value}))
    check = verify_chain(app)
    assert (check.ok, check.broken_seq, check.reason) == (False, 2, "content does not match its hash")


def test_new_records_are_version_4(app):
    with transaction(app.sessions) as session:
        versions = set(session.execute(select(EvidenceRecord.version)).scalars())
    assert versions == {4}


def test_a_recipient_altered_in_a_version_3_record_is_named(app):
    with transaction(app.sessions) as session:
        row = (
            session.execute(
                select(EvidenceRecord)
                .where(EvidenceRecord.kind == "reminder.sent")
                .order_by(EvidenceRecord.seq)
            )
            .scalars()
            .first()
        )
        seq = row.seq
        row.payload = row.payload.replace("compta@acme.example", "other@acme.example")
    check = verify_chain(app)
    assert (check.ok, check.broken_seq, check.reason) == (False, seq, "content does not match its hash")


def test_a_version_3_record_whose_salt_was_deleted_is_named(app):
    from adapters.orm import DebtorSalt

    with transaction(app.sessions) as session:
        session.execute(delete(DebtorSalt))
        first = session.execute(
            select(func.min(EvidenceRecord.seq)).where(EvidenceRecord.kind == "reminder.sent")
        ).scalar_one()
    check = verify_chain(app)
    assert (check.ok, check.broken_seq, check.reason) == (
        False,
        first,
        "personal data without its debtor's salt",
    )


def test_a_deleted_head_is_detected(app):
    from adapters.orm import EvidenceHead

    with transaction(app.sessions) as session:
        session.execute(delete(EvidenceHead))
    check = verify_chain(app)
    assert (check.ok, check.reason) == (False, "the chain head is missing")


def test_a_head_that_does_not_match_the_last_record_is_detected(app):
    from adapters.orm import EvidenceHead

    with transaction(app.sessions) as session:
        session.execute(update(EvidenceHead).values(hash="f" * 64))
    check = verify_chain(app)
    assert (check.ok, check.reason) == (False, "last record does not match the chain head")


def test_a_deleted_head_fails_the_command_with_one_line(app, capsys, monkeypatch):
    from adapters.orm import EvidenceHead
    from relance.cli import main

    with transaction(app.sessions) as session:
        session.execute(delete(EvidenceHead))
    monkeypatch.setenv("RELANCE_DATABASE_URL", str(app.engine.url.render_as_string(hide_password=False)))
    assert main(["evidence", "verify", "--data-dir", str(app.settings.data_dir)]) == 1
    out = capsys.readouterr().out.strip()
    total = records(app)
    assert out == f"broken at record {total}: the chain head is missing ({total} records verified before it)"


def test_a_version_1_record_written_before_still_verifies(database_url, tmp_path):
    """A record stored as before version 2 (no version column given, hash over five parts)."""
    from sqlalchemy import text

    from handlers.evidence import GENESIS, canonical, record_hash

    application = make_test_app(database_url, tmp_path, at("2026-03-02 10:00"))
    when = at("2026-03-01 09:00")
    payload = canonical({"event_id": "E-old", "type": "invoice.issued"})
    digest = record_hash(GENESIS, 1, when, "event.accepted", payload)
    with application.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO evidence (seq, at, kind, debtor_id, invoice_numbers, case_id, message_id,"
                " payload, prev_hash, hash) VALUES (1, :at, 'event.accepted', 'D-1', '[\"F-0\"]', NULL,"
                " NULL, :payload, :prev, :hash)"
            ),
            {"at": when, "payload": payload, "prev": GENESIS, "hash": digest},
        )
        connection.execute(
            text("INSERT INTO evidence_head (id, seq, hash) VALUES (1, 1, :hash)"), {"hash": digest}
        )
    ingest(application, invoice_issued("F-1", "2026-04-01"))
    try:
        with transaction(application.sessions) as session:
            versions = (
                session.execute(select(EvidenceRecord.version).order_by(EvidenceRecord.seq)).scalars().all()
            )
        check = verify_chain(application)
        assert versions[0] == 1 and set(versions[1:]) == {4} and len(versions) >= 2
        assert check.ok and check.records == len(versions)
    finally:
        application.dispose()
