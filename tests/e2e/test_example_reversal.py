"""``relance simulate`` on examples/reversal.jsonl: a SEPA debit paid the invoice, then came
back unpaid; the invoice reopens and dunning resumes where it stopped.

Dates worked out by hand (default ladder D-5, D, D+3, D+10, D+20, D+30, D+40; window opening
09:00 Europe/Paris; 2026 French calendar):

  F-2026-0401 (CLI-BLEU, 1 500,00 €), due Mon 16 March: pre_due Wed 11, due Mon 16, notice
  Thu 19 March. Paid by SEPA debit on Mon 23 March: settled, nothing more planned. The
  debit is reversed on Thu 2 April at 08:00: the invoice reopens and resumes at the step
  after the last one sent (reminder_1, nominal 26 March), shifted by 7 days to 2 April:
    reminder_1     26 March + 7 = Thu 2 April
    reminder_2      5 April + 7 = Sun 12 April -> Mon 13 April
    reminder_3     15 April + 7 = Wed 22 April
    formal_notice  25 April + 7 = Sat 2 May -> Mon 4 May
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.simulation import simulate

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "reversal.jsonl"

SENT = [
    ("2026-03-11T09:00:00+01:00", "pre_due", "email"),
    ("2026-03-16T09:00:00+01:00", "due", "email"),
    ("2026-03-19T09:00:00+01:00", "notice", "email"),
    # paid on 23 March, the debit reversed on 2 April: nothing in between
    ("2026-04-02T09:00:00+02:00", "reminder_1", "email"),
    ("2026-04-13T09:00:00+02:00", "reminder_2", "email"),
    ("2026-04-13T09:00:00+02:00", "reminder_2", "letter"),
    ("2026-04-22T09:00:00+02:00", "reminder_3", "email"),
    ("2026-04-22T09:00:00+02:00", "reminder_3", "letter"),
    ("2026-05-04T09:00:00+02:00", "formal_notice", "registered_letter"),
    ("2026-05-04T09:00:00+02:00", "formal_notice", "email"),
]


@pytest.fixture(scope="module")
def actions(tmp_path_factory) -> list[dict]:
    return simulate(EXAMPLE, "2026-05-31", tmp_path_factory.mktemp("simulate-reversal"))[0]


def test_dunning_resumes_after_the_last_step_sent_nothing_sent_twice_no_burst(actions):
    sent = sorted((a["at"], a["step"], a["channel"]) for a in actions if a["action"] == "reminder.sent")
    assert sent == sorted(SENT)
    on_the_day = [a for a in actions if a["at"].startswith("2026-04-02")]
    assert [(a["step"], a["channel"]) for a in on_the_day] == [("reminder_1", "email")]
    assert [a for a in actions if a["action"] in ("reminder.skipped", "event.rejected")] == []


def test_the_next_reminder_claims_the_original_amount_with_penalties_as_if_never_paid(actions):
    (email,) = [a for a in actions if a.get("step") == "reminder_2" and a["channel"] == "email"]
    # 17 March to 13 April, the days "paid" included: 15 + 13 = 28 days at 2.15 % + 10 points:
    # 1500 * 0.1215 * 28 / 365 = 13.980... -> 13.98
    assert (email["amount_due"], email["late_interest"], email["recovery_indemnity"]) == (
        "1500.00",
        "13.98",
        "40.00",
    )
    assert "1 500,00 €" in email["body_text"] and "13,98 €" in email["body_text"]


def test_the_case_claims_the_whole_invoice(actions):
    (case,) = [a for a in actions if a["action"] == "case.escalated"]
    # formal notice presented Wed 6 May, deadline 14 May (Ascension) -> Fri 15 May, ends at
    # 00:00 on 16 May; 17 March to 16 May: 15 + 30 + 16 = 61 days:
    # 1500 * 0.1215 * 61 / 365 = 30.458... -> 30.46
    assert case["at"] == "2026-05-16T00:00:00+02:00"
    assert (case["amount_due"], case["late_interest"]) == ("1500.00", "30.46")
