"""`relance inbox replay ID [--file FILE | -]`: a rejected event ingested again."""

from __future__ import annotations

import io
import json
import sys

import pytest

from relance.cli import main
from tests.support import invoice_issued, payment


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    for name in ("RELANCE_DATABASE_URL", "RELANCE_REDIS_URL", "RELANCE_SMTP_HOST"):
        monkeypatch.delenv(name, raising=False)
    return str(tmp_path / "var")


@pytest.fixture
def rejected_payment(tmp_path, data_dir, capsys):
    """F-1 issued (1200.00) and a payment of 200 written as a float, rejected as row 1."""
    good = json.dumps(invoice_issued("F-1", "2026-04-01"))
    paid = payment("F-1", "200.00", "2026-04-02", event_id="pay-1")
    bad = json.dumps(paid).replace('"200.00"', "200.0")
    source = tmp_path / "events.jsonl"
    source.write_text(f"{good}\n{bad}\n", encoding="utf-8")
    assert main(["ingest", str(source), "--data-dir", data_dir]) == 1
    capsys.readouterr()
    return paid


def _balance(data_dir: str, capsys) -> str:
    assert main(["status", "--json", "--data-dir", data_dir]) == 0
    report = json.loads(capsys.readouterr().out)
    return next(v for k, v in report.items() if k.startswith("balance_") and v != "0.00")


def test_a_corrected_payment_is_accepted_marked_replayed_and_changes_the_balance(
    tmp_path, data_dir, rejected_payment, capsys
):
    assert _balance(data_dir, capsys) == "1200.00"
    corrected = tmp_path / "fixed.json"
    corrected.write_text(json.dumps(rejected_payment) + "\r\n", encoding="utf-8")
    assert main(["inbox", "replay", "1", "--file", str(corrected), "--data-dir", data_dir]) == 0
    assert capsys.readouterr().out == "accepted\n"
    assert _balance(data_dir, capsys) == "1000.00"
    assert main(["inbox", "--data-dir", data_dir]) == 0
    assert capsys.readouterr().out == ""  # nothing left to replay
    assert main(["inbox", "--all", "--data-dir", data_dir]) == 0
    (row,) = capsys.readouterr().out.splitlines()
    assert row.startswith("1\t") and "events.jsonl:2\tamount: money must be a JSON string" in row
    assert "\treplayed 20" in row
    # the row is history now: a second replay is refused, as an unknown id is
    assert main(["inbox", "replay", "1", "--data-dir", data_dir]) == 2
    assert capsys.readouterr().err.startswith("relance: error: rejected event 1 was already replayed")


def test_a_corrected_line_can_come_from_stdin(data_dir, rejected_payment, capsys, monkeypatch):
    line = (json.dumps(rejected_payment) + "\n").encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(line)))
    assert main(["inbox", "replay", "1", "--file", "-", "--data-dir", data_dir]) == 0
    assert capsys.readouterr().out == "accepted\n"


def test_a_replay_unchanged_is_rejected_again_stored_as_a_new_row_and_exits_1(
    data_dir, rejected_payment, capsys
):
    assert main(["inbox", "replay", "1", "--data-dir", data_dir]) == 1
    out = capsys.readouterr().out
    assert out == 'rejected: amount: money must be a JSON string such as "1200.00", not a number\n'
    assert main(["inbox", "--data-dir", data_dir]) == 0
    rows = [row.split("\t") for row in capsys.readouterr().out.splitlines()]
    assert [(r[0], r[2]) for r in rows] == [("1", rows[0][2]), ("2", "inbox replay 1")]
    assert rows[0][2].endswith("events.jsonl:2")
    assert _balance(data_dir, capsys) == "1200.00"


def test_replaying_a_duplicate_prints_duplicate(tmp_path, data_dir, capsys):
    event = invoice_issued("F-1", "2026-04-01", event_id="evt-1")
    source = tmp_path / "e.jsonl"
    other = json.dumps({**event, "invoice": {**event["invoice"], "amount_due": "99.00"}})
    source.write_text(json.dumps(event) + "\n" + other + "\n", encoding="utf-8")
    assert main(["ingest", str(source), "--data-dir", data_dir]) == 1
    capsys.readouterr()
    same = tmp_path / "same.json"
    same.write_text(json.dumps(event), encoding="utf-8")
    assert main(["inbox", "replay", "1", "--file", str(same), "--data-dir", data_dir]) == 0
    assert capsys.readouterr().out == "duplicate\n"


def test_an_unknown_id_or_a_bad_file_is_one_line_and_exit_2(tmp_path, data_dir, rejected_payment, capsys):
    assert main(["inbox", "replay", "42", "--data-dir", data_dir]) == 2
    assert capsys.readouterr().err == "relance: error: no rejected event 42\n"
    two = tmp_path / "two.jsonl"
    two.write_text("{}\n{}\n", encoding="utf-8")
    assert main(["inbox", "replay", "1", "--file", str(two), "--data-dir", data_dir]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert main(["inbox", "replay", "--data-dir", data_dir]) == 2
    assert "needs ID" in capsys.readouterr().err
