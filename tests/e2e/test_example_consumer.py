"""``relance simulate`` on examples/consumer.jsonl: a consumer gets the consumer policy and
owes no B2B penalties.

Dates worked out by hand from the French calendar of 2026 and the shipped consumer policy
(config/consumer.toml: D, D+7, D+21, D+35; window opening 10:00 Europe/Paris):

  F-2026-0601 (CLI-MARTIN, a consumer, 450,00 €), due Wed 24 June:
    due            Wed 24 June
    notice         Wed 1 July
    reminder_1     Wed 15 July (e-mail and letter)
    formal_notice  Wed 29 July (registered letter and e-mail), presented 2 business days
                   later, Fri 31 July; deadline 31 July + 15 = Sat 15 August (also a public
                   holiday), moved to Mon 17 August
    escalation     at the end of 17 August: 00:00 on Tue 18 August
  No late-payment penalties and no 40 € indemnity for a consumer, so the case claims the
  principal only: 450,00 € <= 5 000 € and uncontested -> procedure_simplifiee.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.simulation import simulate

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "consumer.jsonl"

EXPECTED = [
    ("2026-06-24T10:00:00+02:00", "due", "email"),
    ("2026-07-01T10:00:00+02:00", "notice", "email"),
    ("2026-07-15T10:00:00+02:00", "reminder_1", "email"),
    ("2026-07-15T10:00:00+02:00", "reminder_1", "letter"),
    ("2026-07-29T10:00:00+02:00", "formal_notice", "email"),
    ("2026-07-29T10:00:00+02:00", "formal_notice", "registered_letter"),
]


@pytest.fixture(scope="module")
def actions(tmp_path_factory) -> list[dict]:
    return simulate(EXAMPLE, "2026-08-31", tmp_path_factory.mktemp("simulate-consumer"))[0]


def test_the_consumer_policy_sends_four_steps_on_their_business_days(actions):
    sent = sorted((a["at"], a["step"], a["channel"]) for a in actions if a["action"] == "reminder.sent")
    assert sent == sorted(EXPECTED)


def test_no_step_claims_penalties_or_the_recovery_indemnity(actions):
    assert len(actions) == 8  # 6 messages, deadline.expired, case.escalated
    for action in actions:
        assert action.get("late_interest", "0.00") == "0.00", action
        assert action.get("recovery_indemnity", "0.00") == "0.00", action
    for action in actions:
        body = action.get("body_text", "")
        assert "L441-10" not in body and "indemnité forfaitaire" not in body


def test_the_formal_notice_says_legal_interest_runs_from_its_date(actions):
    notices = [a for a in actions if a.get("step") == "formal_notice"]
    assert {a["channel"] for a in notices} == {"registered_letter", "email"}
    for notice in notices:
        body = notice["body_text"]
        assert "intérêts au taux légal à compter de sa date" in body
        assert "article 1344-1 du Code civil" in body
        assert "au plus tard le 17 août 2026" in body  # presented 31 July + 15 days, off 15 August
    (letter,) = [a for a in notices if a["channel"] == "registered_letter"]
    assert letter["to"] == "Claire Martin, 7 impasse des Lilas, 35000 Rennes"


def test_the_consumer_case_is_still_escalated_for_the_principal_only(actions):
    (expired,) = [a for a in actions if a["action"] == "deadline.expired"]
    assert expired["at"] == "2026-08-18T00:00:00+02:00"
    (case,) = [a for a in actions if a["action"] == "case.escalated"]
    assert case["debtor_id"] == "CLI-MARTIN" and case["invoice_numbers"] == ["F-2026-0601"]
    assert case["amount_due"] == "450.00" and case["amount_claimed"] == "450.00"
    assert case["recommended_procedure"] == "procedure_simplifiee"
