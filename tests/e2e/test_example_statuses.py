"""``relance simulate`` on examples/statuses.jsonl: the e-invoicing lifecycle statuses.

Four invoices issued Mon 16 February 2026, due Mon 16 March (default ladder D-5, D, D+3,
D+10, D+20, D+30, D+40; window opening 09:00 Europe/Paris):

  F-2026-0401 (CLI-ORANGE, 1 500,00 €): 200 Déposée and 203 Mise à disposition (evidence);
  pre_due Wed 11 March, due Mon 16 March; 211 Paiement transmis on Wed 18 March: held five
  business days, 19, 20, 23, 24, 25 March, the hold ends at 00:00 on Thu 26 March; no
  funds: notice that day; 212 Encaissée of 1 500,00 on Fri 27 March settles it.
  F-2026-0402 (CLI-VIOLET, 800,00 €): 213 Rejetée on 16 February: never issued, no message.
  F-2026-0403 (CLI-INDIGO, 2 000,00 €): 210 Refusée on 20 February: closed, no message.
  F-2026-0404 (CLI-MAUVE, 1 000,00 €): 206 Approuvée partiellement for 600,00 on
  25 February: the whole ladder claims 600,00; reminder_2 on D+20, Sun 5 April -> Tue
  7 April (Easter Monday), its penalties on 600,00.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.simulation import simulate

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "statuses.jsonl"


@pytest.fixture(scope="module")
def actions(tmp_path_factory) -> list[dict]:
    return simulate(EXAMPLE, "2026-05-31", tmp_path_factory.mktemp("simulate-statuses"))[0]


def sent(actions: list[dict], debtor: str) -> list[tuple[str, str]]:
    return sorted(
        (a["at"], a["step"]) for a in actions if a["action"] == "reminder.sent" and a["debtor_id"] == debtor
    )


def test_every_status_is_listed_with_its_code_and_what_it_did(actions):
    listed = [(a["status_code"], a["outcome"]) for a in actions if a["action"] == "invoice.status_changed"]
    assert listed == [
        ("200", "evidence only"),
        ("213", "deemed never issued: dunning stopped"),
        ("203", "evidence only"),
        ("210", "refused by the buyer: dunning stopped"),
        ("206", "amount chased 1000.00 -> 600.00"),
        ("211", "held until 2026-03-25 for the funds"),
        ("212", listed[-1][1]),
    ]
    assert listed[-1][1].startswith("payment of 1500.00 recorded as status-212-")


def test_a_rejected_or_refused_invoice_gets_no_message(actions):
    assert sent(actions, "CLI-VIOLET") == [] and sent(actions, "CLI-INDIGO") == []


def test_payment_transmitted_waits_five_business_days_then_resumes_until_cashed(actions):
    assert sent(actions, "CLI-ORANGE") == [
        ("2026-03-11T09:00:00+01:00", "pre_due"),
        ("2026-03-16T09:00:00+01:00", "due"),
        ("2026-03-26T09:00:00+01:00", "notice"),  # held 18 to 25 March; nothing after 212
    ]


def test_partly_approved_chases_the_approved_amount_with_its_penalties(actions):
    # 17 March to 7 April: 22 days at 2.15 % + 10 points: 600 * 0.1215 * 22 / 365 = 4.394 -> 4.39
    (reminder,) = [
        a
        for a in actions
        if a["action"] == "reminder.sent" and a["debtor_id"] == "CLI-MAUVE" and a["step"] == "reminder_2"
        if a["channel"] == "email"
    ]
    assert (reminder["at"], reminder["amount_due"], reminder["late_interest"]) == (
        "2026-04-07T09:00:00+02:00",
        "600.00",
        "4.39",
    )
    (case,) = [a for a in actions if a["action"] == "case.escalated"]
    assert (case["debtor_id"], case["amount_due"]) == ("CLI-MAUVE", "600.00")
