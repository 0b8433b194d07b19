"""``relance simulate`` on examples/promise.jsonl: a kept and a broken promise to pay.

Dates worked out by hand from the French calendar of 2026 and the default ladder
(D-5, D, D+3, D+10, D+20, D+30, D+40; window opening 09:00 Europe/Paris). Summer time
starts on Sun 29 March 2026: 09:00 in Paris is 08:00 UTC (+01:00) before, 07:00 UTC
(+02:00) after.

  F-2026-0401 (CLI-JAUNE, 1 500,00 €), due Tue 17 March: pre_due Thu 12 March, due Tue 17,
  notice Fri 20, reminder_1 Fri 27 March (+01:00, the last business day before the change).
  Promise recorded Mon 30 March for Fri 10 April; paid in full on Thu 9 April. The promise
  is kept: no deadline.expired, nothing more.

  F-2026-0402 (CLI-ORANGE, 3 000,00 €), due Fri 20 March: pre_due Sun 15 -> Mon 16 March,
  due Fri 20, notice Mon 23, reminder_1 Mon 30 March (+02:00, the first business day after
  the change). Promise recorded Tue 31 March for Wed 15 April; nothing is paid.
  deadline.expired (promise_expired) at the end of 15 April: 00:00 on Thu 16 April.
  Dunning resumes after reminder_1. reminder_2's nominal day (D+20 = 9 April) is past, so
  the run is shifted by 7 days to start on the resumption day:
    reminder_2      9 April + 7 = Thu 16 April (e-mail and letter)
    reminder_3     19 April + 7 = Sun 26 April -> Mon 27 April (e-mail and letter)
    formal_notice  29 April + 7 = Wed 6 May
  The registered letter is presented 2 business days after Wed 6 May: Thu 7 (1), Fri 8 is
  a public holiday (Victoire 1945), Mon 11 (2). Deadline 11 + 8 = Tue 19 May, expired at
  00:00 on Wed 20 May.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.simulation import simulate

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "promise.jsonl"

JAUNE = [
    ("2026-03-12T09:00:00+01:00", "pre_due", "email"),
    ("2026-03-17T09:00:00+01:00", "due", "email"),
    ("2026-03-20T09:00:00+01:00", "notice", "email"),
    ("2026-03-27T09:00:00+01:00", "reminder_1", "email"),
]
ORANGE = [
    ("2026-03-16T09:00:00+01:00", "pre_due", "email"),
    ("2026-03-20T09:00:00+01:00", "due", "email"),
    ("2026-03-23T09:00:00+01:00", "notice", "email"),
    ("2026-03-30T09:00:00+02:00", "reminder_1", "email"),
    # promise until 15 April, broken
    ("2026-04-16T09:00:00+02:00", "reminder_2", "email"),
    ("2026-04-16T09:00:00+02:00", "reminder_2", "letter"),
    ("2026-04-27T09:00:00+02:00", "reminder_3", "email"),
    ("2026-04-27T09:00:00+02:00", "reminder_3", "letter"),
    ("2026-05-06T09:00:00+02:00", "formal_notice", "registered_letter"),
    ("2026-05-06T09:00:00+02:00", "formal_notice", "email"),
]


@pytest.fixture(scope="module")
def actions(tmp_path_factory) -> list[dict]:
    return simulate(EXAMPLE, "2026-05-20", tmp_path_factory.mktemp("simulate-promise"))[0]


def sent(actions: list[dict], debtor: str) -> list[tuple[str, str, str]]:
    return sorted(
        (a["at"], a["step"], a["channel"])
        for a in actions
        if a["action"] == "reminder.sent" and a["debtor_id"] == debtor
    )


def test_a_kept_promise_stops_everything(actions):
    assert sent(actions, "CLI-JAUNE") == sorted(JAUNE)
    others = [a for a in actions if a.get("debtor_id") == "CLI-JAUNE" and a["action"] != "reminder.sent"]
    assert others == []  # no deadline.expired, no skipped step, no case


def test_the_sending_window_opens_at_nine_in_paris_on_both_sides_of_the_dst_change(actions):
    (before,) = [a["at"] for a in actions if a.get("step") == "reminder_1" and a["debtor_id"] == "CLI-JAUNE"]
    (after,) = [a["at"] for a in actions if a.get("step") == "reminder_1" and a["debtor_id"] == "CLI-ORANGE"]
    assert (before, after) == ("2026-03-27T09:00:00+01:00", "2026-03-30T09:00:00+02:00")
    assert datetime.fromisoformat(before).astimezone(UTC).hour == 8
    assert datetime.fromisoformat(after).astimezone(UTC).hour == 7


def test_a_broken_promise_fires_a_deadline_at_midnight_after_the_promised_day(actions):
    (expired,) = [a for a in actions if a["action"] == "deadline.expired" and a["step"] == "promise_expired"]
    assert expired["at"] == "2026-04-16T00:00:00+02:00"
    assert expired["debtor_id"] == "CLI-ORANGE" and expired["invoice_numbers"] == ["F-2026-0402"]
    promised = datetime.fromisoformat("2026-03-31T11:00:00+02:00")
    paused = [
        a
        for a in actions
        if a.get("debtor_id") == "CLI-ORANGE"
        and promised < datetime.fromisoformat(a["at"]) < datetime.fromisoformat(expired["at"])
    ]
    assert paused == []


def test_dunning_resumes_after_the_broken_promise_without_a_burst(actions):
    assert sent(actions, "CLI-ORANGE") == sorted(ORANGE)
    assert [a for a in actions if a["action"] in ("reminder.skipped", "event.rejected")] == []
    # reminder_2 on 16 April: 3 000,00 € late from 21 March to 16 April, 11 + 16 = 27 days:
    # 3000 * 0.1215 * 27 / 365 = 26.963... -> 26.96
    (email,) = [a for a in actions if a.get("step") == "reminder_2" and a["channel"] == "email"]
    assert email["late_interest"] == "26.96" and email["recovery_indemnity"] == "40.00"


def test_the_formal_notice_deadline_of_the_broken_promise_opens_a_case(actions):
    (expired,) = [a for a in actions if a["action"] == "deadline.expired" and a["step"] == "escalation"]
    assert expired["at"] == "2026-05-20T00:00:00+02:00"
    (case,) = [a for a in actions if a["action"] == "case.escalated"]
    # 20 May: 11 + 30 + 20 = 61 days: 3000 * 0.1215 * 61 / 365 = 60.916... -> 60.92;
    # 3000.00 + 60.92 + 40.00 = 3100.92 <= 5000, uncontested
    assert case["amount_claimed"] == "3100.92"
    assert case["recommended_procedure"] == "procedure_simplifiee"
