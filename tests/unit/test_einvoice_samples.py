"""The published EN 16931 examples (tests/samples.py) read into events: the figures are the
ones SOURCES.md states for each file."""

from __future__ import annotations

from decimal import Decimal

import pytest

from adapters.importers.einvoice import ImportRejected, read_document
from handlers.events import CreditNoteIssued, InvoiceIssued, validate_event
from tests.samples import sample


def _only_event(name: str):
    document = read_document(sample(name))
    assert len(document.events) == 1
    return document, validate_event(dict(document.events[0]))


def test_the_factur_x_invoice_of_the_fnfe_mpe():
    document, event = _only_event("Facture_FR_EN16931.pdf")
    assert isinstance(event, InvoiceIssued)
    assert document.format == "factur-x" and document.type_code == "380"
    assert event.invoice.number == "FA-2017-0010"
    assert event.invoice.issue_date.isoformat() == "2017-11-13"
    assert event.invoice.due_date.isoformat() == "2017-12-13"
    # BT-115, the amount due: 671.15 less the 201.00 already paid
    assert event.invoice.amount_due == Decimal("470.15")
    assert event.invoice.currency == "EUR"
    assert event.invoice.debtor_id == "siren:787878784"  # from the SIRET in scheme 0002
    assert event.debtor.siren == "787878784"
    assert event.debtor.name == "Ma jolie boutique"
    assert event.debtor.email == "alexandre.payet@majolieboutique.net"
    assert (event.debtor.address.line1, event.debtor.address.postal_code) == (
        "35 rue de la République",
        "69001",
    )
    assert (event.debtor.address.city, event.debtor.address.country) == ("Lyon", "FR")
    assert event.invoice.late_penalty_rate is None and event.invoice.delivered_on is None
    assert event.event_id == "einvoice:siren:999999998:invoice.issued:FA-2017-0010"
    assert (document.seller.name, document.seller.siren, document.seller.vat_id) == (
        "Au bon moulin",
        "999999998",
        "FR11999999998",
    )
    # a French seller whose invoice states neither the penalty rate nor the 40 € indemnity
    assert document.warnings == (
        "BT-20/BT-22: the invoice does not state the late-payment penalty rate nor the 40 € recovery "
        "indemnity (mentions required by C. com. L441-9; the claims themselves are due under L441-10)",
    )
    assert document.events[0]["source_document"]["warnings"] == list(document.warnings)


def test_the_factur_x_credit_note_credits_the_invoice_it_names():
    document, event = _only_event("Avoir_FR_type381_EN16931.pdf")
    assert isinstance(event, CreditNoteIssued)
    assert (event.credit_note_number, event.invoice_number) == ("AV-2017-0005", "FA-2017-0010")
    assert event.amount == Decimal("233.47")
    assert event.occurred_at.date().isoformat() == "2017-11-16"
    assert document.warnings == ()  # the L441-9 mentions are an invoice's


@pytest.mark.parametrize(
    ("name", "number", "issued", "due", "amount", "debtor_id", "debtor_name"),
    [
        ("ubl-tc434-example1.xml", "12115118", "2015-01-09", "2015-01-09", "250.33", "id:10202", "ODIN 59"),
        (
            "ubl-tc434-example8.xml",
            "1100512149",
            "2014-11-10",
            "2014-11-24",
            "1099.78",
            "id:1081119",
            "Klant",
        ),
        ("CII_example8.xml", "1100512149", "2014-11-10", "2014-11-24", "1099.78", "id:1081119", "Klant"),
        (
            "CII_example9.xml",
            "20150483",
            "2015-04-01",
            "2015-04-15",
            "177.87",
            "name:provide-verzekeringen",
            "Provide Verzekeringen",
        ),
    ],
)
def test_the_cen_examples(name, number, issued, due, amount, debtor_id, debtor_name):
    document, event = _only_event(name)
    assert isinstance(event, InvoiceIssued)
    assert event.invoice.number == number
    assert (event.invoice.issue_date.isoformat(), event.invoice.due_date.isoformat()) == (issued, due)
    assert event.invoice.amount_due == Decimal(amount) and event.invoice.currency == "EUR"
    assert (event.invoice.debtor_id, event.debtor.name) == (debtor_id, debtor_name)
    assert event.debtor.address.country == "NL" and event.debtor.siren is None
    assert document.warnings == ()  # Dutch sellers: French mentions are not asked of them


def test_one_invoice_in_ubl_and_in_cii_is_one_and_the_same_event():
    ubl = read_document(sample("ubl-tc434-example8.xml"))
    cii = read_document(sample("CII_example8.xml"))
    assert (ubl.format, cii.format) == ("ubl", "cii")
    assert ubl.events == cii.events


def test_a_credit_note_that_names_no_invoice_is_refused_naming_bt_25():
    path = sample("ubl-tc434-creditnote1.xml")
    with pytest.raises(ImportRejected) as caught:
        read_document(path)
    assert str(caught.value) == (
        f"{path}: BT-25 (preceding invoice reference): missing: relance applies a credit note "
        "to the invoice it refers to"
    )


@pytest.mark.parametrize(
    ("name", "what"),
    [("camt053_oca_test-camt053.xml", "an ISO 20022"), ("cfonb_classic.cfo", "a CFONB 120")],
)
def test_a_bank_statement_is_not_an_invoice(name, what):
    path = sample(name)
    with pytest.raises(ImportRejected) as caught:
        read_document(path)
    assert str(caught.value) == (
        f"{path}: file: {what} bank statement, not an invoice: `relance statement` reads it"
    )


def test_without_the_samples_a_run_skips_but_a_ci_run_fails(monkeypatch, tmp_path):
    import tests.samples as samples

    monkeypatch.setattr(samples, "SAMPLES", tmp_path / "absent")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        samples.sample("Facture_FR_EN16931.pdf")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        samples.sample("Facture_FR_EN16931.pdf")
