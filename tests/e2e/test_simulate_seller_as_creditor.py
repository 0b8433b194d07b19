"""``relance simulate`` of e-invoices with no creditor identity configured (the shipped
example's): the letters and e-mails of the preview show the invoices' seller as the creditor,
so anyone can preview a file as it is. A configured identity stays."""

from __future__ import annotations

import json

from pypdf import PdfReader

from config.creditor import seller_as_creditor
from relance.cli import main
from tests.samples import sample
from tests.support import POLICY_WITH_MEDIATOR


def preview(capsys, *args: str) -> tuple[list[dict], str]:
    assert main(["simulate", *args]) == 0
    captured = capsys.readouterr()
    return [json.loads(line) for line in captured.out.splitlines()], captured.err


def test_the_preview_of_a_ubl_invoice_is_signed_by_its_seller(tmp_path, capsys):
    """Given the CEN example ubl-tc434-example1.xml, seller De Koksmaat (VAT
    NL8200.98.395.B.01, Postbus 7l, 1950 AB Velsen-Noord), when it is simulated with the
    shipped policy, then the e-mails and letters name De Koksmaat, not the example company."""
    invoice = sample("ubl-tc434-example1.xml")
    actions, err = preview(capsys, str(invoice), "--until", "2015-01-31", "--data-dir", str(tmp_path))
    sent = [a for a in actions if a["action"] == "reminder.sent"]
    assert sent and all("De Koksmaat, TVA NL820098395B01" in a["body_text"] for a in sent)
    assert not any("Votre société" in a["body_text"] for a in sent)
    assert "the creditor shown is the seller of the e-invoices, De Koksmaat" in err
    (letter, *_) = sorted((tmp_path / "outbox" / "letters").glob("*.pdf"))
    text = PdfReader(letter).pages[0].extract_text()
    assert text.splitlines()[:3] == ["De Koksmaat", "Postbus 7l", "1950 AB Velsen-Noord"]


def test_a_configured_identity_is_kept_in_the_preview(tmp_path, capsys):
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY_WITH_MEDIATOR, encoding="utf-8")
    invoice = sample("ubl-tc434-example1.xml")
    actions, err = preview(capsys, str(invoice), "--until", "2015-01-31", "--policy", str(policy))
    sent = [a for a in actions if a["action"] == "reminder.sent"]
    assert sent and not any("De Koksmaat" in a["body_text"] for a in sent)
    assert "the creditor shown is the seller" not in err


def test_a_seller_s_numbers_that_fail_their_checks_are_left_out():
    class Seller:
        name, siren, vat_id, address = (
            "Atelier Martin SARL",
            "552100555",
            "FR00552100555",
            ("1 rue A", "75001 Paris"),
        )

    creditor = seller_as_creditor(Seller())
    assert creditor is not None
    assert (creditor.name, creditor.siren, creditor.vat_number, creditor.address) == (
        "Atelier Martin SARL",
        None,
        None,
        ("1 rue A", "75001 Paris"),
    )
