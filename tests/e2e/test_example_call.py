"""``relance simulate`` on examples/call.jsonl: the default policy's call before the formal notice.

Default ladder D-5, D, D+3, D+10, D+20, D+30, the call D+35, D+40; window 09:00 Europe/Paris.
All three invoices are due Wed 1 April 2026:

  ACME (a business with a phone): F-2026-0301 (1 800,00 €) and F-2026-0302 (450,00 €):
  reminder_3 D+30 = Fri 1 May (holiday) -> Mon 4 May; the call D+35 = Wed 6 May: one task
  for both invoices, 1 800,00 + 450,00 = 2 250,00 €; formal_notice D+40 = Mon 11 May.
  BETA (a business without a phone): F-2026-0303: the same messages, and no call.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.simulation import simulate

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "call.jsonl"


@pytest.fixture(scope="module")
def actions(tmp_path_factory) -> list[dict]:
    return simulate(EXAMPLE, "2026-05-11", tmp_path_factory.mktemp("simulate-call"))[0]


def test_the_call_is_one_task_for_both_invoices_of_the_debtor_with_a_phone(actions):
    (task,) = [a for a in actions if a["action"] == "task.created"]
    assert task == {
        "at": "2026-05-06T09:00:00+02:00",
        "action": "task.created",
        "step": "call",
        "debtor_id": "ACME",
        "invoice_numbers": ["F-2026-0301", "F-2026-0302"],
        "channel": "call",
        "task_id": 1,
        "phone": "+33 4 72 00 00 00",
        "amounts": {"EUR": "2250.00"},
        "due_on": "2026-05-06",
    }


def test_no_message_is_sent_for_the_call_and_the_formal_notice_still_goes(actions):
    sent = {(a["debtor_id"], a["step"]) for a in actions if a["action"] == "reminder.sent"}
    assert ("ACME", "call") not in sent and ("BETA", "call") not in sent
    notices = sorted(
        (a["debtor_id"], a["channel"], a["at"]) for a in actions if a.get("step") == "formal_notice"
    )
    assert notices == [
        ("ACME", "email", "2026-05-11T09:00:00+02:00"),
        ("ACME", "registered_letter", "2026-05-11T09:00:00+02:00"),
        ("BETA", "email", "2026-05-11T09:00:00+02:00"),
        ("BETA", "registered_letter", "2026-05-11T09:00:00+02:00"),
    ]


def test_a_debtor_without_a_phone_gets_no_call_and_no_skip(actions):
    about_beta = [a for a in actions if a.get("debtor_id") == "BETA" and a["action"] != "reminder.sent"]
    assert about_beta == []
    assert [a for a in actions if a["action"] in ("reminder.skipped", "event.rejected")] == []
