"""E-invoices (EN 16931) to accounting events: Factur-X / ZUGFeRD PDF, UBL 2.1, UN/CEFACT CII.

``read_document(path)`` detects the format, reads the EN 16931 terms both syntaxes carry
(``_ubl_terms``, ``_cii_terms``) and maps them, the same way for both
(``_to_events``), to the ``invoice.issued`` or ``credit_note.issued`` event of
docs/events.md. A file that cannot become an event raises ``ImportRejected`` naming the
file, the EN 16931 term and the reason. The mapping is documented in docs/import.md.
"""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from lxml import etree
from pydantic import EmailStr, TypeAdapter, ValidationError

from adapters.importers.payment_terms import due_date_from_terms, l441_missing, penalty_rate
from adapters.importers.xml import NotXml, local_name, namespace, parse_xml

# factur-x logs each extraction at level info; only its warnings are worth an operator's eye
logging.getLogger("factur-x").setLevel(logging.WARNING)

MAX_FILE_BYTES = 20 * 1024 * 1024  # far above any real invoice; a bigger file is refused unread

UBL_INVOICE = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
UBL_CREDIT_NOTE = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
CII = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
CDAR = "urn:un:unece:uncefact:data:standard:CrossDomainAcknowledgementAndResponse:100"
_NS = {
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
    "rsm": CII,
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
}

# BT-3 (UNTDID 1001) → the event it becomes. Every other code is refused.
INVOICE_CODES = {
    "380": "commercial invoice",
    "383": "debit note",
    "384": "corrected invoice",
    "386": "prepayment invoice",
    "389": "self-billed invoice",
    "393": "factored invoice",
}
CREDIT_NOTE_CODES = {"381": "credit note", "261": "self-billed credit note", "396": "factored credit note"}

TERMS = {
    "BT-1": "invoice number",
    "BT-2": "issue date",
    "BT-3": "invoice type code",
    "BT-5": "invoice currency code",
    "BT-9": "payment due date",
    "BT-25": "preceding invoice reference",
    "BT-44": "buyer name",
    "BT-50": "buyer address line 1",
    "BT-52": "buyer city",
    "BT-53": "buyer post code",
    "BT-55": "buyer country code",
    "BT-59": "payee name",
    "BT-72": "actual delivery date",
    "BT-115": "amount due for payment",
}
_STATEMENTS = "`relance statement` reads it"
# an event's occurred_at: noon in Paris keeps the issue date the same day in every
# European time zone (a credit note counts from the calendar date of its occurred_at)
_PARIS = ZoneInfo("Europe/Paris")
_EMAIL: TypeAdapter[str] = TypeAdapter(EmailStr)


class ImportRejected(ValueError):
    """A file that cannot become an event: ``term`` is the EN 16931 term at fault (or
    ``file`` for the file as a whole)."""

    def __init__(self, path: str, term: str, reason: str) -> None:
        label = f"{term} ({TERMS[term]})" if term in TERMS else term
        super().__init__(f"{path}: {label}: {reason}")
        self.path, self.term = path, term
        self.reason = f"{label}: {reason}"


@dataclass(frozen=True)
class Seller:
    """The seller of an invoice (BG-4), to match the document to its creditor."""

    name: str | None
    siren: str | None
    vat_id: str | None  # BT-31
    country: str | None  # BT-40
    # the postal address (BG-5) as lines: what a preview prints for the seller as creditor
    address: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, str]:
        """What the event keeps of the seller (not its address: an event imported before
        stays the same event)."""
        kept = {"name": self.name, "siren": self.siren, "vat_id": self.vat_id, "country": self.country}
        return {k: v for k, v in kept.items() if v is not None}


@dataclass(frozen=True)
class ImportedDocument:
    """What one e-invoice file became: its events (usually one) and the warnings met."""

    path: str
    format: Literal["factur-x", "ubl", "cii", "cdar"]
    type_code: str
    number: str
    seller: Seller
    events: tuple[dict[str, Any], ...]
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Party:
    name: str | None = None
    identifiers: tuple[tuple[str | None, str], ...] = ()  # BT-29/BT-46 (scheme, value)
    legal_id: tuple[str | None, str] | None = None  # BT-30/BT-47
    vat_id: str | None = None  # BT-31/BT-48
    endpoint: tuple[str | None, str] | None = None  # BT-34/BT-49
    contact_email: str | None = None  # BT-43/BT-58
    street: str | None = None
    street2: str | None = None
    city: str | None = None
    postal_code: str | None = None
    country: str | None = None


@dataclass(frozen=True)
class _Terms:
    """The EN 16931 terms relance reads, as written in the file (text, not checked yet)."""

    number: str | None
    issue_date: date | None
    type_code: str | None
    currency: str | None
    due_date: date | None
    payable: str | None
    payable_currency: str | None
    seller: _Party
    buyer: _Party
    notes: tuple[str, ...] = ()  # BT-22
    payment_terms: tuple[str, ...] = ()  # BT-20
    preceding: tuple[str, ...] = ()  # BT-25
    delivered_on: date | None = None  # BT-72
    payee_name: str | None = None  # BT-59


def read_document(path: str | Path) -> ImportedDocument:
    """The events of one e-invoice file, or ImportRejected saying why there are none."""
    shown = str(path)
    try:
        with open(path, "rb") as stream:
            data = stream.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ImportRejected(shown, "file", exc.strerror or str(exc)) from None
    if len(data) > MAX_FILE_BYTES:
        raise ImportRejected(shown, "file", f"larger than {MAX_FILE_BYTES} bytes")
    return read_bytes(data, shown)


def read_bytes(data: bytes, shown: str) -> ImportedDocument:
    """``read_document`` of the bytes of a file named ``shown``."""
    kind: Literal["factur-x", "ubl", "cii"]
    if data.lstrip()[:5] == b"%PDF-":
        data, kind = _embedded_xml(data, shown), "factur-x"
    else:
        kind = "ubl"  # until the root element says otherwise
    if re.match(rb"0[1-9][0-9]{5}", data):
        raise ImportRejected(shown, "file", f"a CFONB 120 bank statement, not an invoice: {_STATEMENTS}")
    try:
        root = parse_xml(data)
    except NotXml as exc:
        what = "the XML embedded in the PDF" if kind == "factur-x" else "not a PDF, and"
        raise ImportRejected(shown, "file", f"{what} {exc}") from None
    ns, name = namespace(root), local_name(root)
    if ns in (UBL_INVOICE, UBL_CREDIT_NOTE) and name in ("Invoice", "CreditNote"):
        terms = _ubl_terms(root, shown)
    elif ns == CII and name == "CrossIndustryInvoice":
        terms = _cii_terms(root, shown)
        kind = "factur-x" if kind == "factur-x" else "cii"
    elif kind == "ubl" and ns == CDAR and name == "CrossDomainAcknowledgementAndResponse":
        from adapters.importers.cdar import to_document  # built on this module's types

        return to_document(root, shown)
    elif ns.startswith("urn:iso:std:iso:20022:tech:xsd:camt."):
        raise ImportRejected(shown, "file", f"an ISO 20022 bank statement, not an invoice: {_STATEMENTS}")
    else:
        raise ImportRejected(
            shown,
            "file",
            f"unknown kind of document {{{ns}}}{name}: relance reads UBL 2.1 Invoice and CreditNote, "
            "UN/CEFACT CII CrossIndustryInvoice, Factur-X/ZUGFeRD PDF and the platforms' CDAR "
            "status messages",
        )
    return _to_document(terms, kind, shown)


def _embedded_xml(pdf: bytes, shown: str) -> bytes:
    import facturx

    try:
        # no XSD check here: relance checks the terms it uses itself and says which is wrong
        _, xml = facturx.get_xml_from_pdf(pdf, check_xsd=False)
    except Exception as exc:  # pypdf and factur-x raise many kinds on a damaged PDF
        raise ImportRejected(shown, "file", f"unreadable PDF: {exc}") from None
    if not xml:
        raise ImportRejected(shown, "file", "a PDF without an embedded Factur-X/ZUGFeRD XML invoice")
    return bytes(xml)


# --- reading the two syntaxes -------------------------------------------------------------


def _texts(node: etree._Element, path: str) -> list[str]:
    found = node.xpath(path, namespaces=_NS)
    values = [(" ".join(e.itertext()) if isinstance(e, etree._Element) else str(e)) for e in found]
    return [v.strip() for v in values if v and v.strip()]


def _text(node: etree._Element | None, path: str) -> str | None:
    if node is None:
        return None
    values = _texts(node, path)
    return values[0] if values else None


def _first(node: etree._Element | None, path: str) -> etree._Element | None:
    if node is None:
        return None
    found = node.xpath(path, namespaces=_NS)
    return found[0] if found else None


def _schemed(node: etree._Element | None, path: str) -> list[tuple[str | None, str]]:
    if node is None:
        return []
    found = node.xpath(path, namespaces=_NS)
    return [(e.get("schemeID"), (e.text or "").strip()) for e in found if (e.text or "").strip()]


def _iso_date(value: str | None, term: str, shown: str) -> date | None:
    """A UBL date: YYYY-MM-DD, possibly followed by a time-zone offset (xs:date allows
    one), which is dropped: the day written is the day meant."""
    if value is None:
        return None
    try:
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}(Z|[+-][0-9]{2}:[0-9]{2})?", value):
            raise ValueError(value)
        return date.fromisoformat(value[:10])
    except ValueError:
        raise ImportRejected(shown, term, f"{value!r} is not a date YYYY-MM-DD") from None


def _ubl_terms(root: etree._Element, shown: str) -> _Terms:
    credit_note = local_name(root) == "CreditNote"
    due = "cbc:DueDate" if not credit_note else "cac:PaymentMeans/cbc:PaymentDueDate"
    payable = _first(root, "cac:LegalMonetaryTotal/cbc:PayableAmount")
    return _Terms(
        number=_text(root, "cbc:ID"),
        issue_date=_iso_date(_text(root, "cbc:IssueDate"), "BT-2", shown),
        type_code=_text(root, "cbc:CreditNoteTypeCode" if credit_note else "cbc:InvoiceTypeCode"),
        currency=_text(root, "cbc:DocumentCurrencyCode"),
        due_date=_iso_date(_text(root, due), "BT-9", shown),
        payable=None if payable is None else (payable.text or "").strip(),
        payable_currency=None if payable is None else payable.get("currencyID"),
        seller=_ubl_party(_first(root, "cac:AccountingSupplierParty/cac:Party")),
        buyer=_ubl_party(_first(root, "cac:AccountingCustomerParty/cac:Party")),
        notes=tuple(_texts(root, "cbc:Note")),
        payment_terms=tuple(_texts(root, "cac:PaymentTerms/cbc:Note")),
        preceding=tuple(_texts(root, "cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID")),
        delivered_on=_iso_date(_text(root, "cac:Delivery/cbc:ActualDeliveryDate"), "BT-72", shown),
        payee_name=_text(root, "cac:PayeeParty/cac:PartyName/cbc:Name"),
    )


def _ubl_party(party: etree._Element | None) -> _Party:
    if party is None:
        return _Party()
    legal = _schemed(party, "cac:PartyLegalEntity/cbc:CompanyID")
    endpoint = _schemed(party, "cbc:EndpointID")
    address = _first(party, "cac:PostalAddress")
    lines = _texts(address, "cac:AddressLine/cbc:Line") if address is not None else []
    return _Party(
        name=_text(party, "cac:PartyLegalEntity/cbc:RegistrationName")
        or _text(party, "cac:PartyName/cbc:Name"),
        identifiers=tuple(_schemed(party, "cac:PartyIdentification/cbc:ID")),
        legal_id=legal[0] if legal else None,
        vat_id=_text(party, "cac:PartyTaxScheme[cac:TaxScheme/cbc:ID='VAT']/cbc:CompanyID"),
        endpoint=endpoint[0] if endpoint else None,
        contact_email=_text(party, "cac:Contact/cbc:ElectronicMail"),
        street=_text(address, "cbc:StreetName") or (lines[0] if lines else None),
        street2=_text(address, "cbc:AdditionalStreetName"),
        city=_text(address, "cbc:CityName"),
        postal_code=_text(address, "cbc:PostalZone"),
        country=_text(address, "cac:Country/cbc:IdentificationCode"),
    )


def _cii_date(node: etree._Element | None, path: str, term: str, shown: str) -> date | None:
    element = _first(node, path)
    if element is None:
        return None
    value, fmt = (element.text or "").strip(), element.get("format", "102")
    if fmt != "102" or not re.fullmatch(r"[0-9]{8}", value):
        raise ImportRejected(shown, term, f"{value!r} (format {fmt}) is not a date in format 102 (YYYYMMDD)")
    try:
        return date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        raise ImportRejected(shown, term, f"{value!r} is not a calendar date") from None


_CII_DELIVERY = "ram:ActualDeliverySupplyChainEvent/ram:OccurrenceDateTime/udt:DateTimeString"


def _cii_terms(root: etree._Element, shown: str) -> _Terms:
    document = _first(root, "rsm:ExchangedDocument")
    trade = _first(root, "rsm:SupplyChainTradeTransaction")
    agreement = _first(trade, "ram:ApplicableHeaderTradeAgreement")
    settlement = _first(trade, "ram:ApplicableHeaderTradeSettlement")
    delivery = _first(trade, "ram:ApplicableHeaderTradeDelivery")
    payable = _first(settlement, "ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:DuePayableAmount")
    return _Terms(
        number=_text(document, "ram:ID"),
        issue_date=_cii_date(document, "ram:IssueDateTime/udt:DateTimeString", "BT-2", shown),
        type_code=_text(document, "ram:TypeCode"),
        currency=_text(settlement, "ram:InvoiceCurrencyCode"),
        due_date=_cii_date(
            settlement, "ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime/udt:DateTimeString", "BT-9", shown
        ),
        payable=None if payable is None else (payable.text or "").strip(),
        payable_currency=None if payable is None else payable.get("currencyID"),
        seller=_cii_party(_first(agreement, "ram:SellerTradeParty")),
        buyer=_cii_party(_first(agreement, "ram:BuyerTradeParty")),
        notes=tuple(_texts(document, "ram:IncludedNote/ram:Content")) if document is not None else (),
        payment_terms=tuple(_texts(settlement, "ram:SpecifiedTradePaymentTerms/ram:Description"))
        if settlement is not None
        else (),
        preceding=tuple(_texts(settlement, "ram:InvoiceReferencedDocument/ram:IssuerAssignedID"))
        if settlement is not None
        else (),
        delivered_on=_cii_date(delivery, _CII_DELIVERY, "BT-72", shown),
        payee_name=_text(settlement, "ram:PayeeTradeParty/ram:Name"),
    )


def _cii_party(party: etree._Element | None) -> _Party:
    if party is None:
        return _Party()
    legal = _schemed(party, "ram:SpecifiedLegalOrganization/ram:ID")
    endpoint = _schemed(party, "ram:URIUniversalCommunication/ram:URIID")
    address = _first(party, "ram:PostalTradeAddress")
    return _Party(
        name=_text(party, "ram:Name"),
        identifiers=tuple(_schemed(party, "ram:ID") + _schemed(party, "ram:GlobalID")),
        legal_id=legal[0] if legal else None,
        vat_id=_text(party, "ram:SpecifiedTaxRegistration/ram:ID[@schemeID='VA']"),
        endpoint=endpoint[0] if endpoint else None,
        contact_email=_text(party, "ram:DefinedTradeContact/ram:EmailURIUniversalCommunication/ram:URIID"),
        street=_text(address, "ram:LineOne"),
        street2=_text(address, "ram:LineTwo"),
        city=_text(address, "ram:CityName"),
        postal_code=_text(address, "ram:PostcodeCode"),
        country=_text(address, "ram:CountryID"),
    )


# --- the mapping, the same for both syntaxes ---------------------------------------------


def siren_of(party: _Party) -> str | None:
    """The SIREN of a party: its legal registration (BT-30/BT-47) or an identifier
    (BT-29/BT-46) in ICD scheme 0002 (SIRENE: a SIREN, or a SIRET whose first 9 digits are
    the SIREN), else the SIREN inside a French VAT number (FR + 2-character key + SIREN)."""
    candidates = ([party.legal_id] if party.legal_id else []) + list(party.identifiers)
    for scheme, value in candidates:
        digits = value.replace(" ", "")
        if scheme == "0002" and re.fullmatch(r"[0-9]{9}|[0-9]{14}", digits):
            return digits[:9]
    vat = (party.vat_id or "").replace(" ", "")
    if re.fullmatch(r"FR[0-9A-Z]{2}[0-9]{9}", vat):
        return vat[4:]
    return None


def _normalised_name(name: str) -> str:
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-")


def debtor_id_of(buyer: _Party) -> str | None:
    """The stable debtor id of a buyer (docs/import.md#the-debtor-id): ``siren:<SIREN>``,
    else ``id:<BT-46>`` (``id:<scheme>:<BT-46>`` with a scheme), else ``vat:<BT-48>``,
    else ``name:<BT-44 lower-case, ASCII letters and digits joined by '-'>``."""
    if (siren := siren_of(buyer)) is not None:
        return f"siren:{siren}"
    for scheme, value in buyer.identifiers:
        return f"id:{scheme}:{value}" if scheme else f"id:{value}"
    if buyer.vat_id:
        return f"vat:{buyer.vat_id.replace(' ', '')}"
    if buyer.name and (name := _normalised_name(buyer.name)):
        return f"name:{name}"[:100]
    return None


def _seller_key(seller: _Party) -> str:
    if (siren := siren_of(seller)) is not None:
        return f"siren:{siren}"
    if seller.vat_id:
        return f"vat:{seller.vat_id.replace(' ', '')}"
    if seller.legal_id:
        return f"id:{seller.legal_id[1]}"
    return f"name:{_normalised_name(seller.name or '')}"


def event_id_of(seller: _Party, event_type: str, number: str) -> str:
    """Stable over re-imports of the same document: seller, event type and number."""
    event_id = f"einvoice:{_seller_key(seller)}:{event_type}:{number}"
    if len(event_id) <= 200:
        return event_id
    return "einvoice:sha256:" + hashlib.sha256(event_id.encode("utf-8")).hexdigest()


def _amount(terms: _Terms, shown: str) -> str:
    text, currency = terms.payable, terms.payable_currency
    if text is None:
        raise ImportRejected(shown, "BT-115", "missing")
    if not re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", text):
        raise ImportRejected(shown, "BT-115", f"{text!r} is not an amount")
    amount = Decimal(text)
    if currency is not None and currency != terms.currency:
        raise ImportRejected(shown, "BT-115", f"in {currency}, not in the invoice currency {terms.currency}")
    if amount <= 0:
        raise ImportRejected(shown, "BT-115", f"{text}: nothing is due (relance chases amounts above 0)")
    try:
        cents = amount.quantize(Decimal("0.01"))
    except InvalidOperation:
        raise ImportRejected(shown, "BT-115", f"{text} is too large") from None
    if cents != amount:
        raise ImportRejected(shown, "BT-115", f"{text} has more than 2 decimals")
    return str(cents)


def _required(value: str | date | None, term: str, shown: str, what: str = "missing") -> Any:
    if value is None or value == "":
        raise ImportRejected(shown, term, what)
    return value


def _address(buyer: _Party, shown: str) -> dict[str, str]:
    address = {
        "line1": _required(buyer.street, "BT-50", shown, "missing: a letter needs the buyer's street"),
        "postal_code": _required(buyer.postal_code, "BT-53", shown),
        "city": _required(buyer.city, "BT-52", shown),
        "country": _required(buyer.country, "BT-55", shown),
    }
    if buyer.street2:
        address["line2"] = buyer.street2
    return address


def _address_lines(party: _Party) -> tuple[str, ...]:
    """A party's postal address as printed lines: street, second line, post code and city
    (last: the letters take their place from it)."""
    town = " ".join(v for v in (party.postal_code, party.city) if v)
    return tuple(v for v in (party.street, party.street2, town) if v)


def _email(buyer: _Party, warnings: list[str]) -> str | None:
    """The buyer's e-mail: its electronic address (BT-49) when its scheme is EM, else its
    contact e-mail (BT-58). An address that is not valid is left out with a warning: the
    debtor is then written to by post rather than the invoice being refused."""
    scheme, value = buyer.endpoint or (None, None)
    candidate = value if scheme == "EM" else buyer.contact_email
    if not candidate:
        return None
    try:
        _EMAIL.validate_python(candidate)
    except ValidationError:
        warnings.append(f"BT-49/BT-58: {candidate!r} is not a valid e-mail address; left out")
        return None
    return candidate


def _to_document(terms: _Terms, kind: Literal["factur-x", "ubl", "cii"], shown: str) -> ImportedDocument:
    number = _required(terms.number, "BT-1", shown)
    issue_date = _required(terms.issue_date, "BT-2", shown)
    code = _required(terms.type_code, "BT-3", shown)
    if code not in INVOICE_CODES and code not in CREDIT_NOTE_CODES:
        known = ", ".join(sorted(INVOICE_CODES | CREDIT_NOTE_CODES))
        raise ImportRejected(shown, "BT-3", f"type code {code!r} is not imported (relance imports {known})")
    currency = _required(terms.currency, "BT-5", shown)
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise ImportRejected(shown, "BT-5", f"{currency!r} is not an ISO 4217 code")
    amount = _amount(terms, shown)
    party = terms.seller
    seller = Seller(party.name, siren_of(party), party.vat_id, party.country, _address_lines(party))
    occurred_at = datetime.combine(issue_date, time(12), tzinfo=_PARIS).isoformat()
    warnings: list[str] = []
    if code in CREDIT_NOTE_CODES:
        event = _credit_note(terms, number, amount, shown)
    else:
        event = _invoice(terms, number, code, issue_date, currency, amount, shown, warnings)
    event_type = event["type"]
    event = {"event_id": event_id_of(terms.seller, event_type, number), "occurred_at": occurred_at, **event}
    # kept in the stored raw event (docs/events.md: fields the contract does not define are
    # kept): the seller to match to the creditor, and the warnings. Not the syntax: the same
    # invoice sent once in UBL and once in CII is one event, a duplicate the second time
    event["source_document"] = {
        "type_code": code,
        "seller": seller.as_dict(),
        **({"warnings": warnings} if warnings else {}),
    }
    return ImportedDocument(shown, kind, code, number, seller, (event,), tuple(warnings))


def _credit_note(terms: _Terms, number: str, amount: str, shown: str) -> dict[str, Any]:
    references = list(dict.fromkeys(terms.preceding))
    if not references:
        raise ImportRejected(
            shown, "BT-25", "missing: relance applies a credit note to the invoice it refers to"
        )
    if len(references) > 1:
        raise ImportRejected(
            shown,
            "BT-25",
            f"the credit note refers to {len(references)} invoices ({', '.join(references)}); "
            "relance applies a credit note to one invoice",
        )
    return {
        "type": "credit_note.issued",
        "invoice_number": references[0],
        "credit_note_number": number,
        "amount": amount,
    }


def _invoice(
    terms: _Terms,
    number: str,
    code: str,
    issue_date: date,
    currency: str,
    amount: str,
    shown: str,
    warnings: list[str],
) -> dict[str, Any]:
    texts = [*terms.notes, *terms.payment_terms]
    due_date = terms.due_date or due_date_from_terms(issue_date, terms.payment_terms)
    if due_date is None:
        raise ImportRejected(
            shown,
            "BT-9",
            "missing, and the payment terms (BT-20) give no due date relance can compute"
            + (f": {' / '.join(terms.payment_terms)!r}" if terms.payment_terms else ""),
        )
    if due_date < issue_date:
        raise ImportRejected(shown, "BT-9", f"{due_date} is before the issue date (BT-2) {issue_date}")
    buyer = terms.buyer
    name = _required(buyer.name, "BT-44", shown)
    debtor_id = debtor_id_of(buyer)
    if debtor_id is None:
        raise ImportRejected(shown, "BT-44", "the buyer has no identifier and no name to derive an id from")
    invoice: dict[str, Any] = {
        "number": number,
        "debtor_id": debtor_id,
        "issue_date": issue_date.isoformat(),
        "due_date": due_date.isoformat(),
        "currency": currency,
        "amount_due": amount,
    }
    if (rate := penalty_rate(texts)) is not None:
        invoice["late_penalty_rate"] = str(rate)
    if terms.delivered_on is not None:
        invoice["delivered_on"] = terms.delivered_on.isoformat()
    if code == "393":  # the factor collects in its own name: it is the payee (BG-10)
        invoice["factored_by"] = _required(
            terms.payee_name, "BT-59", shown, "missing: a factored invoice (393) names its factor as payee"
        )
    if code == "384":
        corrected = ", ".join(terms.preceding) or "not given (BT-25)"
        warnings.append(
            f"BT-3: corrected invoice (384) imported as an invoice of its own; the invoice it corrects "
            f"({corrected}) is left as it is"
        )
    if (terms.seller.country or "FR") == "FR" and (missing := l441_missing(texts)):
        warnings.append(
            "BT-20/BT-22: the invoice does not state "
            + " nor ".join(missing)
            + " (mentions required by C. com. L441-9; the claims themselves are due under L441-10)"
        )
    debtor: dict[str, Any] = {
        "id": debtor_id,
        "name": name,
        "kind": "business",
        "address": _address(buyer, shown),
    }
    if (siren := siren_of(buyer)) is not None:
        debtor["siren"] = siren
    if (email := _email(buyer, warnings)) is not None:
        debtor["email"] = email
    return {"type": "invoice.issued", "invoice": invoice, "debtor": debtor}
