"""``relance simulate``: a formal notice and another invoice's due reminder on the same day.

CLI-VERT owes F-A (1 000,00 €, due Mon 5 January 2026) and F-B (5 000,00 €, due Mon 16
February 2026). Worked out by hand from the default ladder and the French calendar:

  F-A  formal_notice D+40 = Sat 14 February -> Mon 16 February
  F-B  pre_due D-5 = Wed 11 February; due D+0 = Mon 16 February

On 16 February the formal notice claims F-A alone, on the registered letter and on the
e-mail; F-B's due reminder would need the e-mail again that day, so it is mentioned in the
notice's "À échoir" section, outside the amount demanded, and counts as done.

Penalties of F-A on 16 February: late from 6 January, 26 + 16 = 42 days at 2.15 % + 10
points = 12.15 %: 1000 * 0.1215 * 42 / 365 = 13.9808... -> 13.98; indemnity 40.00;
total demanded 1000.00 + 13.98 + 40.00 = 1053.98.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.simulation import simulate

DEBTOR = {
    "id": "CLI-VERT",
    "name": "Vert Mobilier SAS",
    "kind": "business",
    "email": "compta@vert-mobilier.example",
    "language": "fr",
    "timezone": "Europe/Paris",
    "address": {
        "line1": "8 quai des Tanneurs",
        "postal_code": "67000",
        "city": "Strasbourg",
        "country": "FR",
    },
}


def issued(event_id: str, at: str, number: str, issue: str, due: str, amount: str) -> dict:
    invoice = {
        "number": number,
        "debtor_id": "CLI-VERT",
        "issue_date": issue,
        "due_date": due,
        "currency": "EUR",
        "amount_due": amount,
    }
    return {
        "event_id": event_id,
        "type": "invoice.issued",
        "occurred_at": at,
        "invoice": invoice,
        "debtor": DEBTOR,
    }


EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "formal_notice_and_upcoming.jsonl"


def test_the_example_file_holds_these_two_invoices():
    lines = [
        issued("evt-a", "2025-12-05T10:00:00+01:00", "F-A", "2025-12-05", "2026-01-05", "1000.00"),
        issued("evt-b", "2026-01-16T10:00:00+01:00", "F-B", "2026-01-16", "2026-02-16", "5000.00"),
    ]
    assert [json.loads(line) for line in EXAMPLE.read_text().splitlines()] == lines


@pytest.fixture(scope="module")
def actions(tmp_path_factory) -> list[dict]:
    folder = tmp_path_factory.mktemp("simulate-upcoming")
    return simulate(EXAMPLE, "2026-02-17", folder / "data")[0]


def on_16_february(actions: list[dict]) -> list[dict]:
    return [a for a in actions if a["action"] == "reminder.sent" and a["at"].startswith("2026-02-16")]


def test_the_formal_notice_claims_only_the_overdue_invoice_on_both_channels(actions):
    sent = on_16_february(actions)
    assert sorted((a["step"], a["channel"]) for a in sent) == [
        ("formal_notice", "email"),
        ("formal_notice", "registered_letter"),
    ]
    for notice in sent:
        assert notice["invoice_numbers"] == ["F-A"]
        assert (notice["amount_due"], notice["late_interest"], notice["recovery_indemnity"]) == (
            "1000.00",
            "13.98",
            "40.00",
        )
        assert "la somme totale de 1 053,98 €" in notice["body_text"]
        assert "6 000" not in notice["body_text"]


def test_the_due_reminder_of_the_other_invoice_is_mentioned_as_coming_due(actions):
    for notice in on_16_february(actions):
        assert notice["mentioned_invoice_numbers"] == ["F-B"]
        body = notice["body_text"]
        coming = body[body.index("À échoir") :]
        assert "Facture n° F-B, à échéance le 16 février 2026 : 5 000,00 €" in coming
        # the demand comes before the coming-due section, which is not part of it
        assert body.index("la somme totale de") < body.index("À échoir")


def test_the_other_invoice_had_its_pre_due_reminder_and_no_due_reminder_of_its_own(actions):
    of_b = [
        (a["at"][:10], a["step"])
        for a in actions
        if a["action"] == "reminder.sent" and a["step"] != "formal_notice" and "F-B" in a["invoice_numbers"]
    ]
    assert of_b == [("2026-02-11", "pre_due")]
