"""`relance import` of the platforms' lifecycle status messages (CDAR D22B, French "CDV").

The messages here are built by ``cdar_message`` from the element names the French profile's
business rules (BR-FR-CDV, FNFE-MPE schematron 1.4.0) give: ``rsm:ExchangedDocument`` with
``ram:ID`` and ``ram:IssueDateTime``, then per invoice an
``rsm:AcknowledgementDocument/ram:ReferenceReferencedDocument`` with
``ram:IssuerAssignedID``, ``ram:ProcessConditionCode``, ``ram:IssuerTradeParty/ram:GlobalID``
(scheme 0002) and ``ram:SpecifiedDocumentStatus`` (``ram:ReasonCode``, the ``MEN`` amounts).
They are not messages captured from a platform.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.importers.einvoice import ImportRejected, read_bytes
from relance.cli import main
from tests.einvoices import cii_invoice

RSM = "urn:un:unece:uncefact:data:standard:CrossDomainAcknowledgementAndResponse:100"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"


def referenced(number: str, code: str, reason: str | None = None, cashed: tuple[str, ...] = ()) -> str:
    status = ""
    if reason or cashed:
        characteristics = "".join(
            "<ram:SpecifiedDocumentCharacteristic><ram:TypeCode>MEN</ram:TypeCode>"
            f"<ram:ValueAmount>{amount}</ram:ValueAmount><ram:ValuePercent>20.00</ram:ValuePercent>"
            "</ram:SpecifiedDocumentCharacteristic>"
            for amount in cashed
        )
        reason_code = f"<ram:ReasonCode>{reason}</ram:ReasonCode>" if reason else ""
        status = (
            "<ram:SpecifiedDocumentStatus><ram:SequenceNumeric>1</ram:SequenceNumeric>"
            f"{reason_code}{characteristics}</ram:SpecifiedDocumentStatus>"
        )
    return (
        "<ram:ReferenceReferencedDocument>"
        f"<ram:IssuerAssignedID>{number}</ram:IssuerAssignedID>"
        f"<ram:ProcessConditionCode>{code}</ram:ProcessConditionCode>"
        '<ram:FormattedIssueDateTime><ram:DateTimeString format="102">20260915</ram:DateTimeString>'
        "</ram:FormattedIssueDateTime>"
        '<ram:IssuerTradeParty><ram:GlobalID schemeID="0002">552100554</ram:GlobalID>'
        "<ram:Name>Atelier Martin SARL</ram:Name></ram:IssuerTradeParty>"
        f"{status}</ram:ReferenceReferencedDocument>"
    )


def cdar_message(message_id: str, issued: str, *documents: str) -> bytes:
    """A CDAR message issued at ``issued`` (format 204, YYYYMMDDHHMMSS) on ``documents``."""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<rsm:CrossDomainAcknowledgementAndResponse '
        f'xmlns:rsm="{RSM}" xmlns:ram="{RAM}" xmlns:udt="{UDT}">'
        "<rsm:ExchangedDocumentContext><ram:GuidelineSpecifiedDocumentContextParameter>"
        "<ram:ID>urn.cpro.gouv.fr:1p0:CDV:invoice</ram:ID>"
        "</ram:GuidelineSpecifiedDocumentContextParameter></rsm:ExchangedDocumentContext>"
        f"<rsm:ExchangedDocument><ram:ID>{message_id}</ram:ID>"
        f'<ram:IssueDateTime><udt:DateTimeString format="204">{issued}</udt:DateTimeString>'
        "</ram:IssueDateTime>"
        "<ram:SenderTradeParty><ram:RoleCode>WK</ram:RoleCode></ram:SenderTradeParty>"
        "</rsm:ExchangedDocument>"
        f"<rsm:AcknowledgementDocument><ram:TypeCode>23</ram:TypeCode>{''.join(documents)}"
        "</rsm:AcknowledgementDocument></rsm:CrossDomainAcknowledgementAndResponse>"
    ).encode()


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    for name in ("RELANCE_DATABASE_URL", "RELANCE_REDIS_URL", "RELANCE_SMTP_HOST"):
        monkeypatch.delenv(name, raising=False)
    return str(tmp_path / "var")


def test_a_cdar_message_becomes_one_status_event_per_invoice_it_reports_on():
    """212 cashed in two VAT-rate amounts, 833.33 + 166.67 = 1000.00; 210 with its reason."""
    message = cdar_message(
        "CDV-0001",
        "20261002143000",
        referenced("F-2026-0042", "212", cashed=("833.33", "166.67")),
        referenced("F-2026-0043", "210", reason="LIVR_INCOMP"),
    )
    document = read_bytes(message, "cdv.xml")
    assert (document.format, document.number, document.seller.siren) == ("cdar", "CDV-0001", "552100554")
    assert [e | {"event_id": e["event_id"][:20]} for e in document.events] == [
        {
            "event_id": "cdar:siren:552100554",
            "type": "invoice.status_changed",
            "occurred_at": "2026-10-02T14:30:00+02:00",
            "invoice_number": "F-2026-0042",
            "status_code": "212",
            "at": "2026-10-02T14:30:00+02:00",
            "amount": "1000.00",
        },
        {
            "event_id": "cdar:siren:552100554",
            "type": "invoice.status_changed",
            "occurred_at": "2026-10-02T14:30:00+02:00",
            "invoice_number": "F-2026-0043",
            "status_code": "210",
            "at": "2026-10-02T14:30:00+02:00",
            "reason_code": "LIVR_INCOMP",
        },
    ]
    assert document.events[0]["event_id"] == "cdar:siren:552100554:CDV-0001:1"


def test_a_cdar_message_without_its_date_is_refused_naming_the_term():
    message = cdar_message("CDV-0002", "2026-10-02", referenced("F-1", "205"))
    with pytest.raises(ImportRejected) as refused:
        read_bytes(message, "cdv.xml")
    assert (
        refused.value.reason == "MDG-4: '2026-10-02' (format 204) is not a date and time in format 204 or 102"
    )


def test_relance_import_applies_the_statuses_and_rejects_an_unknown_code_by_name(tmp_path, data_dir, capsys):
    """Given the CII invoice F-2026-0042 of 1200.00 imported, when a CDAR message reports it
    cashed for 1200.00 and a second reports a code 299 on it, then it is settled and the
    second is rejected naming status_code; importing the first again changes nothing."""
    invoice = tmp_path / "invoice.xml"
    invoice.write_bytes(cii_invoice())
    cashed, unknown = tmp_path / "cdv-1.xml", tmp_path / "cdv-2.xml"
    cashed.write_bytes(
        cdar_message("CDV-1", "20261002143000", referenced("F-2026-0042", "212", cashed=("1200.00",)))
    )
    unknown.write_bytes(cdar_message("CDV-2", "20261003090000", referenced("F-2026-0042", "299")))
    assert main(["import", str(invoice), "--data-dir", data_dir]) == 0
    capsys.readouterr()
    assert main(["import", str(cashed), str(unknown), "--data-dir", data_dir]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "accepted 1, duplicate 0, rejected 1"
    assert any("status_code: unknown status code '299'" in line for line in out)
    assert main(["status", "--json", "--data-dir", data_dir]) == 0
    assert json.loads(capsys.readouterr().out)["open_invoices"] == 0
    assert main(["import", str(cashed), "--data-dir", data_dir]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "accepted 0, duplicate 1, rejected 0"


def test_the_statuses_example_file_is_kept_as_the_docs_show(tmp_path):
    example = Path(__file__).resolve().parents[2] / "examples" / "statuses.jsonl"
    lines = [json.loads(line) for line in example.read_text(encoding="utf-8").splitlines()]
    assert {line["status_code"] for line in lines if line["type"] == "invoice.status_changed"} == {
        "200",
        "203",
        "206",
        "210",
        "211",
        "212",
        "213",
    }
