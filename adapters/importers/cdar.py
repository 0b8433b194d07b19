"""The platforms' lifecycle status messages: UN/CEFACT CrossDomainAcknowledgementAndResponse
(CDAR, D22B) as profiled by the French external specifications ("CDV" messages), read into
``invoice.status_changed`` events (docs/import.md, "Lifecycle statuses").

Read by element name, as the French profile's business rules (BR-FR-CDV) name them:

- the message: ``rsm:ExchangedDocument/ram:ID`` (MDT-4) and ``ram:IssueDateTime`` (MDG-4),
  a ``udt:DateTimeString`` in format 204 (YYYYMMDDHHMMSS) or 102 (YYYYMMDD), French time;
- each invoice it reports on: ``rsm:AcknowledgementDocument/ram:ReferenceReferencedDocument``
  with ``ram:IssuerAssignedID`` (MDT-87, the invoice number), ``ram:ProcessConditionCode``
  (MDT-105, the status code), ``ram:SpecifiedDocumentStatus/ram:ReasonCode`` (MDT-113),
  the seller ``ram:IssuerTradeParty`` (``ram:GlobalID`` with scheme 0002: its SIREN, MDT-129)
  and, for a 212, the amounts cashed ``ram:SpecifiedDocumentStatus/
  ram:SpecifiedDocumentCharacteristic`` of type ``MEN`` (``ram:ValueAmount``, one per VAT rate).

Nothing else is read. The events are validated afterwards like any other (an unknown status
code is rejected there, naming ``status_code``).
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from lxml import etree

from adapters.importers.einvoice import CDAR, ImportedDocument, ImportRejected, Seller

_NS = {
    "rsm": CDAR,
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
}
_PARIS = ZoneInfo("Europe/Paris")
_REFERENCED = "rsm:AcknowledgementDocument/ram:ReferenceReferencedDocument"
_CASHED = (
    "ram:SpecifiedDocumentStatus/ram:SpecifiedDocumentCharacteristic[ram:TypeCode='MEN']/ram:ValueAmount"
)


def _text(node: etree._Element, path: str) -> str | None:
    found = node.xpath(path, namespaces=_NS)
    values = [(e.text or "").strip() for e in found if isinstance(e, etree._Element)]
    values = [v for v in values if v]
    return values[0] if values else None


def _issued_at(root: etree._Element, shown: str) -> datetime:
    element = root.find("rsm:ExchangedDocument/ram:IssueDateTime/udt:DateTimeString", _NS)
    if element is None or not (element.text or "").strip():
        raise ImportRejected(
            shown, "MDG-4", "the message's issue date and time (ram:IssueDateTime) is missing"
        )
    value, fmt = element.text.strip(), element.get("format", "204")
    patterns = {"204": (r"[0-9]{14}", "%Y%m%d%H%M%S"), "102": (r"[0-9]{8}", "%Y%m%d")}
    if fmt not in patterns or not re.fullmatch(patterns[fmt][0], value):
        raise ImportRejected(
            shown, "MDG-4", f"{value!r} (format {fmt}) is not a date and time in format 204 or 102"
        )
    try:
        return datetime.strptime(value, patterns[fmt][1]).replace(tzinfo=_PARIS)
    except ValueError:
        raise ImportRejected(shown, "MDG-4", f"{value!r} is not a calendar date and time") from None


def _seller(referenced: list[etree._Element]) -> Seller:
    """The seller of the invoices reported on (MDT-129): the first issuer stated."""
    for node in referenced:
        party = node.find("ram:IssuerTradeParty", _NS)
        if party is None:
            continue
        siren = _text(party, "ram:GlobalID[@schemeID='0002']")
        vat = _text(party, "ram:SpecifiedTaxRegistration/ram:ID[@schemeID='VA']")
        return Seller(_text(party, "ram:Name"), siren, vat, None)
    return Seller(None, None, None, None)


def _cashed(node: etree._Element, number: str, shown: str) -> str | None:
    """The sum of the amounts cashed (one per VAT rate), as a string decimal."""
    values = [(e.text or "").strip() for e in node.xpath(_CASHED, namespaces=_NS)]
    if not values:
        return None
    try:
        total = sum((Decimal(v) for v in values), Decimal("0"))
    except InvalidOperation:
        raise ImportRejected(
            shown, "MDT-215", f"invoice {number}: an amount cashed is not a number"
        ) from None
    return str(total.quantize(Decimal("0.01")))


def to_document(root: etree._Element, shown: str) -> ImportedDocument:
    """The ``invoice.status_changed`` events of one CDAR message, one per invoice reported on."""
    message_id = _text(root, "rsm:ExchangedDocument/ram:ID")
    if message_id is None:
        raise ImportRejected(shown, "MDT-4", "the message's identifier (ram:ID) is missing")
    at = _issued_at(root, shown)
    referenced = root.findall(_REFERENCED, _NS)
    if not referenced:
        raise ImportRejected(
            shown, "MDG-35", "the message reports on no invoice (ram:ReferenceReferencedDocument)"
        )
    seller = _seller(referenced)
    events = tuple(
        _event(node, index, message_id, seller, at, shown) for index, node in enumerate(referenced, 1)
    )
    type_code = _text(root, "rsm:AcknowledgementDocument/ram:TypeCode") or ""
    return ImportedDocument(shown, "cdar", type_code, message_id, seller, events)


def _event(
    node: etree._Element, index: int, message_id: str, seller: Seller, at: datetime, shown: str
) -> dict[str, Any]:
    number = _text(node, "ram:IssuerAssignedID")
    if number is None:
        raise ImportRejected(
            shown, "MDT-87", f"invoice {index} of the message has no number (ram:IssuerAssignedID)"
        )
    code = _text(node, "ram:ProcessConditionCode")
    if code is None:
        raise ImportRejected(shown, "MDT-105", f"invoice {number}: no status code (ram:ProcessConditionCode)")
    who = f"siren:{seller.siren}" if seller.siren else f"vat:{seller.vat_id}" if seller.vat_id else "unknown"
    event: dict[str, Any] = {
        "event_id": f"cdar:{who}:{message_id}:{index}"[:200],
        "type": "invoice.status_changed",
        "occurred_at": at.isoformat(),
        "invoice_number": number,
        "status_code": code,
        "at": at.isoformat(),
    }
    if (reason := _text(node, "ram:SpecifiedDocumentStatus/ram:ReasonCode")) is not None:
        event["reason_code"] = reason
    if code == "212" and (amount := _cashed(node, number, shown)) is not None:
        event["amount"] = amount
    return event
