"""``relance rates``, the ``rates_missing`` line of ``relance status``, the start-up warning
and the 2026-H2 rate in a simulated reminder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from config.bootstrap import build_app, warn_about_rates
from config.logging import configure_logging
from config.settings import Settings
from handlers.ports import VirtualClock
from relance.cli import main
from tests.simulation import simulate
from tests.support import invoice_issued

ROOT = Path(__file__).resolve().parents[2]
SOON = "2026-12-02T10:00:00+01:00"  # 30 days before 1 January 2027 (2 -> 31 December + 1)


@pytest.fixture
def env(monkeypatch, tmp_path):
    """No RELANCE_* of the shell; the clock pinned at ``SOON``."""
    for name in list(os.environ):
        if name.startswith("RELANCE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("RELANCE_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("RELANCE_NOW", SOON)
    return monkeypatch


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_rates_prints_every_half_year_with_its_penalty_rate_and_what_is_missing(env, capsys):
    code, out, _ = run(capsys, "rates")
    assert code == 0
    lines = out.splitlines()
    rows = {line.split()[0]: line for line in lines[1:] if line[:4].isdigit()}
    assert len(rows) == 36 and min(rows) == "2009-H1" and max(rows) == "2026-H2"
    # 2010-H1: ECB 1.00 % + 10 points = 11.00 %; one legal rate for 2010: 0.65 %
    assert rows["2010-H1"].split()[:9] == ["2010-H1", "1.00", "%", "11.00", "%", "0.65", "%", "0.65", "%"]
    # 2026-H2: ECB 2.40 % + 10 = 12.40 %; legal rates 2.75 % / 6.84 % not yet confirmed
    assert rows["2026-H2"].split()[:11] == [
        "2026-H2", "2.40", "%", "12.40", "%", "2.75", "%", "*", "6.84", "%", "*",
    ]  # fmt: skip
    assert lines[-2:] == [
        "gaps in the table: none",
        "missing ahead: 2027-H1 has no rate: it starts on 2027-01-01, in 30 days",
    ]


def test_rates_as_json_lines_gives_the_rates_as_decimal_strings(env, capsys):
    code, out, _ = run(capsys, "rates", "--format", "jsonl")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    h2 = next(r for r in rows if r["half_year"] == "2026-H2")
    assert (
        h2["ecb_rate"],
        h2["penalty_rate"],
        h2["legal_rate_other"],
        h2["legal_rate_private_creditor"],
    ) == (
        "0.0240",
        "0.1240",  # 0.0240 + the default margin 0.10
        "0.0275",
        "0.0684",
    )
    assert h2["unconfirmed"] == ["legal_rate_other", "legal_rate_private_creditor"]
    assert rows[-1] == {
        "half_year": "2027-H1",
        "missing": "ahead",
        "starts_on": "2027-01-01",
        "days_left": 30,
    }


def test_rates_shows_a_gap_and_reads_an_old_file_with_a_warning_naming_file_and_key(env, capsys, tmp_path):
    old = tmp_path / "old-rates.toml"
    old.write_text(
        '[rates."2026-H1"]\necb_rate = "0.0215"\nlegal_rate_professional = "0.0262"\n'
        'legal_rate_consumer = "0.0667"\nsource = "kept from an older version"\n\n'
        '[rates."2027-H1"]\necb_rate = "0.0240"\nsource = "assumed"\nunconfirmed = true\n',
        encoding="utf-8",
    )
    env.setenv("RELANCE_RATES_FILE", str(old))
    code, out, err = run(capsys, "rates")
    assert code == 0
    assert "gaps in the table: 2026-H2" in out.splitlines()
    # 2026-H2 started on 1 July: 1 July -> 2 December = 154 days ago (31+31+30+31+30+1)
    assert "missing ahead: 2026-H2 has no rate: it started on 2026-07-01 (154 days ago)" in out
    warnings = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert [(w["event"], w["file"], w["key"]) for w in warnings if w["event"] == "rates.renamed_key"] == [
        ("rates.renamed_key", str(old), "rates.2026-H1.legal_rate_professional"),
        ("rates.renamed_key", str(old), "rates.2026-H1.legal_rate_consumer"),
    ]


def test_a_rate_file_that_does_not_validate_is_one_line_and_exit_2(env, capsys, tmp_path):
    bad = tmp_path / "rates.toml"
    bad.write_text('[rates."2026-H1"]\necb_rate = "2,15"\nsource = "typo"\n', encoding="utf-8")
    env.setenv("RELANCE_RATES_FILE", str(bad))
    code, out, err = run(capsys, "rates")
    assert code == 2 and out == ""
    assert err.startswith(f"relance: error: {bad}: rates.2026-H1.ecb_rate: ")
    assert len(err.splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        ("2026-12-01T23:59:00+01:00", "none"),  # 31 days before 1 January 2027
        (SOON, "2027-H1 has no rate: it starts on 2027-01-01, in 30 days"),
    ],
)
def test_status_says_which_half_year_has_no_rate_from_30_days_before(env, capsys, now, expected):
    env.setenv("RELANCE_NOW", now)
    code, out, _ = run(capsys, "status", "--json")
    assert code == 0
    assert json.loads(out)["rates_missing"] == expected


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo("Europe/Paris"))


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (paris(2026, 12, 1, 23, 59), []),  # 31 days left: nothing yet
        (paris(2026, 12, 2, 0, 0), [("rates.missing_soon", "warning", "2027-H1", 30)]),
        (paris(2027, 1, 4, 9, 0), [("rates.missing", "error", "2027-H1", -3)]),  # 1 -> 4 January
    ],
)
def test_the_start_up_check_logs_a_half_year_without_a_rate(tmp_path, capsys, now, expected):
    configure_logging("INFO")
    app = build_app(Settings(data_dir=tmp_path), clock=VirtualClock(now))
    try:
        capsys.readouterr()
        warn_about_rates(app)
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    finally:
        app.dispose()
    found = [
        (w["event"], w["level"], w["half_year"], w["days_left"])
        for w in lines
        if w["event"].startswith("rates.")
    ]
    assert found == expected


@pytest.mark.slow
def test_relance_run_warns_at_start_up_30_days_before_a_half_year_without_a_rate(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELANCE_")}
    env.update({"RELANCE_DATA_DIR": str(tmp_path / "var"), "RELANCE_NOW": SOON})
    service = subprocess.Popen(
        [sys.executable, "-m", "relance", "run"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not (tmp_path / "var" / "relance.db").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)
    service.send_signal(signal.SIGTERM)
    _, stderr = service.communicate(timeout=30)
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    soon = [line for line in lines if line["event"] == "rates.missing_soon"]
    assert [(w["half_year"], w["days_left"], w["starts_on"]) for w in soon] == [("2027-H1", 30, "2027-01-01")]


def test_a_reminder_after_1_july_2026_states_penalties_at_12_40_percent(tmp_path):
    # 10 000 € due Tuesday 30 June 2026; reminder_3 at D+30 = Thursday 30 July 2026.
    # Penalties from 1 July at ECB 2.40 % + 10 = 12.40 %: 1 to 30 July = 30 days,
    # 10 000 x 0.124 x 30 / 365 = 101.9178... -> 101.92 € (at 12.15 % it would be 99.86 €)
    events = tmp_path / "july.jsonl"
    event = invoice_issued(
        "F-JULY", "2026-06-30", "10000.00", issued="2026-06-01", at="2026-06-01T10:00:00+02:00"
    )
    events.write_text(json.dumps(event) + "\n", encoding="utf-8")
    actions, _ = simulate(events, "2026-07-31", tmp_path / "sim")
    sent = [a for a in actions if a["action"] == "reminder.sent" and a["step"] == "reminder_3"]
    assert [(a["at"][:10], a["late_interest"]) for a in sent] == [("2026-07-30", "101.92")] * len(sent) != []
    body = sent[0]["body_text"]
    assert "pénalités de retard de 101,92 € (taux annuel 12,40 %)" in body
