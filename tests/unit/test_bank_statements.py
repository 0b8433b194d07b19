"""camt.053 and CFONB 120 statements read into ``StatementEntry`` values: the published
samples (tests/samples.py) with the figures SOURCES.md states, and statements written here
for each camt.053 version and for the CFONB amount encoding."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from adapters.importers.bank import StatementRejected, cfonb_amount, read_statement
from tests.samples import sample


def test_the_dutch_camt_053_001_02_sample():
    entries = read_statement(sample("camt053_oca_test-camt053.xml"))
    assert [(e.amount, e.credit, e.is_return) for e in entries] == [
        (Decimal("754.25"), False, False),
        (Decimal("564.05"), False, True),  # a returned direct-debit batch, one entry per transaction
        (Decimal("100.00"), False, True),
        (Decimal("1405.31"), True, False),
    ]
    insurance, returned, _, credit = entries
    assert insurance.remittance == ("Insurance policy 857239PERIOD 01.01.2014 - 31.12.2014",)
    assert insurance.counterparty == "INSURANCE COMPANY TESTX"  # the payee of a debit
    assert returned.return_reason == "AC06" and returned.remittance == ("Direct Debit S14 0410",)
    assert credit.counterparty == "3rd party Media" and credit.end_to_end_id == "115"
    assert credit.remittance == () and credit.structured_references == ()
    assert (credit.booking_date, credit.value_date, credit.currency) == (
        date(2014, 1, 5),
        date(2014, 1, 5),
        "EUR",
    )
    assert len({e.reference for e in entries}) == 4


def test_the_swiss_camt_053_001_04_batch_gives_one_entry_per_transaction():
    entries = read_statement(sample("camt053_oca_test-camt053-txdtls.xml"))
    assert [(e.amount, e.currency, e.structured_references) for e in entries] == [
        (Decimal("2187.00"), "CHF", ("302388292000011111111111111",)),
        (Decimal("1296.00"), "CHF", ("302388292000022222222222222",)),
    ]
    assert {e.counterparty for e in entries} == {"Banque Cantonale Vaudoise"}
    assert {(e.booking_date, e.value_date) for e in entries} == {(date(2017, 3, 22), date(2017, 3, 23))}
    assert all(e.credit and not e.is_return for e in entries)


def test_the_cfonb_120_sample():
    entries = read_statement(sample("cfonb_classic.cfo"))
    assert len(entries) == 13
    credits = [e for e in entries if e.credit]
    assert [e.amount for e in credits] == [
        Decimal(a)
        for a in (
            "1040.17",
            "1321.00",
            "4772.91",
            "2341.12",
            "218.80",
            "510.80",
            "520.78",
            "1552.23",
            "5690.76",
        )
    ]
    assert [e.amount for e in entries if not e.credit] == [
        Decimal(a) for a in ("19.99", "19.99", "617.14", "3037.55")
    ]
    first = credits[0]
    assert first.remittance == ("facture F230875",)
    assert (first.counterparty, first.label) == ("MA JOLIE BOUTIQUE", "VIR INST MA JOLIE BOUTIQUE")
    assert (first.booking_date, first.value_date, first.currency) == (
        date(2024, 1, 13),
        date(2024, 1, 13),
        "EUR",
    )
    assert credits[1].remittance == ("F230866 F230765 F238765",)  # LIB and the same LCC kept once
    assert credits[1].end_to_end_id == "0018937"  # RCN
    orange = entries[11]
    assert orange.counterparty == "Orange"  # NBE: the payee of a debit
    assert orange.remittance == ("FIBENT - FR - Facture: 76662391 - Compte Fact: 30008765 - Ident: 00003263",)
    assert not any(e.is_return for e in entries)
    # the opening balance, the movements and the closing balance add up (SOURCES.md)
    net = sum((e.amount if e.credit else -e.amount for e in entries), Decimal(0))
    assert Decimal("1017311.89") + net == Decimal("1031585.79")


@pytest.mark.parametrize(
    ("field", "decimals", "amount"),
    [
        ("0000000010401G", 2, Decimal("1040.17")),
        ("0000000013210{", 2, Decimal("1321.00")),
        ("0000000000199R", 2, Decimal("-19.99")),
        ("0000000000000}", 2, Decimal("0")),
        ("0000000000012J", 0, Decimal("-121")),
        ("0000000000012A", 3, Decimal("0.121")),
    ],
)
def test_cfonb_amounts(field, decimals, amount):
    assert cfonb_amount(field, decimals) == amount


def _cfonb(*records: str) -> bytes:
    return "".join(r.ljust(120) + "\r\n" for r in records).encode("latin-1")


def _movement(amount: str, reject: str = "  ") -> str:
    return (
        f"0430003000501234EUR2 01234567890B1130124{reject}130124{'PRLV SEPA CLIENT':<31}  0000000  {amount}"
    )


def test_a_cfonb_reject_code_marks_a_return(tmp_path):
    path = tmp_path / "s.cfo"
    path.write_bytes(
        _cfonb(
            _movement("0000000005000{", "AM"),
            f"{'0530003000501234EUR2 01234567890B1130124':<45}LCSRF18539007547034",
        )
    )
    (entry,) = read_statement(path)
    assert (entry.amount, entry.credit, entry.is_return, entry.return_reason) == (
        Decimal("500.00"),
        True,
        True,
        "AM",
    )
    assert entry.structured_references == ("RF18539007547034",)


def test_a_cfonb_file_without_line_breaks_is_read(tmp_path):
    path = tmp_path / "s.cfo"
    path.write_bytes(_cfonb(_movement("0000000005000{")).replace(b"\r\n", b""))
    assert [e.amount for e in read_statement(path)] == [Decimal("500.00")]


@pytest.mark.parametrize(
    ("records", "reason"),
    [
        ([_movement("00000000050001")], "record 1: '00000000050001' is not a CFONB amount"),
        (["0930003"], "record 1: unknown record code '09'"),
        (
            [f"{'0530003000501234EUR2 01234567890B1130124':<45}LIBx"],
            "record 1: a complement (05) before any movement",
        ),
        (["0430003" + " " * 114], "record 1: 121 characters, not 120"),
    ],
)
def test_cfonb_rejections_name_the_record(tmp_path, records, reason):
    path = tmp_path / "bad.cfo"
    path.write_bytes(_cfonb(*records) if len(records[0]) <= 120 else (records[0] + "\n").encode())
    with pytest.raises(StatementRejected) as caught:
        read_statement(path)
    assert str(caught.value).startswith(f"{path}: {reason}")


CAMT = """<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.{version}"><BkToCstmrStmt>
 <GrpHdr><MsgId>M1</MsgId><CreDtTm>2026-10-02T08:00:00+02:00</CreDtTm></GrpHdr>
 <Stmt><Id>S-1</Id>
  <Ntry><NtryRef>E-1</NtryRef><Amt Ccy="EUR">1200.00</Amt><CdtDbtInd>CRDT</CdtDbtInd>{status}
   <BookgDt><Dt>2026-10-01</Dt></BookgDt><ValDt><DtTm>2026-10-01T10:00:00+02:00</DtTm></ValDt>
   <NtryDtls><TxDtls><Refs><EndToEndId>E2E-9</EndToEndId></Refs>
    <RltdPties><Dbtr>{debtor}</Dbtr></RltdPties>
    <RmtInf><Ustrd>Facture F-2026-0042</Ustrd>
     <Strd><CdtrRefInf><Ref>RF18539007547034</Ref></CdtrRefInf></Strd></RmtInf>
   </TxDtls></NtryDtls></Ntry>
  <Ntry><Amt Ccy="EUR">50.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>PDNG</Sts></Ntry>
 </Stmt></BkToCstmrStmt></Document>"""


@pytest.mark.parametrize("version", ["02", "03", "04", "05", "06", "07", "08"])
def test_every_camt_053_version_from_001_02_to_001_08(tmp_path, version):
    # from 001.08 on, the status is a code and the party sits in <Pty>
    status = "<Sts><Cd>BOOK</Cd></Sts>" if version == "08" else "<Sts>BOOK</Sts>"
    debtor = "<Pty><Nm>Boulangerie Dupont</Nm></Pty>" if version == "08" else "<Nm>Boulangerie Dupont</Nm>"
    path = tmp_path / "s.xml"
    path.write_text(CAMT.format(version=version, status=status, debtor=debtor), encoding="utf-8")
    (entry,) = read_statement(path)  # the pending entry is not money yet
    assert entry.reference == "S-1/E-1" and entry.amount == Decimal("1200.00") and entry.credit
    assert (entry.booking_date, entry.value_date) == (date(2026, 10, 1), date(2026, 10, 1))
    assert entry.remittance == ("Facture F-2026-0042",)
    assert entry.structured_references == ("RF18539007547034",)
    assert (entry.counterparty, entry.end_to_end_id) == ("Boulangerie Dupont", "E2E-9")


def test_other_files_are_refused(tmp_path):
    path = tmp_path / "s.xml"
    path.write_text(CAMT.format(version="09", status="", debtor=""), encoding="utf-8")
    with pytest.raises(StatementRejected, match=r"Document: not a camt\.053\.001\.02–08 statement"):
        read_statement(path)
    path.write_text("hello", encoding="utf-8")
    with pytest.raises(StatementRejected, match=r"neither a camt\.053 XML statement nor a CFONB 120 file"):
        read_statement(path)


def test_a_missing_file(tmp_path: Path):
    with pytest.raises(StatementRejected, match="No such file"):
        read_statement(tmp_path / "none.xml")


def test_the_cfonb_sample_matched_to_open_invoices():
    from handlers.matching import OpenInvoice, match_entries

    entries = read_statement(sample("cfonb_classic.cfo"))
    invoices = [
        OpenInvoice("F230875", "siren:787878784", "Ma jolie boutique", Decimal("1040.17"), "EUR"),
        OpenInvoice("F235678", "id:ECO", "Econymo Software SARL", Decimal("3000.00"), "EUR"),
        OpenInvoice("P-1", "id:PRINT", "Print SARL", Decimal("1000.00"), "EUR"),
        OpenInvoice("P-2", "id:PRINT", "Print SARL", Decimal("552.23"), "EUR"),
    ]
    results = {r.entry.amount: r for r in match_entries(entries, invoices)}
    assert len(results) == 12 and sum(1 for r in match_entries(entries, invoices)) == 13
    boutique, econymo, printer = (
        results[Decimal("1040.17")],
        results[Decimal("2341.12")],
        results[Decimal("1552.23")],
    )
    assert (boutique.status, boutique.rule, [a.invoice_number for a in boutique.allocations]) == (
        "matched",
        "reference",
        ["F230875"],
    )
    assert econymo.status == "matched" and econymo.allocations[0].amount == Decimal("2341.12")  # in part
    assert (printer.status, printer.rule) == ("matched", "sum")  # no reference: PRINT SARL, 1000 + 552.23
    assert results[Decimal("4772.91")].status == "unmatched"
