"""``relance simulate`` on examples/opt_out_and_bounce.jsonl: no contact, and a bounce.

Both invoices are due Mon 2 March 2026. Dates worked out by hand from the French calendar
and the default ladder (D-5, D, D+3, D+10, D+20, D+30, D+40; window opening 09:00
Europe/Paris): pre_due Wed 25 February, due Mon 2 March, notice Thu 5, reminder_1 Thu 12,
reminder_2 Sun 22 -> Mon 23 March, reminder_3 Wed 1 April, formal_notice Sat 11 April ->
Mon 13 April (Easter Monday was 6 April). Deadline 13 + 8 = Tue 21 April, expired at 00:00
on Wed 22 April.

  F-2026-0901 (CLI-SABLE, 1 200,00 €): the debtor opted out. Every step is skipped on its
  day and nothing is sent, but the escalation is planned from the skipped formal notice:
  no letter is posted, so the 8 days run from its day (13 + 8 = Tue 21 April, a business
  day) and the case reaches a person on 22 April. Penalties to 22 April: 3-31 March (29 days) +
  1-22 April (22 days) = 51 days, 1200 * 0.1215 * 51 / 365 = 20.372... -> 20.37;
  1200.00 + 20.37 + 40.00 = 1260.37 <= 5000 -> procedure_simplifiee.

  F-2026-0902 (CLI-AZUR, 950,00 €): the e-mail of the `due` step bounces (a
  `delivery.status` naming its Message-ID, which is keyed from the channel and the
  (invoice, step) pairs; `relance simulate` uses a fixed key, so it is the same on every
  run with the default sender domain `localhost`). From the notice on, the e-mail channel
  becomes a letter: one letter for the notice and reminder_1, one letter for reminder_2
  and reminder_3 (the e-mail and the letter of the step are the same channel now), and
  the formal notice goes by registered letter alone (a plain letter is dropped next to a
  registered one).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.simulation import simulate

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "opt_out_and_bounce.jsonl"

SABLE_SKIPPED = [
    ("2026-02-25T09:00:00+01:00", "pre_due"),
    ("2026-03-02T09:00:00+01:00", "due"),
    ("2026-03-05T09:00:00+01:00", "notice"),
    ("2026-03-12T09:00:00+01:00", "reminder_1"),
    ("2026-03-23T09:00:00+01:00", "reminder_2"),
    ("2026-04-01T09:00:00+02:00", "reminder_3"),
    ("2026-04-13T09:00:00+02:00", "formal_notice"),
]
AZUR = [
    ("2026-02-25T09:00:00+01:00", "pre_due", "email"),
    ("2026-03-02T09:00:00+01:00", "due", "email"),  # bounced at 09:00:07
    ("2026-03-05T09:00:00+01:00", "notice", "letter"),
    ("2026-03-12T09:00:00+01:00", "reminder_1", "letter"),
    ("2026-03-23T09:00:00+01:00", "reminder_2", "letter"),
    ("2026-04-01T09:00:00+02:00", "reminder_3", "letter"),
    ("2026-04-13T09:00:00+02:00", "formal_notice", "registered_letter"),
]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[list[dict], list[dict]]:
    actions, stderr = simulate(EXAMPLE, "2026-04-30", tmp_path_factory.mktemp("simulate-opt-out"))
    return actions, [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def actions(run) -> list[dict]:
    return run[0]


def test_an_opted_out_debtor_gets_no_message_each_step_is_skipped_on_its_day(actions):
    sable = [a for a in actions if a.get("debtor_id") == "CLI-SABLE"]
    assert [a for a in sable if a["action"] == "reminder.sent"] == []
    skipped = [a for a in sable if a["action"] == "reminder.skipped"]
    assert [(a["at"], a["step"]) for a in skipped] == SABLE_SKIPPED
    assert {a["reason"] for a in skipped} == {"debtor opted out of automatic contact"}


def test_the_opted_out_debtor_is_still_escalated_8_days_after_the_formal_notice_date(actions):
    (expired,) = [a for a in actions if a["action"] == "deadline.expired" and a["debtor_id"] == "CLI-SABLE"]
    assert expired["at"] == "2026-04-22T00:00:00+02:00"
    (case,) = [a for a in actions if a["action"] == "case.escalated" and a["debtor_id"] == "CLI-SABLE"]
    assert case["invoice_numbers"] == ["F-2026-0901"]
    assert case["late_interest"] == "20.37" and case["amount_claimed"] == "1260.37"
    assert case["recommended_procedure"] == "procedure_simplifiee"


def test_the_bounce_names_the_due_e_mail_by_its_stable_message_id(run):
    actions, logs = run
    bounce = json.loads(EXAMPLE.read_text(encoding="utf-8").splitlines()[2])
    assert bounce["type"] == "delivery.status" and bounce["status"] == "bounced"
    (due,) = [a for a in actions if a.get("debtor_id") == "CLI-AZUR" and a.get("step") == "due"]
    assert due["channel"] == "email" and due["message_id"] == bounce["message_id"]
    assert [line for line in logs if line.get("event") == "delivery.unknown_message"] == []


def test_after_the_bounce_the_next_steps_go_by_post(actions):
    azur = sorted(
        (a["at"], a["step"], a["channel"])
        for a in actions
        if a["action"] == "reminder.sent" and a["debtor_id"] == "CLI-AZUR"
    )
    assert azur == AZUR
    letters = [
        a
        for a in actions
        if a.get("debtor_id") == "CLI-AZUR" and a.get("channel") in ("letter", "registered_letter")
    ]
    assert {a["to"] for a in letters} == {"Azur Nautisme SAS, 1 quai des Pêcheurs, 06400 Cannes"}
    (case,) = [a for a in actions if a["action"] == "case.escalated" and a["debtor_id"] == "CLI-AZUR"]
    assert case["recommended_procedure"] == "procedure_simplifiee"
