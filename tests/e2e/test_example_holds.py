"""``relance simulate`` on examples/holds.jsonl: a person holds an invoice, then a debtor.

The same invoices and dates as examples/dispute.jsonl, held instead of disputed (default
ladder D-5, D, D+3, D+10, D+20, D+30, D+40; window opening 09:00 Europe/Paris):

  F-2026-0301 (CLI-ROUGE, 2 400,00 €), due Mon 16 March: pre_due Wed 11, due Mon 16,
  notice Thu 19 March. Held Tue 24 March until Mon 13 April: the hold ends at 00:00 on
  Tue 14 April and dunning resumes at reminder_1, its nominal day (26 March) shifted by
  19 days to 14 April; reminder_2 Fri 24 April, reminder_3 Mon 4 May, formal_notice
  Thu 14 May (Ascension) -> Fri 15 May; presented Tue 19 May, deadline Wed 27 May, case at
  00:00 on Thu 28 May.
  F-2026-0302 (CLI-GRIS, 900,00 €): the same ladder; its debtor is held on Fri 20 March
  with no last day and released on Tue 14 April at 08:30: the same dates from reminder_1.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from tests.simulation import simulate

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "holds.jsonl"

BEFORE = [
    ("2026-03-11T09:00:00+01:00", "pre_due", "email"),
    ("2026-03-16T09:00:00+01:00", "due", "email"),
    ("2026-03-19T09:00:00+01:00", "notice", "email"),
]
AFTER = [
    ("2026-04-14T09:00:00+02:00", "reminder_1", "email"),
    ("2026-04-24T09:00:00+02:00", "reminder_2", "email"),
    ("2026-04-24T09:00:00+02:00", "reminder_2", "letter"),
    ("2026-05-04T09:00:00+02:00", "reminder_3", "email"),
    ("2026-05-04T09:00:00+02:00", "reminder_3", "letter"),
    ("2026-05-15T09:00:00+02:00", "formal_notice", "registered_letter"),
    ("2026-05-15T09:00:00+02:00", "formal_notice", "email"),
]


@pytest.fixture(scope="module")
def actions(tmp_path_factory) -> list[dict]:
    return simulate(EXAMPLE, "2026-05-31", tmp_path_factory.mktemp("simulate-holds"))[0]


def sent(actions: list[dict], debtor: str) -> list[tuple[str, str, str]]:
    return sorted(
        (a["at"], a["step"], a["channel"])
        for a in actions
        if a["action"] == "reminder.sent" and a["debtor_id"] == debtor
    )


def test_nothing_is_sent_while_held_and_dunning_resumes_at_the_next_step(actions):
    assert sent(actions, "CLI-ROUGE") == sorted(BEFORE + AFTER)
    assert sent(actions, "CLI-GRIS") == sorted(BEFORE + AFTER)


def test_the_hold_ends_at_the_end_of_its_last_day_without_a_burst(actions):
    (ended,) = [a for a in actions if a.get("step") == "hold_expired"]
    assert (ended["at"], ended["invoice_numbers"]) == ("2026-04-14T00:00:00+02:00", ["F-2026-0301"])
    on_the_day = [a for a in actions if a["at"].startswith("2026-04-14") and a["action"] == "reminder.sent"]
    assert sorted((a["debtor_id"], a["step"]) for a in on_the_day) == [
        ("CLI-GRIS", "reminder_1"),
        ("CLI-ROUGE", "reminder_1"),
    ]
    assert [a for a in actions if a["action"] in ("reminder.skipped", "event.rejected")] == []


def test_nothing_happens_to_the_held_invoice_between_hold_and_end(actions):
    held, ended = (
        datetime.fromisoformat("2026-03-24T14:00:00+01:00"),
        datetime.fromisoformat("2026-04-14T00:00:00+02:00"),
    )
    during = [
        a
        for a in actions
        if "F-2026-0301" in a.get("invoice_numbers", []) and held <= datetime.fromisoformat(a["at"]) < ended
    ]
    assert during == []


def test_penalties_ran_during_the_hold(actions):
    # 17 March to 24 April: 15 + 24 = 39 days at 2.15 % + 10 points:
    # 2400 * 0.1215 * 39 / 365 = 31.157... -> 31.16; 900 * 0.1215 * 39 / 365 = 11.683... -> 11.68
    amounts = {
        a["debtor_id"]: (a["amount_due"], a["late_interest"])
        for a in actions
        if a.get("step") == "reminder_2" and a["channel"] == "email"
    }
    assert amounts == {"CLI-ROUGE": ("2400.00", "31.16"), "CLI-GRIS": ("900.00", "11.68")}


def test_a_hold_is_no_dispute_the_case_keeps_the_procedure_of_an_undisputed_claim(actions):
    cases = {a["debtor_id"]: a for a in actions if a["action"] == "case.escalated"}
    assert cases["CLI-ROUGE"]["at"] == "2026-05-28T00:00:00+02:00"
    # held, not disputed: the simplified procedure of a claim of at most 5 000 €, where the
    # same invoice disputed (examples/dispute.jsonl) goes to an assignation en paiement;
    # 73 days to 28 May: 2400 * 0.1215 * 73 / 365 = 58.32
    assert cases["CLI-ROUGE"]["recommended_procedure"] == "procedure_simplifiee"
    assert cases["CLI-ROUGE"]["late_interest"] == "58.32"
    assert cases["CLI-GRIS"]["recommended_procedure"] == "procedure_simplifiee"
