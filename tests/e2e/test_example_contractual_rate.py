"""``relance simulate`` on examples/contractual_rate.jsonl: a contractual penalty rate wins.

Two invoices of 2 000,00 €, due Mon 9 March 2026, with a contractual `late_penalty_rate`:
F-2026-0701 (CLI-CYAN) at 0.15 and F-2026-0702 (CLI-MAUVE) at 0.05.

Dates worked out by hand (default ladder, window opening 09:00 Europe/Paris): pre_due
Wed 4 March, due Mon 9, notice Thu 12, reminder_1 Thu 19, reminder_2 D+20 = Sun 29 March
-> Mon 30 March, after the change to summer time (+02:00).

Penalties at reminder_2: every day from 10 to 30 March = 21 days, actual/365:
  15 %:  2000 * 0.15 * 21 / 365 = 17.260... -> 17.26
   5 %:  2000 * 0.05 * 21 / 365 =  5.753... ->  5.75
The legal rate for professional creditors in 2026-H1 is 2.62 %, so the floor is
3 x 2.62 % = 7.86 %. 5 % is below it: `rate.below_legal_floor` is logged, and 5 % is still
used (not rewritten). 15 % is above it: no warning.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.simulation import simulate

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "contractual_rate.jsonl"


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[list[dict], list[dict]]:
    actions, stderr = simulate(EXAMPLE, "2026-03-31", tmp_path_factory.mktemp("simulate-rate"))
    return actions, [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def actions(run) -> list[dict]:
    return run[0]


def reminder_2(actions: list[dict], debtor: str) -> dict:
    (email,) = [
        a
        for a in actions
        if a.get("step") == "reminder_2" and a["debtor_id"] == debtor and a["channel"] == "email"
    ]
    return email


def test_both_invoices_follow_the_ladder_to_the_second_reminder(actions):
    for debtor in ("CLI-CYAN", "CLI-MAUVE"):
        sent = sorted(
            (a["at"], a["step"], a["channel"])
            for a in actions
            if a["action"] == "reminder.sent" and a["debtor_id"] == debtor
        )
        assert sent == [
            ("2026-03-04T09:00:00+01:00", "pre_due", "email"),
            ("2026-03-09T09:00:00+01:00", "due", "email"),
            ("2026-03-12T09:00:00+01:00", "notice", "email"),
            ("2026-03-19T09:00:00+01:00", "reminder_1", "email"),
            ("2026-03-30T09:00:00+02:00", "reminder_2", "email"),
            ("2026-03-30T09:00:00+02:00", "reminder_2", "letter"),
        ]


def test_a_contractual_rate_of_15_percent_replaces_the_default_rate(actions):
    email = reminder_2(actions, "CLI-CYAN")
    assert email["late_interest"] == "17.26" and email["recovery_indemnity"] == "40.00"
    assert "pénalités de retard de 17,26 € (taux annuel 15,00 %)" in email["body_text"]


def test_a_contractual_rate_below_the_legal_floor_is_still_used_as_written(actions):
    email = reminder_2(actions, "CLI-MAUVE")
    assert email["late_interest"] == "5.75" and email["recovery_indemnity"] == "40.00"
    assert "pénalités de retard de 5,75 € (taux annuel 5,00 %)" in email["body_text"]


def test_the_rate_below_the_floor_is_logged_as_a_warning(run):
    _, logs = run
    warnings = [line for line in logs if line.get("event") == "rate.below_legal_floor"]
    assert warnings, "no rate.below_legal_floor on stderr"
    for line in warnings:
        assert line["level"] == "warning"
        assert line["invoice_number"] == "F-2026-0702"
        assert (line["half_year"], line["rate"], line["floor"]) == ("2026-H1", "0.05", "0.0786")
