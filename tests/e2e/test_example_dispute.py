"""``relance simulate`` on examples/dispute.jsonl: a dispute pauses, then resumes or closes.

Dates worked out by hand from the French calendar of 2026 and the default ladder
(D-5, D, D+3, D+10, D+20, D+30, D+40; window opening 09:00 Europe/Paris):

  F-2026-0301 (CLI-ROUGE, 2 400,00 €), due Mon 16 March: pre_due Wed 11 March, due Mon 16,
  notice Thu 19. Disputed Tue 24 March, so reminder_1 (Thu 26 March) is never sent.
  The dispute is rejected on Tue 14 April (3 weeks later), at 08:30, before the window.
  Dunning resumes at the step after the last one taken (reminder_1). Its nominal day
  (26 March) is past, so the run is shifted by 19 days to start on 14 April:
    reminder_1     26 March + 19 = Tue 14 April
    reminder_2      5 April + 19 = Fri 24 April (e-mail and letter)
    reminder_3     15 April + 19 = Mon 4 May (e-mail and letter)
    formal_notice  25 April + 19 = Thu 14 May, Ascension -> Fri 15 May
  The registered letter posted Fri 15 May is presented 2 business days later, Tue 19 May
  (Mon 18, Tue 19); deadline 19 + 8 = Wed 27 May, a business day; it expires at its end,
  00:00 on Thu 28 May. The invoice was disputed: assignation_en_paiement.

  F-2026-0302 (CLI-GRIS, 900,00 €), due Mon 16 March: pre_due, due and notice as above.
  Disputed Fri 20 March, dispute upheld Wed 1 April: the invoice is closed, nothing more.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from tests.simulation import simulate

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "dispute.jsonl"

ROUGE = [
    ("2026-03-11T09:00:00+01:00", "pre_due", "email"),
    ("2026-03-16T09:00:00+01:00", "due", "email"),
    ("2026-03-19T09:00:00+01:00", "notice", "email"),
    # disputed from 24 March to 14 April: nothing
    ("2026-04-14T09:00:00+02:00", "reminder_1", "email"),
    ("2026-04-24T09:00:00+02:00", "reminder_2", "email"),
    ("2026-04-24T09:00:00+02:00", "reminder_2", "letter"),
    ("2026-05-04T09:00:00+02:00", "reminder_3", "email"),
    ("2026-05-04T09:00:00+02:00", "reminder_3", "letter"),
    ("2026-05-15T09:00:00+02:00", "formal_notice", "registered_letter"),
    ("2026-05-15T09:00:00+02:00", "formal_notice", "email"),
]
GRIS = [
    ("2026-03-11T09:00:00+01:00", "pre_due", "email"),
    ("2026-03-16T09:00:00+01:00", "due", "email"),
    ("2026-03-19T09:00:00+01:00", "notice", "email"),
]


@pytest.fixture(scope="module")
def actions(tmp_path_factory) -> list[dict]:
    return simulate(EXAMPLE, "2026-05-31", tmp_path_factory.mktemp("simulate-dispute"))[0]


def sent(actions: list[dict], debtor: str) -> list[tuple[str, str, str]]:
    return sorted(
        (a["at"], a["step"], a["channel"])
        for a in actions
        if a["action"] == "reminder.sent" and a["debtor_id"] == debtor
    )


def test_the_rejected_dispute_resumes_at_the_next_step_with_dates_from_the_resolution_day(actions):
    assert sent(actions, "CLI-ROUGE") == sorted(ROUGE)


def test_nothing_happens_to_the_invoice_while_it_is_disputed(actions):
    disputed, resolved = (
        datetime.fromisoformat("2026-03-24T14:00:00+01:00"),
        datetime.fromisoformat("2026-04-14T08:30:00+02:00"),
    )
    during = [
        a
        for a in actions
        if "F-2026-0301" in a.get("invoice_numbers", [])
        and disputed <= datetime.fromisoformat(a["at"]) <= resolved
    ]
    assert during == []


def test_missed_steps_are_not_sent_in_a_burst_on_the_resolution_day(actions):
    on_the_day = [a for a in actions if a["at"].startswith("2026-04-14")]
    assert [(a["step"], a["channel"]) for a in on_the_day] == [("reminder_1", "email")]
    assert [a for a in actions if a["action"] in ("reminder.skipped", "event.rejected")] == []


def test_penalties_kept_running_during_the_dispute(actions):
    # 2 400,00 € from 17 March to 24 April: 15 + 24 = 39 days at 2.15 % + 10 points:
    # 2400 * 0.1215 * 39 / 365 = 31.157... -> 31.16
    (email,) = [a for a in actions if a.get("step") == "reminder_2" and a["channel"] == "email"]
    assert email["amount_due"] == "2400.00"
    assert email["late_interest"] == "31.16" and email["recovery_indemnity"] == "40.00"
    assert "31,16 €" in email["body_text"]


def test_the_case_of_a_disputed_invoice_recommends_an_assignation_en_paiement(actions):
    (expired,) = [a for a in actions if a["action"] == "deadline.expired"]
    assert expired["at"] == "2026-05-28T00:00:00+02:00"  # end of Wed 27 May
    assert expired["step"] == "escalation" and expired["invoice_numbers"] == ["F-2026-0301"]
    (case,) = [a for a in actions if a["action"] == "case.escalated"]
    assert case["at"] == "2026-05-28T00:00:00+02:00"
    assert case["debtor_id"] == "CLI-ROUGE" and case["invoice_numbers"] == ["F-2026-0301"]
    # although 2 495,12 € <= 5 000 €, a disputed claim goes to an ordinary action
    assert case["recommended_procedure"] == "assignation_en_paiement"
    # penalties on the day the case opens, 28 May: 17-31 March, April, 1-28 May = 15 + 30 +
    # 28 = 73 days: 2400 * 0.1215 * 73 / 365 = 58.32; + 40,00 indemnity = 2 498,32
    assert case["amount_due"] == "2400.00" and case["late_interest"] == "58.32"
    assert case["recovery_indemnity"] == "40.00" and case["amount_claimed"] == "2498.32"


def test_an_upheld_dispute_closes_the_invoice_and_nothing_more_is_sent(actions):
    assert sent(actions, "CLI-GRIS") == sorted(GRIS)
    notice = datetime.fromisoformat("2026-03-19T09:00:00+01:00")
    after_notice = [
        a for a in actions if a.get("debtor_id") == "CLI-GRIS" and datetime.fromisoformat(a["at"]) > notice
    ]
    assert after_notice == []
