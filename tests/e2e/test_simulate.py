"""``relance simulate`` on the README's sample file: every step on its business day."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from relance.cli import main

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "events.jsonl"
POLICY = Path(__file__).resolve().parents[2] / "config" / "policy.toml"

# Dates worked out by hand from the French calendar of 2026 (Easter Monday 6 April,
# 1 May a Friday) and the default ladder (D-5, D, D+3, D+10, D+20, D+30, D+40):
#   ACME, two invoices due Wed 1 April: D-5 = Fri 27 March; D+3 = Sat 4 April -> Tue 7
#   (Mon 6 is Easter Monday); D+10 = Sat 11 -> Mon 13; D+20 = Tue 21; D+30 = Fri 1 May
#   (holiday) -> Mon 4 May; D+40 = Mon 11 May; the registered letter is expected on Wed
#   13 May (2 business days), deadline 13 + 8 = Thu 21 May, expired at the end of that day.
#   BLEU, due Thu 2 April: D-5 = Sat 28 March -> Mon 30; D+3 = Sun 5 -> Tue 7;
#   D+10 = Sun 12 -> Mon 13; paid on 14 April, so nothing after.
EXPECTED = [
    ("2026-03-27T09:00:00+01:00", "CLI-ACME", "pre_due", "email"),
    ("2026-03-30T09:00:00+02:00", "CLI-BLEU", "pre_due", "email"),
    ("2026-04-01T09:00:00+02:00", "CLI-ACME", "due", "email"),
    ("2026-04-02T09:00:00+02:00", "CLI-BLEU", "due", "email"),
    ("2026-04-07T09:00:00+02:00", "CLI-ACME", "notice", "email"),
    ("2026-04-07T09:00:00+02:00", "CLI-BLEU", "notice", "email"),
    ("2026-04-13T09:00:00+02:00", "CLI-ACME", "reminder_1", "email"),
    ("2026-04-13T09:00:00+02:00", "CLI-BLEU", "reminder_1", "email"),
    ("2026-04-21T09:00:00+02:00", "CLI-ACME", "reminder_2", "email"),
    ("2026-04-21T09:00:00+02:00", "CLI-ACME", "reminder_2", "letter"),
    ("2026-05-04T09:00:00+02:00", "CLI-ACME", "reminder_3", "email"),
    ("2026-05-04T09:00:00+02:00", "CLI-ACME", "reminder_3", "letter"),
    ("2026-05-11T09:00:00+02:00", "CLI-ACME", "formal_notice", "registered_letter"),
    ("2026-05-11T09:00:00+02:00", "CLI-ACME", "formal_notice", "email"),
]


@pytest.fixture(scope="module")
def kept_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("simulate")


@pytest.fixture(scope="module")
def actions(kept_dir) -> list[dict]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["simulate", str(SAMPLE), "--until", "2026-06-30", "--data-dir", str(kept_dir)])
    assert code == 0
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_every_step_of_the_sample_is_sent_on_its_business_day(actions):
    sent = [
        (a["at"], a["debtor_id"], a["step"], a["channel"]) for a in actions if a["action"] == "reminder.sent"
    ]
    assert sorted(sent) == sorted(EXPECTED)


def test_the_malformed_line_is_reported_with_its_line_and_field(actions):
    rejected = [a for a in actions if a["action"] == "event.rejected"]
    assert len(rejected) == 1
    assert rejected[0]["reason"].startswith("line 6: amount: money must be a JSON string")


def test_the_formal_notice_deadline_opens_an_injonction_de_payer_case(actions):
    expired = [a for a in actions if a["action"] == "deadline.expired"]
    cases = [a for a in actions if a["action"] == "case.escalated"]
    # formal notice posted Monday 11 May; presented 2 business days later, Wednesday 13 May;
    # + 8 days = Thursday 21 May, a business day: the deadline expires at the end of 21 May
    assert [a["at"] for a in expired] == ["2026-05-22T00:00:00+02:00"]
    assert len(cases) == 1
    case = cases[0]
    assert case["invoice_numbers"] == ["F-2026-0101", "F-2026-0102"]
    assert case["recommended_procedure"] == "injonction_de_payer"  # 6 400 € + penalties > 5 000 €
    # principal first (the default): the 200.00 paid on 20 April lower F-0101 to 1000.00
    # from 21 April; penalties on 22 May, a claim beside the principal:
    #   F-0101: 1200 * .1215 * 19 / 365 = 7.58959 (2-20 April)
    #         + 1000 * .1215 * 32 / 365 = 10.65205 (21 April - 22 May) = 18.24164 -> 18.24
    #   F-0102: 5400 * .1215 * 51 / 365 = 91.67425 -> 91.67 (2 April - 22 May)
    # 6400.00 + 109.91 + 80.00 = 6589.91
    assert case["amount_due"] == "6400.00" and case["recovery_indemnity"] == "80.00"
    assert case["late_interest"] == "109.91" and case["amount_claimed"] == "6589.91"


def test_the_formal_notice_states_the_deadline_from_the_letter_s_presentation(actions):
    # posted Monday 11 May 2026, presented Wednesday 13 May (J+2 business days), + 8 days
    notices = [a for a in actions if a.get("step") == "formal_notice"]
    assert {a["channel"] for a in notices} == {"registered_letter", "email"}
    for notice in notices:
        assert "au plus tard le 21 mai 2026." in notice["body_text"]
        assert "Ce montant est arrêté au 11 mai 2026" in notice["body_text"]
        assert "les pénalités de retard continuent de courir jusqu'au paiement complet" in notice["body_text"]
        assert "40,00 € est due pour chaque facture payée en retard" in notice["body_text"]


def test_the_second_reminder_states_penalties_computed_by_hand(actions):
    # Rate 2.15 % + 10 points = 12.15 %. Payments reduce the principal (principal first).
    # F-0101: 1200.00 late 2-20 April (19 days): 1200*.1215*19/365 = 7.58959; the 200.00
    #         paid on 20 April lower the principal to 1000.00 from 21 April; 1 day:
    #         1000*.1215/365 = 0.33288; penalties 7.58959 + 0.33288 = 7.92247 -> 7.92
    # F-0102: 5400.00 for 20 days: 5400*.1215*20/365 = 35.9507 -> 35.95; total 43.87
    (email,) = [a for a in actions if a.get("step") == "reminder_2" and a["channel"] == "email"]
    assert email["subject"].startswith("2e relance pour facture impayée")
    assert email["late_interest"] == "43.87"
    assert email["recovery_indemnity"] == "80.00"
    assert email["amount_due"] == "6400.00"
    assert "1 000,00 € restant dû (après 200,00 € déjà réglés ou crédités)\n" in email["body_text"]
    assert "7,92 €" in email["body_text"] and "35,95 €" in email["body_text"]
    assert email["to"] == "compta@acme-industrie.example"
    assert email["message_id"].startswith("<") and email["message_id"].endswith("@localhost>")


@pytest.fixture(scope="module")
def actions_interest_first(tmp_path_factory) -> list[dict]:
    """The sample under a policy that imputes payments on penalties first (1343-1)."""
    folder = tmp_path_factory.mktemp("simulate-1343-1")
    policy = folder / "policy.toml"
    policy.write_text(
        POLICY.read_text(encoding="utf-8").replace(
            'payment_imputation = "principal_first"', 'payment_imputation = "interest_first"'
        ),
        encoding="utf-8",
    )
    assert 'payment_imputation = "interest_first"' in policy.read_text(encoding="utf-8")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["simulate", str(SAMPLE), "--until", "2026-06-30", "--policy", str(policy)])
    assert code == 0
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_under_interest_first_the_case_claims_the_principal_left_by_1343_1(actions_interest_first):
    (case,) = [a for a in actions_interest_first if a["action"] == "case.escalated"]
    # F-0101 principal after imputation 1007.59 (see below); penalties on 22 May (the deadline
    # ends on 21 May: see the default run above):
    #   F-0101: 7.58959 accrued to 20 April, 7.59 paid by the payment, then
    #           1007.59 * .1215 * 32 / 365 = 10.73290 -> 18.32249 - 7.59 = 10.73249 -> 10.73
    #   F-0102: 5400 * .1215 * 51 / 365 = 91.67425 -> 91.67
    # 6407.59 + 102.40 + 80.00 = 6589.99
    assert case["amount_due"] == "6407.59" and case["recovery_indemnity"] == "80.00"
    assert case["late_interest"] == "102.40" and case["amount_claimed"] == "6589.99"


def test_under_interest_first_the_second_reminder_imputes_the_payment_on_penalties(actions_interest_first):
    # Code civil 1343-1: payments go to penalties first.
    # F-0101: 1200.00 late 2-20 April (19 days): 1200*.1215*19/365 = 7.58959 -> 7.59, so the
    #         200.00 paid on 20 April pays 7.59 of penalties and 192.41 of principal:
    #         principal 1007.59 from 21 April; 1 day: 1007.59*.1215/365 = 0.33540;
    #         penalties still due 7.58959 + 0.33540 - 7.59 = 0.33499 -> 0.33
    # F-0102: 5400.00 for 20 days: 5400*.1215*20/365 = 35.9507 -> 35.95
    (email,) = [
        a for a in actions_interest_first if a.get("step") == "reminder_2" and a["channel"] == "email"
    ]
    assert email["late_interest"] == "36.28"
    assert email["amount_due"] == "6407.59"
    assert "1 007,59 €" in email["body_text"]
    assert "0,33 €" in email["body_text"] and "35,95 €" in email["body_text"]


def test_a_late_acknowledgment_of_the_notice_shows_as_a_moved_deadline(tmp_path):
    # ACME signs for the registered letter on Wed 20 May: 20 + 8 = Thu 28 May, a business
    # day, so the deadline moves from 21 to 28 May and expires at 00:00 on Fri 29 May
    # relance simulate keys its Message-IDs with a fixed key (docs/events.md)
    from handlers.reminders import message_id_for
    from relance.simulate import SIMULATION_KEY

    claims = [("F-2026-0101", "formal_notice"), ("F-2026-0102", "formal_notice")]
    notice_id = message_id_for("registered_letter", claims, "localhost", SIMULATION_KEY.encode())
    receipt = {
        "event_id": "evt-ar-late",
        "type": "delivery.status",
        "occurred_at": "2026-05-20T11:00:00+02:00",
        "message_id": notice_id,
        "status": "acknowledged",
        "at": "2026-05-20T10:42:00+02:00",
    }
    events = tmp_path / "events.jsonl"
    events.write_text(SAMPLE.read_text(encoding="utf-8").rstrip("\n") + "\n" + json.dumps(receipt) + "\n")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["simulate", str(events), "--until", "2026-06-30"]) == 0
    actions = [json.loads(line) for line in out.getvalue().splitlines()]
    moved = [a for a in actions if a["action"] == "deadline.moved"]
    assert [(a["at"], a["invoice_numbers"], a["deadline"]) for a in moved] == [
        ("2026-05-20T11:00:00+02:00", ["F-2026-0101"], "2026-05-28"),
        ("2026-05-20T11:00:00+02:00", ["F-2026-0102"], "2026-05-28"),
    ]
    expired = [a["at"] for a in actions if a["action"] == "deadline.expired"]
    assert expired == ["2026-05-29T00:00:00+02:00"]


def test_the_kept_data_dir_holds_the_eml_and_pdf_files(actions, kept_dir):
    from pypdf import PdfReader

    outbox = kept_dir / "outbox"
    assert len(list((outbox / "email").glob("*.eml"))) == 11
    (notice,) = list((outbox / "registered").glob("*.pdf"))
    text = PdfReader(notice).pages[0].extract_text()
    assert "Mise en demeure" in text and "F-2026-0101" in text
    assert "Lettre recommandée" in text
    # the creditor's legal mentions (C. com. R123-237) at the foot of the letter: the
    # example identity of config/policy.toml
    mentions = "Votre société SAS, SAS au capital de 10 000 €, RCS Paris 123 456 782, TVA FR11123456782"
    assert mentions in " ".join(text.split())


def test_the_table_format_prints_one_line_per_action(tmp_path, capsys):
    assert (
        main(
            [
                "simulate",
                str(SAMPLE),
                "--until",
                "2026-04-01",
                "--format",
                "table",
                "--data-dir",
                str(tmp_path),
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("2026-03-20 08:00  event.rejected")
    assert any("pre_due" in line and "CLI-ACME" in line for line in lines)
    assert len(lines) == 4  # rejection, two pre_due, ACME's due


def test_the_evidence_chain_of_a_kept_simulation_verifies(actions, kept_dir, capsys):
    assert main(["evidence", "verify", "--data-dir", str(kept_dir)]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("ok ") and " records, head " in out and int(out.split()[1]) > 20
