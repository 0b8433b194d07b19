"""``relance simulate`` on examples/insolvency_stages.jsonl: claims sorted by their origin, a
conversion to liquidation, a factored invoice.

Worked out by hand from the French calendar of 2026 (Easter Monday 6 April, Ascension
Thursday 14 May, Whit Monday 25 May), the default ladder (D-5, D, D+3, D+10, D+20, D+30,
D+40; 09:00 Europe/Paris) and the 2026-H1 rate of 12.15 % (ECB 2.15 % + 10 points):

  Ocre Menuiserie SARL (CLI-OCRE). Redressement judiciaire opened by judgment of Wednesday
  8 April, published in the BODACC on Friday 10 April, with Me Claire Dubois as mandataire;
  the event arrives Monday 13 April 08:00, before that day's reminder_1 of F-0901.

  F-2026-0901  2 400,00 €, delivered 27 February, issued 2 March, due Wed 1 April: born
               before the judgment. pre_due Fri 27 March, due Wed 1 April, notice Sat 4 ->
               Easter Monday 6 -> Tue 7 April; then frozen. Declared at once:
                 interest 2 to 7 April (the judgment, effective at 0 h on 8 April, stops it,
                 L622-28) = 6 days: 2400 * 0.1215 * 6 / 365 = 4.7934... -> 4.79
                 indemnity 40,00 € (late before the judgment); claimed 2 444,79 €
                 deadline BODACC 10 April + 2 months = 10 June 2026
  F-2026-0902  1 500,00 €, issued Fri 3 April (before the judgment) but delivered 14 April
               (after it, L622-17): chased as any claim, due Mon 4 May. pre_due Wed 29
               April, due Mon 4 May, notice Thu 7 May, reminder_1 Ascension 14 -> Fri 15 May,
               reminder_2 Sun 24 -> Whit Monday 25 -> Tue 26 May, reminder_3 Wed 3 June,
               formal notice Sat 13 -> Mon 15 June, with penalties from 5 May:
                 reminder_2 (26 May): 22 days, 1500 * 0.1215 * 22 / 365 = 10.984... -> 10.98
                 reminder_3 (3 June): 30 days, 1500 * 0.1215 * 30 / 365 = 14.979... -> 14.98
                 formal notice (15 June): 27 + 15 = 42 days,
                                1500 * 0.1215 * 42 / 365 = 20.971... -> 20.97, and 40 €
  F-2026-0903  900,00 €, goods delivered Tue 7 April, invoiced 20 April, due 20 May: born
               before the judgment: never reminded, it joins the declaration with no
               interest and no indemnity (never late before the judgment):
                 principal 2400 + 900 = 3 300,00 €; claimed 3300.00 + 4.79 + 40.00 = 3 344,79 €
  F-2026-0904  600,00 €, factored to Factofrance when issued on 22 April: never reminded,
               never declared (the factor collects).

  On Tuesday 16 June the redressement is converted to liquidation (judgment of 15 June):
  the declaration is now addressed to the liquidator, Me Paul Marchand (L641-3).
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from relance.cli import main
from tests.simulation import simulate

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "insolvency_stages.jsonl"
LIQUIDATOR = "the liquidator Me Paul Marchand, 8 rue Grenette, 69002 Lyon"


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[list[dict], Path]:
    with pytest.MonkeyPatch.context() as patch:
        for name in ("RELANCE_DATABASE_URL", "RELANCE_REDIS_URL", "RELANCE_SMTP_HOST", "RELANCE_POLICY_FILE"):
            patch.delenv(name, raising=False)
        folder = tmp_path_factory.mktemp("simulate-insolvency-stages")
        actions = simulate(EXAMPLE, "2026-06-16", folder)[0]
        out = folder / "dossier"
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(["case", "export", "1", str(out), "--data-dir", str(folder)]) == 0
        return actions, out


def sent(actions: list[dict], invoice: str) -> list[tuple[str, str]]:
    return [
        (a["at"][:10], a["step"])
        for a in actions
        if a["action"] == "reminder.sent" and a["invoice_numbers"] == [invoice] and a["channel"] == "email"
    ]


def test_the_pre_judgment_claim_stops_at_the_judgment_and_the_one_invoiced_after_is_never_chased(run):
    actions, _ = run
    assert sent(actions, "F-2026-0901") == [
        ("2026-03-27", "pre_due"),
        ("2026-04-01", "due"),
        ("2026-04-07", "notice"),
    ]
    assert sent(actions, "F-2026-0903") == [] and sent(actions, "F-2026-0904") == []


def test_the_claim_delivered_after_the_judgment_is_chased_with_penalties_and_the_indemnity(run):
    actions, _ = run
    assert sent(actions, "F-2026-0902") == [
        ("2026-04-29", "pre_due"),
        ("2026-05-04", "due"),
        ("2026-05-07", "notice"),
        ("2026-05-15", "reminder_1"),
        ("2026-05-26", "reminder_2"),
        ("2026-06-03", "reminder_3"),
        ("2026-06-15", "formal_notice"),
    ]
    figures = {
        a["step"]: (a["late_interest"], a["recovery_indemnity"])
        for a in actions
        if a["action"] == "reminder.sent" and a["invoice_numbers"] == ["F-2026-0902"] and "late_interest" in a
    }
    assert figures["reminder_2"] == ("10.98", "40.00")
    assert figures["reminder_3"] == ("14.98", "40.00")
    assert figures["formal_notice"] == ("20.97", "40.00")
    # its messages never list the frozen or the factored invoices as overdue
    for action in actions:
        if action["action"] == "reminder.sent" and action["invoice_numbers"] == ["F-2026-0902"]:
            for other in ("F-2026-0901", "F-2026-0903", "F-2026-0904"):
                assert other not in action["body_text"], (action["step"], other)


def test_the_declaration_opens_to_the_mandataire_and_the_factored_invoice_is_left_to_the_factor(run):
    actions, _ = run
    (case,) = [a for a in actions if a["action"] == "case.opened"]
    assert case["invoice_numbers"] == ["F-2026-0901"] and case["deadline"] == "2026-06-10"
    assert (case["late_interest"], case["recovery_indemnity"], case["amount_claimed"]) == (
        "4.79",
        "40.00",
        "2444.79",
    )
    assert (
        case["declared_to"] == "the mandataire judiciaire Me Claire Dubois, 3 quai Jules Courmont, 69002 Lyon"
    )
    (factored,) = [a for a in actions if a["action"] == "invoice.factored"]
    assert factored["invoice_numbers"] == ["F-2026-0904"]
    assert factored["reason"] == "invoice factored: collected by Factofrance"
    assert [a for a in actions if a["action"] == "insolvency.origin_presumed"] == []  # delivery dates given


def test_after_the_conversion_the_dossier_names_the_liquidator_and_holds_both_pre_judgment_claims(run):
    actions, out = run
    (converted,) = [a for a in actions if a["action"] == "insolvency.converted"]
    assert converted["at"] == "2026-06-16T10:00:00+02:00"
    assert (
        converted["reason"]
        == f"converted to liquidation by judgment of 2026-06-15: the claim is declared to {LIQUIDATOR}"
    )
    data = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert data["case"]["kind"] == "claim_declaration"
    assert [i["number"] for i in data["invoices"]] == ["F-2026-0901", "F-2026-0903"]
    assert (data["case"]["principal"], data["case"]["amount_claimed"]) == ("3300.00", "3344.79")
    assert data["case"]["reasons"][1] == (
        f"individual collection stops (L622-21); the claim must be declared to {LIQUIDATOR} (L641-3)"
    )
    assert data["debtor"]["insolvency_stage"] == "liquidation"
    assert data["debtor"]["insolvency_administrator"]["name"] == "Me Paul Marchand"
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert (
        "Déclaration de créance à adresser au liquidateur : Me Paul Marchand, 8 rue Grenette, 69002 Lyon."
        in summary
    )
