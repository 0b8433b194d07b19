"""``relance simulate`` with a webhooks file lists the signals a run would post, and posts none."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

from relance.cli import main

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "events.jsonl"
KEY = "a-key-that-no-request-will-use-42"


def test_simulate_lists_each_signal_for_each_subscriber(tmp_path, monkeypatch):
    monkeypatch.setenv("RELANCE_TEST_SIMULATED_KEY", KEY)
    webhooks = tmp_path / "webhooks.toml"
    webhooks.write_text(
        """
[subscribers.erp]
url = "http://127.0.0.1:9/nobody-listens"
secret_env = "RELANCE_TEST_SIMULATED_KEY"
events = ["debtor.level_changed", "invoice.settled"]
""",
        encoding="utf-8",
    )
    monkeypatch.setenv("RELANCE_WEBHOOKS_FILE", str(webhooks))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["simulate", str(SAMPLE), "--until", "2026-06-30", "--data-dir", str(tmp_path / "data")])
    assert code == 0
    actions = [json.loads(line) for line in out.getvalue().splitlines()]
    signals = [a for a in actions if a["action"] == "signal.recorded"]
    assert {a["subscriber"] for a in signals} == {"erp"}
    bleu = [(a["signal_type"], a.get("level")) for a in signals if a["debtor_id"] == "CLI-BLEU"]
    # BLEU: pre_due, due, notice, reminder_1 raise its level; the payment of 14 April settles
    # the invoice and drops the level to none
    assert bleu == [
        ("debtor.level_changed", "pre_due"),
        ("debtor.level_changed", "due"),
        ("debtor.level_changed", "notice"),
        ("debtor.level_changed", "reminder_1"),
        ("invoice.settled", None),
        ("debtor.level_changed", None),
    ]
    settled = next(a for a in signals if a["signal_type"] == "invoice.settled")
    assert settled["invoice_numbers"] and settled["currency"] == "EUR" and settled["amount_due"]
    sent = [a for a in actions if a["action"] == "reminder.sent" and a["debtor_id"] == "CLI-BLEU"]
    first_raise = next(a for a in signals if a["debtor_id"] == "CLI-BLEU")
    assert first_raise["at"] == sent[0]["at"]  # recorded with the reminder that raised it
