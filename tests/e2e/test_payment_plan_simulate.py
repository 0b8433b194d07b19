"""``relance simulate`` on examples/payment_plan.jsonl: installments, a break, dunning resumes.

Dates worked out by hand from the French calendar of 2026 and the default policy:
  F-2026-0201, 1 500,00 € due Tue 31 March: pre_due Thu 26 March is sent before the plan.
  Plan agreed Fri 27 March: 3 × 500,00 € due 15 April, 15 May, 15 June.
  Installment 1: pre-due Fri 10 April, due Wed 15 April; paid that afternoon.
  Installment 2: pre-due Sun 10 May -> Mon 11 May, due Fri 15 May; unpaid, so the plan
  breaks at the end of that day (00:00 on Sat 16 May). Installment 3 is never reminded.
  Dunning resumes on the remaining 1 000,00 € at the notice (the pre_due was already
  sent; a broken plan never resumes an overdue invoice with a pre-due or due reminder):
  the notice's nominal day (3 April) is past, so the run starts on the break day, Sat 16
  -> Mon 18 May; reminder_1 16 + 7 = Sat 23 -> Tue 26 (Mon 25 is Whit Monday);
  reminder_2 16 + 17 = Tue 2 June (e-mail and letter).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.simulation import simulate

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "payment_plan.jsonl"

EXPECTED = [
    ("2026-03-26T09:00:00+01:00", "pre_due", "email"),
    ("2026-04-10T09:00:00+02:00", "installment_1_pre_due", "email"),
    ("2026-04-15T09:00:00+02:00", "installment_1_due", "email"),
    ("2026-05-11T09:00:00+02:00", "installment_2_pre_due", "email"),
    ("2026-05-15T09:00:00+02:00", "installment_2_due", "email"),
    ("2026-05-18T09:00:00+02:00", "notice", "email"),
    ("2026-05-26T09:00:00+02:00", "reminder_1", "email"),
    ("2026-06-02T09:00:00+02:00", "reminder_2", "email"),
    ("2026-06-02T09:00:00+02:00", "reminder_2", "letter"),
]


@pytest.fixture(scope="module")
def actions(tmp_path_factory) -> list[dict]:
    return simulate(SAMPLE, "2026-06-05", tmp_path_factory.mktemp("simulate-plan"))[0]


def test_installments_are_sent_then_the_ladder_resumes_after_the_break(actions):
    sent = [(a["at"], a["step"], a["channel"]) for a in actions if a["action"] == "reminder.sent"]
    assert sent == EXPECTED
    assert not any(a.get("step", "").startswith("installment_3") for a in actions)
    assert [a for a in actions if a["action"] in ("event.rejected", "reminder.skipped")] == []


def test_the_installment_reminders_state_the_installment_and_what_is_left(actions):
    by_step = {a["step"]: a for a in actions if a["action"] == "reminder.sent"}
    first = by_step["installment_1_due"]
    assert first["subject"] == "Échéance n° 1 de votre plan de paiement à régler aujourd'hui"
    assert first["amount_due"] == "500.00"
    assert "Échéance n° 1 sur 3, au 15 avril 2026 : 500,00 €" in first["body_text"]
    assert "Reste à régler sur l'ensemble du plan : 1 500,00 €" in first["body_text"]
    second = by_step["installment_2_pre_due"]
    assert "Échéance n° 2 sur 3, au 15 mai 2026 : 500,00 €" in second["body_text"]
    assert "Reste à régler sur l'ensemble du plan : 1 000,00 €" in second["body_text"]


def test_the_missed_installment_breaks_the_plan_and_the_whole_balance_is_chased(actions):
    (expired,) = [a for a in actions if a["action"] == "deadline.expired"]
    assert expired["at"] == "2026-05-16T00:00:00+02:00"
    assert expired["step"] == "installment_2_deadline"
    assert expired["invoice_numbers"] == ["F-2026-0201"]
    assert expired["amount_due"] == "500.00"
    assert "payment plan broken" in expired["reason"]
    notice = next(a for a in actions if a.get("step") == "notice")
    assert notice["amount_due"] == "1000.00"  # the two unpaid installments, as one balance
    assert "1 000,00 €" in notice["body_text"]
