"""``relance simulate`` on examples/payments_and_credit.jsonl: the balance follows the money.

Dates worked out by hand from the French calendar of 2026 and the default ladder
(D-5, D, D+3, D+10, D+20, D+30, D+40; window opening 09:00 Europe/Paris):

  F-2026-0501 (CLI-VIOLET, 5 000,00 €), due Wed 15 April:
    pre_due        Fri 10 April                        5 000,00 €
      1 000,00 € paid on Mon 13 April, before the due date
    due            Wed 15 April                        4 000,00 €
    notice         Sat 18 April -> Mon 20 April        4 000,00 €
    reminder_1     Sat 25 April -> Mon 27 April        4 000,00 €
      credit note AV-2026-0031 of 500,00 € dated Wed 29 April
    reminder_2     Tue 5 May                           3 500,00 €
    reminder_3     Fri 15 May                          3 500,00 €
    formal_notice  Mon 25 May (Whit Monday) -> Tue 26 May   3 500,00 €, claiming
                   3 500,00 + 50,10 + 40,00 = 3 590,10 €; the registered letter is
                   presented 2 business days later, Thu 28 May: by 28 + 8 = Fri 5 June
      the debtor pays those 3 590,10 € on Mon 1 June: settled. The escalation (expiring
      00:00 on 6 June) never fires.

  Penalties: simple interest, actual/365, 2026-H1 rate = ECB 2.15 % + 10 points = 12.15 %,
  from the day after the due date. The payment came before the due date, so no penalty had
  accrued and all of it reduced the principal (whichever imputation rule applies, Code
  civil 1343-1). A credit note corrects the invoice itself: it lowers the principal from the
  day after its date (30 April):
    16-29 April    14 days x 4 000 = 56 000 euro-days
    30 April-5 May  6 days x 3 500 = 21 000      sum  77 000
    reminder_2 (5 May):  77 000 x 0.1215 / 365 = 25.631... -> 25.63
    6-15 May       10 days x 3 500 = 35 000      sum 112 000
    reminder_3 (15 May): 112 000 x 0.1215 / 365 = 37.282... -> 37.28
    16-26 May      11 days x 3 500 = 38 500      sum 150 500
    formal_notice (26 May): 150 500 x 0.1215 / 365 = 50.097... -> 50.10

  F-2026-0502 (CLI-INDIGO, 700,00 €), due Wed 15 April: pre_due Fri 10 April and due Wed 15
  April; cancelled Fri 17 April, so its notice (Mon 20 April) and everything after is not
  sent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.simulation import simulate

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "payments_and_credit.jsonl"

# (at, step, channel, amount_due, late_interest, recovery_indemnity)
VIOLET = [
    ("2026-04-10T09:00:00+02:00", "pre_due", "email", "5000.00", "0.00", "0.00"),
    ("2026-04-15T09:00:00+02:00", "due", "email", "4000.00", "0.00", "0.00"),
    ("2026-04-20T09:00:00+02:00", "notice", "email", "4000.00", "0.00", "0.00"),
    ("2026-04-27T09:00:00+02:00", "reminder_1", "email", "4000.00", "0.00", "0.00"),
    ("2026-05-05T09:00:00+02:00", "reminder_2", "email", "3500.00", "25.63", "40.00"),
    ("2026-05-05T09:00:00+02:00", "reminder_2", "letter", "3500.00", "25.63", "40.00"),
    ("2026-05-15T09:00:00+02:00", "reminder_3", "email", "3500.00", "37.28", "40.00"),
    ("2026-05-15T09:00:00+02:00", "reminder_3", "letter", "3500.00", "37.28", "40.00"),
    ("2026-05-26T09:00:00+02:00", "formal_notice", "email", "3500.00", "50.10", "40.00"),
    ("2026-05-26T09:00:00+02:00", "formal_notice", "registered_letter", "3500.00", "50.10", "40.00"),
]


@pytest.fixture(scope="module")
def actions(tmp_path_factory) -> list[dict]:
    return simulate(EXAMPLE, "2026-06-15", tmp_path_factory.mktemp("simulate-payments"))[0]


def test_every_step_states_the_balance_left_after_payments_and_credit_notes(actions):
    violet = sorted(
        (
            a["at"],
            a["step"],
            a["channel"],
            a["amount_due"],
            a.get("late_interest", "0.00"),
            a.get("recovery_indemnity", "0.00"),
        )
        for a in actions
        if a["action"] == "reminder.sent" and a["debtor_id"] == "CLI-VIOLET"
    )
    assert violet == sorted(VIOLET)


def test_the_second_reminder_shows_what_was_paid_and_the_penalties_on_the_reduced_balance(actions):
    (email,) = [a for a in actions if a.get("step") == "reminder_2" and a["channel"] == "email"]
    body = email["body_text"]
    assert "3 500,00 € restant dû (après 1 500,00 € déjà réglés ou crédités)" in body
    assert "pénalités de retard de 25,63 € (taux annuel 12,15 %)" in body


def test_a_payment_that_settles_the_invoice_stops_everything(actions):
    (notice,) = [a for a in actions if a.get("step") == "formal_notice" and a["channel"] == "email"]
    assert "la somme totale de 3 590,10 € au plus tard le 5 juin 2026" in notice["body_text"]
    late = [a for a in actions if a.get("debtor_id") == "CLI-VIOLET" and a["at"] > "2026-05-27"]
    assert late == []
    assert [a for a in actions if a["action"] in ("deadline.expired", "case.escalated")] == []


def test_a_cancelled_invoice_gets_nothing_more(actions):
    indigo = [(a["at"], a["action"], a.get("step")) for a in actions if a.get("debtor_id") == "CLI-INDIGO"]
    assert indigo == [
        ("2026-04-10T09:00:00+02:00", "reminder.sent", "pre_due"),
        ("2026-04-15T09:00:00+02:00", "reminder.sent", "due"),
    ]
    assert [a for a in actions if a["action"] in ("reminder.skipped", "event.rejected")] == []
