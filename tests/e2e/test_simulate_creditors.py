"""`relance simulate` with two creditors that use the same invoice number and debtor id:
each gets its own reminders, named by its id, with its own letterhead."""

from __future__ import annotations

import json

from tests.integration.test_creditors import CREDITORS, of
from tests.simulation import simulate
from tests.support import DEBTOR, invoice_issued


def test_two_creditors_preview_side_by_side(tmp_path, monkeypatch):
    (tmp_path / "creditors.toml").write_text(CREDITORS, encoding="utf-8")
    monkeypatch.setenv("RELANCE_CREDITORS_FILE", str(tmp_path / "creditors.toml"))
    theirs = DEBTOR | {"name": "Boulangerie Martin", "email": "martin@boulangerie.example"}
    events = tmp_path / "events.jsonl"
    lines = [
        invoice_issued("F-2026-0001", "2026-04-01", "1200.00"),
        of("atelier", invoice_issued("F-2026-0001", "2026-04-01", "300.00", debtor=theirs)),
    ]
    events.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")

    actions, _ = simulate(events, "2026-04-02", tmp_path / "store")
    sent = [(a.get("creditor_id", "default"), a["step"], a["invoice_numbers"]) for a in actions]
    # pre-due on 27 March, due-date reminder on 1 April: each creditor its own two
    assert sent == [
        ("default", "pre_due", ["F-2026-0001"]),
        ("atelier", "pre_due", ["F-2026-0001"]),
        ("default", "due", ["F-2026-0001"]),
        ("atelier", "due", ["F-2026-0001"]),
    ]
    bodies = {a.get("creditor_id", "default"): a["body_text"] for a in actions if a["step"] == "due"}
    assert "300,00" in bodies["atelier"] and "Atelier Durand SARL" in bodies["atelier"]
    assert "1 200,00" in bodies["default"] and "Atelier Durand" not in bodies["default"]
