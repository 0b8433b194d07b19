"""The ``relance`` command's contract: summary lines, per-line reasons, exit codes."""

from __future__ import annotations

import json

import pytest

from relance.cli import main
from tests.support import invoice_issued, payment


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    for name in ("RELANCE_DATABASE_URL", "RELANCE_REDIS_URL", "RELANCE_SMTP_HOST"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "var"


def write_lines(path, *lines: str):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_ingest_counts_and_names_each_rejected_line_then_exits_1(tmp_path, data_dir, capsys):
    good = json.dumps(invoice_issued("F-1", "2026-04-01"))
    parked = json.dumps(payment("F-404", "10.00", "2026-04-02"))
    bad_money = json.dumps(payment("F-1", "10.00", "2026-04-02")).replace('"10.00"', "10.0")
    source = write_lines(tmp_path / "events.jsonl", good, good, "", "{not json", parked, bad_money)
    code = main(["ingest", str(source), "--data-dir", str(data_dir)])
    out = capsys.readouterr().out.splitlines()
    assert code == 1
    assert out == [
        "line 4: rejected: not valid JSON: Expecting property name enclosed in double quotes",
        'line 6: rejected: amount: money must be a JSON string such as "1200.00", not a number',
        "accepted 2, duplicate 1, rejected 2",
    ]


def test_ingest_of_only_valid_events_exits_0_and_a_replay_is_all_duplicates(tmp_path, data_dir, capsys):
    source = write_lines(tmp_path / "events.jsonl", json.dumps(invoice_issued("F-1", "2026-04-01")))
    assert main(["ingest", str(source), "--data-dir", str(data_dir)]) == 0
    assert main(["ingest", str(source), "--data-dir", str(data_dir)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "accepted 1, duplicate 0, rejected 0",
        "accepted 0, duplicate 1, rejected 0",
    ]


def test_the_same_event_id_with_other_content_is_rejected(tmp_path, data_dir, capsys):
    first = invoice_issued("F-1", "2026-04-01", event_id="evt-1")
    second = invoice_issued("F-2", "2026-04-01", event_id="evt-1")
    source = write_lines(tmp_path / "e.jsonl", json.dumps(first), json.dumps(second))
    assert main(["ingest", str(source), "--data-dir", str(data_dir)]) == 1
    out = capsys.readouterr().out
    assert "line 2: rejected: event_id: 'evt-1' was already used by a different event" in out


def test_rejected_events_are_kept_and_listed_by_inbox(tmp_path, data_dir, capsys):
    source = write_lines(tmp_path / "e.jsonl", '{"event_id": "x", "type": "invoice.paid"}')
    main(["ingest", str(source), "--data-dir", str(data_dir)])
    capsys.readouterr()
    assert main(["inbox", "--data-dir", str(data_dir)]) == 0
    (row,) = capsys.readouterr().out.splitlines()
    assert row.endswith("e.jsonl:1\ttype: unknown event type 'invoice.paid'")


def test_a_missing_file_is_one_line_and_exit_2(tmp_path, data_dir, capsys):
    assert main(["ingest", str(tmp_path / "nope.jsonl"), "--data-dir", str(data_dir)]) == 2
    assert capsys.readouterr().err.strip() == f"relance: error: {tmp_path / 'nope.jsonl'}: no such file"


def test_evidence_verify_reports_ok_with_the_record_count(tmp_path, data_dir, capsys):
    source = write_lines(tmp_path / "e.jsonl", json.dumps(invoice_issued("F-1", "2026-04-01")))
    main(["ingest", str(source), "--data-dir", str(data_dir)])
    capsys.readouterr()
    assert main(["evidence", "verify", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("ok 1 records, head ") and len(out.rsplit(" ", 1)[1]) == 64


def test_worker_without_redis_says_what_is_missing(data_dir, capsys):
    assert main(["worker", "--data-dir", str(data_dir)]) == 2
    assert "needs RELANCE_REDIS_URL" in capsys.readouterr().err


def test_a_usage_error_is_one_line_and_exit_2(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["simulate", "x.jsonl"])
    assert stopped.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("relance: error: the following arguments are required: --until")


def test_status_counts_open_balances_by_age_and_todays_steps(tmp_path, data_dir, capsys, monkeypatch):
    monkeypatch.setenv("RELANCE_NOW", "2026-05-15T12:00:00+02:00")
    events = [
        invoice_issued("F-1", "2026-05-20", "100.00"),  # not due yet
        invoice_issued("F-2", "2026-05-01", "250.00"),  # 14 days late
        invoice_issued("F-3", "2026-02-01", "75.50", issued="2026-01-02"),
    ]  # 103 days late
    source = write_lines(tmp_path / "e.jsonl", *[json.dumps(e) for e in events])
    main(["ingest", str(source), "--data-dir", str(data_dir)])
    capsys.readouterr()
    assert main(["status", "--json", "--data-dir", str(data_dir)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["open_invoices"] == 3
    # balances are given per currency (every invoice here is in EUR)
    assert report["balance_EUR_not_due"] == "100.00"
    assert report["balance_EUR_1-30"] == "250.00"
    assert report["balance_EUR_over_90"] == "75.50"
    assert (report["below_minimum_EUR_invoices"], report["penalties_outstanding_EUR_invoices"]) == (0, 0)
    assert not [k for k in report if k.startswith("balance_") and "EUR" not in k]
    assert report["steps_sent_today"] == 0 and report["open_cases"] == 0
