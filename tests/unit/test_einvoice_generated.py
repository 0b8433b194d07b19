"""Invoices written by independent libraries (drafthorse for CII, factur-x to embed it in a
PDF) and small UBL documents, read into events: the mapping of docs/import.md term by term,
and the rejections, each naming the file, the EN 16931 term and the reason."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from fpdf import FPDF

from adapters.importers.einvoice import ImportRejected, read_document
from handlers.events import CreditNoteIssued, InvoiceIssued, validate_event
from tests.einvoices import cii_invoice, factur_x


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def event_of(path: Path):
    document = read_document(path)
    (event,) = document.events
    return document, validate_event(dict(event))


def rejection(path: Path) -> str:
    with pytest.raises(ImportRejected) as caught:
        read_document(path)
    return str(caught.value).removeprefix(f"{path}: ")


@pytest.mark.parametrize("wrapped", [False, True], ids=["cii", "factur-x"])
def test_every_mapped_term_of_a_cii_invoice(tmp_path, wrapped):
    xml = cii_invoice()
    path = write(tmp_path, "f.pdf" if wrapped else "f.xml", factur_x(xml) if wrapped else xml)
    document, event = event_of(path)
    assert document.format == ("factur-x" if wrapped else "cii")
    assert isinstance(event, InvoiceIssued)
    assert event.event_id == "einvoice:siren:552100554:invoice.issued:F-2026-0042"
    assert event.occurred_at.isoformat() == "2026-09-15T12:00:00+02:00"
    invoice = event.invoice
    assert (invoice.number, invoice.currency, invoice.amount_due) == (
        "F-2026-0042",
        "EUR",
        Decimal("1200.00"),
    )
    assert (invoice.issue_date, invoice.due_date) == (date(2026, 9, 15), date(2026, 10, 15))
    assert invoice.delivered_on == date(2026, 9, 10)  # BT-72
    assert invoice.late_penalty_rate == Decimal("0.12")  # "12 % l'an" in the note
    assert invoice.debtor_id == event.debtor.id == "siren:732829320"
    assert (event.debtor.siren, event.debtor.email) == ("732829320", "compta@dupont.example")
    assert event.debtor.kind == "business"
    assert document.warnings == ()  # the L441-9 mentions are in the note
    assert document.seller.as_dict() == {
        "name": "Atelier Martin SARL",
        "siren": "552100554",
        "vat_id": "FR40552100554",
        "country": "FR",
    }


def test_a_missing_due_date_comes_from_the_payment_terms(tmp_path):
    path = write(tmp_path, "f.xml", cii_invoice(due=None, terms="Paiement à 45 jours fin de mois"))
    _, event = event_of(path)
    assert event.invoice.due_date == date(2026, 10, 31)  # 15 Sept + 45 days = 30 Oct, end of month


def test_a_missing_due_date_without_computable_terms_is_refused_naming_bt_9(tmp_path):
    path = write(tmp_path, "f.xml", cii_invoice(due=None, terms="Selon nos conditions générales"))
    assert rejection(path) == (
        "BT-9 (payment due date): missing, and the payment terms (BT-20) give no due date relance "
        "can compute: 'Selon nos conditions générales'"
    )


def test_an_invoice_without_the_french_mentions_is_imported_with_a_warning(tmp_path):
    path = write(tmp_path, "f.xml", cii_invoice(note="Merci de votre confiance"))
    document, event = event_of(path)
    assert event.invoice.late_penalty_rate is None
    assert len(document.warnings) == 1 and "C. com. L441-9" in document.warnings[0]
    assert "the late-payment penalty rate nor the 40 € recovery indemnity" in document.warnings[0]


def test_a_credit_note_becomes_a_credit_on_the_invoice_it_names(tmp_path):
    xml = cii_invoice(number="AV-7", type_code="381", amount="300.00", preceding="F-2026-0042", due=None)
    document, event = event_of(write(tmp_path, "a.xml", xml))
    assert isinstance(event, CreditNoteIssued)
    assert (event.invoice_number, event.credit_note_number, event.amount) == (
        "F-2026-0042",
        "AV-7",
        Decimal("300.00"),
    )
    assert event.event_id == "einvoice:siren:552100554:credit_note.issued:AV-7"
    assert document.type_code == "381"


def test_a_corrected_invoice_is_imported_with_a_warning_about_the_one_it_corrects(tmp_path):
    document, event = event_of(write(tmp_path, "c.xml", cii_invoice(type_code="384", preceding="F-1")))
    assert isinstance(event, InvoiceIssued)
    assert document.warnings == (
        "BT-3: corrected invoice (384) imported as an invoice of its own; the invoice it corrects (F-1) is "
        "left as it is",
    )


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"type_code": "751"}, "BT-3 (invoice type code): type code '751' is not imported"),
        ({"amount": "0.00"}, "BT-115 (amount due for payment): 0.00: nothing is due"),
        ({"amount": "12.005"}, "BT-115 (amount due for payment): 12.005 has more than 2 decimals"),
        ({"due": date(2026, 9, 1)}, "BT-9 (payment due date): 2026-09-01 is before the issue date (BT-2)"),
        ({"buyer_postcode": None}, "BT-53 (buyer post code): missing"),
        ({"type_code": "381", "due": None}, "BT-25 (preceding invoice reference): missing"),
        ({"type_code": "393"}, "BT-59 (payee name): missing: a factored invoice (393) names its factor"),
    ],
)
def test_rejections_name_the_term(tmp_path, changes, reason):
    assert rejection(write(tmp_path, "bad.xml", cii_invoice(**changes))).startswith(reason)


def test_without_a_siren_the_debtor_id_is_the_buyer_name(tmp_path):
    _, event = event_of(write(tmp_path, "f.xml", cii_invoice(buyer_siret=None)))
    assert event.invoice.debtor_id == "name:boulangerie-dupont" and event.debtor.siren is None


UBL = """<?xml version="1.0" encoding="UTF-8"?>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
 xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
 xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
 <cbc:ID>U-9</cbc:ID><cbc:IssueDate>2026-09-01</cbc:IssueDate>{due}
 <cbc:InvoiceTypeCode>{code}</cbc:InvoiceTypeCode>
 <cbc:Note>Indemnité forfaitaire pour frais de recouvrement : 40 euros</cbc:Note>
 <cbc:DocumentCurrencyCode>EUR</cbc:DocumentCurrencyCode>
 <cac:AccountingSupplierParty><cac:Party>
  <cac:PostalAddress>
   <cac:Country><cbc:IdentificationCode>FR</cbc:IdentificationCode></cac:Country></cac:PostalAddress>
  <cac:PartyTaxScheme><cbc:CompanyID>FR40552100554</cbc:CompanyID>
   <cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme></cac:PartyTaxScheme>
  <cac:PartyLegalEntity><cbc:RegistrationName>Atelier Martin</cbc:RegistrationName></cac:PartyLegalEntity>
 </cac:Party></cac:AccountingSupplierParty>
 <cac:AccountingCustomerParty><cac:Party>
  <cbc:EndpointID schemeID="EM">achats@client.example</cbc:EndpointID>
  <cac:PartyIdentification><cbc:ID>CLI-77</cbc:ID></cac:PartyIdentification>
  <cac:PostalAddress><cbc:StreetName>3 quai Sud</cbc:StreetName>
   <cbc:AdditionalStreetName>Bât. B</cbc:AdditionalStreetName>
   <cbc:CityName>Nantes</cbc:CityName><cbc:PostalZone>44000</cbc:PostalZone>
   <cac:Country><cbc:IdentificationCode>FR</cbc:IdentificationCode></cac:Country></cac:PostalAddress>
  <cac:PartyLegalEntity><cbc:RegistrationName>Client Ouest SAS</cbc:RegistrationName></cac:PartyLegalEntity>
 </cac:Party></cac:AccountingCustomerParty>
 <cac:Delivery><cbc:ActualDeliveryDate>2026-08-28</cbc:ActualDeliveryDate></cac:Delivery>
 <cac:PaymentTerms><cbc:Note>Net 30, pénalités de retard au taux de 10,5 %</cbc:Note></cac:PaymentTerms>
 <cac:LegalMonetaryTotal>
  <cbc:PayableAmount currencyID="EUR">{amount}</cbc:PayableAmount>
 </cac:LegalMonetaryTotal>
</Invoice>"""


def ubl(tmp_path: Path, *, due: str = "", code: str = "380", amount: str = "480.50") -> Path:
    return write(tmp_path, "u.xml", UBL.format(due=due, code=code, amount=amount).encode())


def test_a_ubl_invoice(tmp_path):
    document, event = event_of(ubl(tmp_path))
    assert document.format == "ubl"
    assert event.event_id == "einvoice:siren:552100554:invoice.issued:U-9"  # SIREN from the FR VAT id
    assert event.invoice.due_date == date(2026, 10, 1)  # "Net 30" from 1 September
    assert event.invoice.amount_due == Decimal("480.50")
    assert event.invoice.late_penalty_rate == Decimal("0.105")
    assert event.invoice.delivered_on == date(2026, 8, 28)
    assert event.invoice.debtor_id == "id:CLI-77"
    assert event.debtor.email == "achats@client.example"  # BT-49, scheme EM
    assert (event.debtor.address.line1, event.debtor.address.line2) == ("3 quai Sud", "Bât. B")
    assert document.warnings == ()


def test_a_ubl_due_date_wins_over_the_terms(tmp_path):
    _, event = event_of(ubl(tmp_path, due="<cbc:DueDate>2026-09-20</cbc:DueDate>"))
    assert event.invoice.due_date == date(2026, 9, 20)
    _, event = event_of(ubl(tmp_path, due="<cbc:DueDate>2026-09-21+02:00</cbc:DueDate>"))
    assert event.invoice.due_date == date(2026, 9, 21)  # the day written, whatever the offset
    bad = ubl(tmp_path, due="<cbc:DueDate>2026-13-01</cbc:DueDate>")
    assert rejection(bad) == "BT-9 (payment due date): '2026-13-01' is not a date YYYY-MM-DD"


def test_an_amount_in_another_currency_than_bt_5_is_refused(tmp_path):
    path = write(
        tmp_path, "u.xml", UBL.format(due="", code="380", amount="1").replace('"EUR"', '"USD"').encode()
    )
    assert rejection(path) == "BT-115 (amount due for payment): in USD, not in the invoice currency EUR"


def test_entities_and_doctypes_are_refused_before_anything_is_read(tmp_path):
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>'
        b'<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2">&b;</Invoice>'
    )
    assert rejection(write(tmp_path, "bomb.xml", bomb)) == (
        "file: not a PDF, and a document type declaration (DOCTYPE) is refused"
    )
    external = b'<?xml version="1.0"?><!DOCTYPE x SYSTEM "http://192.0.2.1/x.dtd"><x/>'
    assert "DOCTYPE" in rejection(write(tmp_path, "ext.xml", external))


def test_files_of_an_unknown_kind_are_refused_clearly(tmp_path):
    assert rejection(write(tmp_path, "n.txt", b"hello")).startswith(
        "file: not a PDF, and not well-formed XML"
    )
    other = write(tmp_path, "o.xml", b"<order xmlns='urn:example'/>")
    assert rejection(other).startswith("file: unknown kind of document {urn:example}order")
    pdf = FPDF()
    pdf.add_page()
    plain = write(tmp_path, "p.pdf", bytes(pdf.output()))
    assert rejection(plain) == "file: a PDF without an embedded Factur-X/ZUGFeRD XML invoice"
    assert rejection(write(tmp_path, "broken.pdf", b"%PDF-1.7 garbage")).startswith("file: unreadable PDF")
    assert rejection(tmp_path / "missing.xml") == "file: No such file or directory"
