"""``relance simulate`` on examples/imported_overdue.jsonl: invoices imported already late.

Both invoices arrive on Fri 24 April 2026 around 08:00, before the 09:00 window opens.
Dates worked out by hand from the French calendar of 2026 and the default ladder
(D-5, D, D+3, D+10, D+20, D+30, D+40):

  F-2026-1001 (CLI-OCRE, 1 350,00 €), due Thu 9 April: 15 days overdue. pre_due (4 April),
  due (9 April), notice (Sun 12 -> Mon 13 April) and reminder_1 (Sun 19 -> Mon 20 April) are
  in the past and never sent. The first step dated today or later is reminder_2:
    reminder_2     D+20 = Wed 29 April (e-mail and letter)
    reminder_3     D+30 = Sat 9 May -> Mon 11 May
    formal_notice  D+40 = Tue 19 May; the registered letter is presented 2 business days
                   later, Thu 21 May; deadline 21 + 8 = Fri 29 May, expired at 00:00 on 30 May

  F-2026-1002 (CLI-BRUN, 2 200,00 €), due Mon 23 February: 60 days overdue. Even the
  formal notice (D+40 = Sat 4 April -> Tue 7 April, past Easter Monday) is past, so the
  invoice enters at `notice` today and the later steps keep their spacing from that day
  (+7, +17, +27, +37), each moved to the next business day:
    notice         Fri 24 April
    reminder_1     24 April + 7  = Fri 1 May (Fête du travail) -> Mon 4 May
    reminder_2     24 April + 17 = Mon 11 May
    reminder_3     24 April + 27 = Thu 21 May
    formal_notice  24 April + 37 = Sun 31 May -> Mon 1 June; presented Wed 3 June (Tue 2,
                   Wed 3); deadline 3 + 8 = Thu 11 June, expired at 00:00 on 12 June
  Penalties still run from the real due date: at reminder_2 (11 May), 24 February to 11
  May = 5 + 31 + 30 + 11 = 77 days, 2200 * 0.1215 * 77 / 365 = 56.389... -> 56.39.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.simulation import simulate

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "imported_overdue.jsonl"

OCRE = [
    ("2026-04-29T09:00:00+02:00", "reminder_2", "email"),
    ("2026-04-29T09:00:00+02:00", "reminder_2", "letter"),
    ("2026-05-11T09:00:00+02:00", "reminder_3", "email"),
    ("2026-05-11T09:00:00+02:00", "reminder_3", "letter"),
    ("2026-05-19T09:00:00+02:00", "formal_notice", "email"),
    ("2026-05-19T09:00:00+02:00", "formal_notice", "registered_letter"),
]
BRUN = [
    ("2026-04-24T09:00:00+02:00", "notice", "email"),
    ("2026-05-04T09:00:00+02:00", "reminder_1", "email"),
    ("2026-05-11T09:00:00+02:00", "reminder_2", "email"),
    ("2026-05-11T09:00:00+02:00", "reminder_2", "letter"),
    ("2026-05-21T09:00:00+02:00", "reminder_3", "email"),
    ("2026-05-21T09:00:00+02:00", "reminder_3", "letter"),
    ("2026-06-01T09:00:00+02:00", "formal_notice", "email"),
    ("2026-06-01T09:00:00+02:00", "formal_notice", "registered_letter"),
]


@pytest.fixture(scope="module")
def actions(tmp_path_factory) -> list[dict]:
    return simulate(EXAMPLE, "2026-06-12", tmp_path_factory.mktemp("simulate-imported"))[0]


def sent(actions: list[dict], debtor: str) -> list[tuple[str, str, str]]:
    return sorted(
        (a["at"], a["step"], a["channel"])
        for a in actions
        if a["action"] == "reminder.sent" and a["debtor_id"] == debtor
    )


def test_an_invoice_15_days_overdue_enters_at_the_first_step_not_in_the_past(actions):
    assert sent(actions, "CLI-OCRE") == OCRE
    (expired,) = [a for a in actions if a["action"] == "deadline.expired" and a["debtor_id"] == "CLI-OCRE"]
    assert expired["at"] == "2026-05-30T00:00:00+02:00"  # end of Fri 29 May


def test_an_invoice_60_days_overdue_enters_at_the_notice_today_with_the_spacing_kept(actions):
    assert sent(actions, "CLI-BRUN") == BRUN
    (expired,) = [a for a in actions if a["action"] == "deadline.expired" and a["debtor_id"] == "CLI-BRUN"]
    assert expired["at"] == "2026-06-12T00:00:00+02:00"  # end of Thu 11 June


def test_past_steps_are_neither_sent_nor_skipped(actions):
    assert [a for a in actions if a["action"] in ("reminder.skipped", "event.rejected")] == []
    steps = {a["step"] for a in actions if a["action"] == "reminder.sent"}
    assert not steps & {"pre_due", "due"}


def test_penalties_of_an_imported_invoice_run_from_its_real_due_date(actions):
    (email,) = [
        a
        for a in actions
        if a.get("step") == "reminder_2" and a["debtor_id"] == "CLI-BRUN" and a["channel"] == "email"
    ]
    assert email["late_interest"] == "56.39" and email["recovery_indemnity"] == "40.00"
    # OCRE at reminder_2 (29 April): 10 to 29 April = 20 days,
    # 1350 * 0.1215 * 20 / 365 = 8.987... -> 8.99
    (ocre,) = [
        a
        for a in actions
        if a.get("step") == "reminder_2" and a["debtor_id"] == "CLI-OCRE" and a["channel"] == "email"
    ]
    assert ocre["late_interest"] == "8.99"
