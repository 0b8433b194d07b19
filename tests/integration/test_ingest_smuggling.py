"""Lines that try to smuggle something through ``relance ingest``, on SQLite and
PostgreSQL: each is rejected on its own line and the rest of the batch is kept."""

from __future__ import annotations

import hashlib
import json

import pytest
from sqlalchemy import select

from adapters.orm import InvoiceRow, RejectedEvent
from adapters.store import transaction
from relance.cli import main
from tests.support import DEBTOR, invoice_issued, make_test_app, payment

OTHER = {**DEBTOR, "id": "D-2", "name": "Autre SARL", "email": "compta@autre.example"}


@pytest.fixture
def cli(database_url, tmp_path, monkeypatch, capfd):
    """Run ``relance`` on the test database; returns (run, app to read the store)."""
    for name in ("RELANCE_REDIS_URL", "RELANCE_SMTP_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RELANCE_DATABASE_URL", database_url)
    data_dir = tmp_path / "var"

    def run(*args: str) -> int:
        return main([*args, "--data-dir", str(data_dir)])

    assert run("migrate") == 0
    capfd.readouterr()
    return run


def write(tmp_path, *lines: str | bytes) -> str:
    path = tmp_path / "feed.jsonl"
    path.write_bytes(b"\n".join(x if isinstance(x, bytes) else x.encode() for x in lines) + b"\n")
    return str(path)


def stored_rejections(database_url, tmp_path) -> list[RejectedEvent]:
    app = make_test_app(database_url, tmp_path / "read", _now())
    try:
        with transaction(app.sessions) as session:
            rows = session.execute(select(RejectedEvent).order_by(RejectedEvent.id)).scalars().all()
            session.expunge_all()
            return list(rows)
    finally:
        app.dispose()


def invoice(database_url, tmp_path, number: str) -> InvoiceRow | None:
    app = make_test_app(database_url, tmp_path / "read", _now())
    try:
        with transaction(app.sessions) as session:
            row = session.execute(select(InvoiceRow).where(InvoiceRow.number == number)).scalar_one_or_none()
            session.expunge_all()
            return row
    finally:
        app.dispose()


def _now():
    from datetime import UTC, datetime

    return datetime(2026, 3, 12, 9, tzinfo=UTC)


def test_an_escaped_lone_surrogate_is_rejected_alone_and_the_batch_is_kept(
    cli, database_url, tmp_path, capfd
):
    surrogate = json.dumps(payment("F-1", "5.00", "2026-03-06", event_id="\ud800"))
    feed = write(
        tmp_path,
        json.dumps(invoice_issued("F-1", "2026-04-01")),
        surrogate,
        json.dumps(payment("F-1", "200.00", "2026-03-05")),
    )
    assert cli("ingest", feed) == 1
    out, err = capfd.readouterr()
    assert out.splitlines() == [
        "line 2: rejected: event_id: lone surrogate \\ud800 (escaped in the JSON text)",
        "accepted 2, duplicate 0, rejected 1",
    ]
    assert "Traceback" not in err
    found = invoice(database_url, tmp_path, "F-1")
    assert found is not None and found.paid == 200
    [row] = stored_rejections(database_url, tmp_path)
    assert (row.event_id, row.line_no, row.raw) == (None, 2, surrogate)
    assert cli("inbox") == 0
    assert "event_id: lone surrogate" in capfd.readouterr().out


def test_an_invoice_issued_for_another_debtor_is_rejected_naming_both(cli, database_url, tmp_path, capfd):
    feed = write(
        tmp_path,
        json.dumps(invoice_issued("F-1", "2026-04-01", "1000.00")),
        json.dumps(invoice_issued("F-1", "2026-04-01", "1.00", debtor=OTHER, event_id="steal-1")),
        json.dumps(payment("F-1", "200.00", "2026-03-05")),
    )
    assert cli("ingest", feed) == 1
    out = capfd.readouterr().out.splitlines()
    assert out[0] == "line 2: rejected: invoice.debtor_id: invoice F-1 belongs to debtor D-1, not D-2"
    found = invoice(database_url, tmp_path, "F-1")
    assert found is not None
    assert (found.debtor_id, found.amount_due, found.paid) == ("D-1", 1000, 200)


def test_an_invoice_updated_for_another_debtor_is_rejected(cli, database_url, tmp_path, capfd):
    moved = invoice_issued("F-1", "2026-04-01", "1.00", debtor=OTHER, event_id="steal-2")
    moved["type"] = "invoice.updated"
    del moved["debtor"]
    feed = write(tmp_path, json.dumps(invoice_issued("F-1", "2026-04-01", "1000.00")), json.dumps(moved))
    assert cli("ingest", feed) == 1
    out = capfd.readouterr().out.splitlines()
    assert out[0] == "line 2: rejected: invoice.debtor_id: invoice F-1 belongs to debtor D-1, not D-2"
    found = invoice(database_url, tmp_path, "F-1")
    assert found is not None and found.amount_due == 1000


def test_an_oversized_line_is_stored_cut_with_its_size_and_digest(cli, database_url, tmp_path, capfd):
    huge = b'{"event_id":"big","padding":"' + b"x" * 300_000 + b'"}'
    feed = write(tmp_path, huge, json.dumps(invoice_issued("F-1", "2026-04-01")))
    assert cli("ingest", feed) == 1
    out = capfd.readouterr().out.splitlines()
    digest = hashlib.sha256(huge).hexdigest()
    reason = (
        f"line is longer than 262144 bytes: {len(huge)} bytes, sha256 {digest}; its first 4096 bytes are kept"
    )
    assert out == [f"line 1: rejected: {reason}", "accepted 1, duplicate 0, rejected 1"]
    [row] = stored_rejections(database_url, tmp_path)
    assert (row.reason, row.raw) == (reason, huge[:4096].decode())
    assert cli("inbox") == 0
    assert reason in capfd.readouterr().out
