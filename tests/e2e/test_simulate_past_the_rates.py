"""A simulation that reaches a half-year the rate table lacks stops with one line saying
which half-year to add and where; no traceback, exit 2."""

from __future__ import annotations

import json

from relance.cli import main
from tests.support import invoice_issued


def test_a_simulation_past_the_rate_table_names_the_half_year_to_add(tmp_path, capsys):
    # due 1 December 2026: reminder_3 (D+30) on Thursday 31 December still computes at
    # 2026-H2; the formal notice (D+40, Sunday 10 January 2027 -> Monday 11 January) needs
    # 2027-H1, which the built-in table does not have yet
    events = tmp_path / "late.jsonl"
    events.write_text(
        json.dumps(invoice_issued("F-9", "2026-12-01", issued="2026-11-02", at="2026-11-02T10:00:00+01:00"))
        + "\n",
        encoding="utf-8",
    )
    rc = main(["simulate", str(events), "--until", "2027-03-31", "--format", "table"])
    out, err = capsys.readouterr()
    assert rc == 2
    assert "reminder_3" in out  # what could be computed was printed
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == (
        "relance: error: no rate for 2027-H1: add it to config/rates.toml (or to the file "
        "RELANCE_RATES_FILE names) and simulate again; see docs/configuration.md#rate-table"
    )
