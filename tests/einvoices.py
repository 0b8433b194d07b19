"""E-invoices written by independent libraries: drafthorse for the CII XML, factur-x to
embed it in a PDF (made with fpdf2)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import facturx
from drafthorse.models.accounting import ApplicableTradeTax
from drafthorse.models.document import Document
from drafthorse.models.note import IncludedNote
from drafthorse.models.party import TaxRegistration
from drafthorse.models.payment import PaymentTerms
from drafthorse.models.tradelines import LineItem
from fpdf import FPDF

MENTIONS = "Pénalités de retard : 12 % l'an. Indemnité forfaitaire pour frais de recouvrement : 40 €."


def cii_invoice(
    *,
    number: str = "F-2026-0042",
    type_code: str = "380",
    due: date | None = date(2026, 10, 15),
    terms: str | None = None,
    note: str | None = MENTIONS,
    amount: str = "1200.00",
    delivered: date | None = date(2026, 9, 10),
    preceding: str | None = None,
    buyer_siret: str | None = "73282932000074",
    buyer_postcode: str | None = "69007",
) -> bytes:
    """A CII invoice of 1000.00 + 20 % VAT from a French seller to a French buyer."""
    doc = Document()
    doc.context.guideline_parameter.id = "urn:cen.eu:en16931:2017"
    doc.header.id = number
    doc.header.type_code = type_code
    doc.header.issue_date_time = date(2026, 9, 15)
    if note is not None:
        included = IncludedNote()
        included.content = note
        doc.header.notes.add(included)
    seller = doc.trade.agreement.seller
    seller.name = "Atelier Martin SARL"
    seller.legal_organization.id = ("0002", "552100554")
    seller.address.line_one, seller.address.postcode = "1 rue du Bac", "75007"
    seller.address.city_name, seller.address.country_id = "Paris", "FR"
    seller.tax_registrations.add(TaxRegistration(id=("VA", "FR40552100554")))
    buyer = doc.trade.agreement.buyer
    buyer.name = "Boulangerie Dupont"
    if buyer_siret:
        buyer.legal_organization.id = ("0002", buyer_siret)
    buyer.address.line_one, buyer.address.city_name, buyer.address.country_id = (
        "12 rue des Forges",
        "Lyon",
        "FR",
    )
    if buyer_postcode:
        buyer.address.postcode = buyer_postcode
    buyer.electronic_address.uri_ID = ("EM", "compta@dupont.example")
    if delivered is not None:
        doc.trade.delivery.event.occurrence = delivered
    settlement = doc.trade.settlement
    settlement.currency_code = "EUR"
    settlement.payment_means.type_code = "30"
    if due is not None or terms is not None:
        payment_terms = PaymentTerms()
        payment_terms.description = terms or "Virement"
        if due is not None:
            payment_terms.due = due
        settlement.terms.add(payment_terms)
    if preceding is not None:
        settlement.invoice_referenced_document.issuer_assigned_id = preceding
    line = LineItem()
    line.document.line_id = "1"
    line.product.name = "Pain de campagne"
    line.agreement.net.amount = Decimal("1000.00")
    line.delivery.billed_quantity = (Decimal("1"), "C62")
    line.settlement.trade_tax.type_code, line.settlement.trade_tax.category_code = "VAT", "S"
    line.settlement.trade_tax.rate_applicable_percent = Decimal("20")
    line.settlement.monetary_summation.total_amount = Decimal("1000.00")
    doc.trade.items.add(line)
    tax = ApplicableTradeTax()
    tax.calculated_amount, tax.basis_amount = Decimal("200.00"), Decimal("1000.00")
    tax.type_code, tax.category_code, tax.rate_applicable_percent = "VAT", "S", Decimal("20")
    settlement.trade_tax.add(tax)
    totals = settlement.monetary_summation
    totals.line_total, totals.tax_basis_total = Decimal("1000.00"), Decimal("1000.00")
    totals.tax_total = (Decimal("200.00"), "EUR")
    totals.grand_total, totals.due_amount = Decimal("1200.00"), Decimal(amount)
    return doc.serialize(schema=None)


def factur_x(xml: bytes) -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.cell(text="Facture")
    return facturx.generate_from_binary(bytes(pdf.output()), xml, check_xsd=False, flavor="factur-x")
