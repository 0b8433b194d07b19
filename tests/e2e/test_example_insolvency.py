"""``relance simulate`` on examples/insolvency.jsonl: an opening judgment freezes dunning.

Dates worked out by hand from the French calendar of 2026 and the default ladder
(D-5, D, D+3, D+10, D+20, D+30, D+40; window opening 09:00 Europe/Paris):

  F-2026-0801 (CLI-BEIGE, 1 800,00 €), issued 2 February, due Wed 4 March: pre_due Fri
  27 February, due Wed 4 March, notice Sat 7 -> Mon 9 March, reminder_1 Sat 14 -> Mon 16
  March.
  Redressement judiciaire opened by judgment of Tue 17 March, published in the BODACC on
  Fri 20 March; the event arrives Mon 23 March 08:00. The invoice was issued before the
  judgment: reminder_2 (Tue 24 March) and every later step are never sent. A
  claim-declaration case opens at once:
    deadline          BODACC 20 March + 2 months = 20 May 2026 (L622-24, R622-24)
    penalties         stop the day before the judgment, which takes effect at 0 h on its
                      day (L622-28): 5 to 16 March = 12 days,
                      1800 * 0.1215 * 12 / 365 = 7.1901... -> 7.19 (counting the judgment
                      day, as before, gave 13 days and 7.79)
    indemnity         40,00 € (the invoice fell due before the judgment, D441-5)
    amount claimed    1800.00 + 7.19 + 40.00 = 1847.19
  The invoice has no delivery date: its origin is presumed from its issue date (2 February,
  before the judgment), and an ``insolvency.origin_presumed`` warning says so.

  F-2026-0802 (CLI-BEIGE, 600,00 €), issued Wed 25 March, after the judgment, due Fri 24
  April: not frozen. pre_due Sun 19 -> Mon 20 April, due Fri 24 April, notice Mon 27 April.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.simulation import simulate

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "insolvency.jsonl"


@pytest.fixture(scope="module")
def actions(tmp_path_factory) -> list[dict]:
    return simulate(EXAMPLE, "2026-04-30", tmp_path_factory.mktemp("simulate-insolvency"))[0]


def sent(actions: list[dict], invoice: str) -> list[tuple[str, str, str]]:
    return sorted(
        (a["at"], a["step"], a["channel"])
        for a in actions
        if a["action"] == "reminder.sent" and a["invoice_numbers"] == [invoice]
    )


def test_reminders_of_the_pre_judgment_invoice_stop_at_the_judgment(actions):
    assert sent(actions, "F-2026-0801") == [
        ("2026-02-27T09:00:00+01:00", "pre_due", "email"),
        ("2026-03-04T09:00:00+01:00", "due", "email"),
        ("2026-03-09T09:00:00+01:00", "notice", "email"),
        ("2026-03-16T09:00:00+01:00", "reminder_1", "email"),
    ]
    assert [
        a
        for a in actions
        if a["action"] in ("reminder.skipped", "case.escalated", "deadline.expired", "event.rejected")
    ] == []


def test_a_claim_declaration_case_opens_with_the_bodacc_deadline(actions):
    (case,) = [a for a in actions if a["action"] == "case.opened"]
    assert case["at"] == "2026-03-23T08:00:00+01:00"  # when the event is applied
    assert case["debtor_id"] == "CLI-BEIGE" and case["invoice_numbers"] == ["F-2026-0801"]
    assert case["recommended_procedure"] == "declaration_de_creance"
    assert case["deadline"] == "2026-05-20"
    assert case["amount_due"] == "1800.00" and case["late_interest"] == "7.19"  # 12 days, see above
    assert case["recovery_indemnity"] == "40.00" and case["amount_claimed"] == "1847.19"


def test_an_invoice_issued_after_the_judgment_is_still_reminded(actions):
    assert sent(actions, "F-2026-0802") == [
        ("2026-04-20T09:00:00+02:00", "pre_due", "email"),
        ("2026-04-24T09:00:00+02:00", "due", "email"),
        ("2026-04-27T09:00:00+02:00", "notice", "email"),
    ]


def test_reminders_after_the_judgment_do_not_list_the_frozen_invoice(actions):
    # spec/ladder.md: insolvency freezes every pre-judgment invoice (L622-21: the claim may
    # only be declared); listing it as "échue et impayée" in a statement would demand it.
    later = [a for a in actions if a["action"] == "reminder.sent" and a["invoice_numbers"] == ["F-2026-0802"]]
    assert len(later) == 3
    for action in later:
        assert "F-2026-0801" not in action["body_text"], action["step"]


def test_both_invoices_without_a_delivery_date_are_reported_as_presumed_from_their_issue_date(actions):
    # F-0801 issued 2 February: presumed born before the judgment of 17 March (frozen);
    # F-0802 issued 25 March: presumed born after it (chased). Reported once each.
    presumed = [a for a in actions if a["action"] == "insolvency.origin_presumed"]
    assert [(a["at"], a["invoice_numbers"]) for a in presumed] == [
        ("2026-03-23T08:00:00+01:00", ["F-2026-0801"]),
        ("2026-03-25T10:00:00+01:00", ["F-2026-0802"]),
    ]
    assert "frozen and declared" in presumed[0]["reason"]
    assert "chased as a post-judgment claim" in presumed[1]["reason"]
