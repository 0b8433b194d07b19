"""`relance import` of bank statements on SQLite and PostgreSQL: matched entries become
`payment.received` events, the others are kept for `relance payments`, a returned direct
debit becomes `payment.reversed`, and a statement imported again changes nothing."""

from __future__ import annotations

import io
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from adapters.orm import BankEntryRow, EvidenceRecord, InboxEvent, InvoiceRow, PaymentRow
from adapters.store import transaction
from intake.importing import import_files
from relance.bank_payments import MatchRefused, match, retry, waiting_lines
from tests.support import DEBTOR, ingest, invoice_issued, make_test_app, payment

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 10, 5, 9, 0, tzinfo=PARIS)


@pytest.fixture
def app(database_url, tmp_path):
    application = make_test_app(database_url, tmp_path, NOW)
    yield application
    application.dispose()


def camt(version: str, *entries: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.{version}"><BkToCstmrStmt>'
        "<GrpHdr><MsgId>M1</MsgId><CreDtTm>2026-10-02T08:00:00+02:00</CreDtTm></GrpHdr>"
        f"<Stmt><Id>STMT-2026-10-02</Id>{''.join(entries)}</Stmt></BkToCstmrStmt></Document>"
    )


def entry(
    ref: str,
    amount: str,
    *,
    credit: bool = True,
    payer: str = "ACME Industrie SAS",
    text: str = "",
    e2e: str = "NOTPROVIDED",
    reversal: bool = False,
    reason: str = "",
) -> str:
    role = "Dbtr" if credit else "Cdtr"
    party = f"<RltdPties><{role}><Nm>{payer}</Nm></{role}></RltdPties>"
    returned = f"<RtrInf><Rsn><Cd>{reason}</Cd></Rsn></RtrInf>" if reason else ""
    return (
        f'<Ntry><NtryRef>{ref}</NtryRef><Amt Ccy="EUR">{amount}</Amt>'
        f"<CdtDbtInd>{'CRDT' if credit else 'DBIT'}</CdtDbtInd>"
        f"{'<RvslInd>true</RvslInd>' if reversal else ''}<Sts>BOOK</Sts>"
        "<BookgDt><Dt>2026-10-02</Dt></BookgDt><ValDt><Dt>2026-10-01</Dt></ValDt>"
        f"<NtryDtls><TxDtls><Refs><EndToEndId>{e2e}</EndToEndId></Refs>{party}"
        f"<RmtInf><Ustrd>{text}</Ustrd></RmtInf>{returned}</TxDtls></NtryDtls></Ntry>"
    )


def open_balance(app, number: str) -> tuple[str, Decimal]:
    with transaction(app.sessions) as session:
        row = session.scalars(select(InvoiceRow).where(InvoiceRow.number == number)).one()
        return row.status, row.amount_due - row.paid - row.credited


def count(app, model) -> int:
    with transaction(app.sessions) as session:
        return session.execute(select(func.count()).select_from(model)).scalar_one()


def summary(path, matched=0, returned=0, unmatched=0, before=0) -> str:
    return (
        f"{path}: entries {matched + returned + unmatched}: matched {matched}, returned {returned}, "
        f"unmatched {unmatched}, ambiguous 0, not payments 0 (already imported {before})"
    )


def run_import(app, path) -> list[str]:
    out = io.StringIO()
    import_files(app, [path], out)
    return out.getvalue().splitlines()


@pytest.mark.parametrize("version", ["02", "08"])
def test_a_statement_pays_the_invoices_it_names_once_however_often_it_is_imported(app, tmp_path, version):
    """Given invoices F-1 (1200.00) and F-2 (300.00) of ACME, and a statement of version
    001.02 or 001.08 with a transfer naming F-1 and one of exactly 300.00 from ACME
    When it is imported twice
    Then both invoices are paid on the value date with the bank's reference as payment_id,
    and the second import adds no row, no payment and no evidence record."""
    assert ingest(
        app, invoice_issued("F-1", "2026-10-30"), invoice_issued("F-2", "2026-10-30", "300.00")
    ) == [
        "accepted",
        "accepted",
    ]
    path = tmp_path / "statement.xml"
    path.write_text(
        camt(version, entry("1", "1200.00", text="Facture F-1"), entry("2", "300.00", text="virement")),
        encoding="utf-8",
    )
    assert run_import(app, path) == [
        summary(path, matched=2),
        "accepted 2, duplicate 0, rejected 0",
    ]
    assert open_balance(app, "F-1") == ("settled", Decimal("0.00"))
    assert open_balance(app, "F-2") == ("settled", Decimal("0.00"))
    with transaction(app.sessions) as session:
        paid = session.execute(select(PaymentRow.payment_id, PaymentRow.on_day, PaymentRow.amount)).all()
    assert sorted((p, d.isoformat(), str(a)) for p, d, a in paid) == [
        ("STMT-2026-10-02/1", "2026-10-01", "1200.00"),
        ("STMT-2026-10-02/2", "2026-10-01", "300.00"),
    ]
    before = {model: count(app, model) for model in (BankEntryRow, PaymentRow, EvidenceRecord, InboxEvent)}
    assert run_import(app, path) == [
        summary(path, matched=2, before=2),
        "accepted 0, duplicate 2, rejected 0",
    ]
    assert {model: count(app, model) for model in before} == before


def test_an_unmatched_entry_is_listed_then_matched_by_hand_and_the_invoice_is_settled(app, tmp_path):
    """Given open invoices F-1 (1200.00) and F-2 (300.00) and a transfer of 1400.00 from a
    payer no debtor is named like, without reference
    When it is imported, listed, then matched to F-2 and F-1 by hand
    Then F-2 takes its 300.00, F-1 the rest 1100.00 (100.00 left open), and the entry is no
    longer listed."""
    ingest(app, invoice_issued("F-1", "2026-10-30"), invoice_issued("F-2", "2026-10-30", "300.00"))
    path = tmp_path / "s.xml"
    path.write_text(camt("02", entry("9", "1400.00", payer="M. Martin")), encoding="utf-8")
    assert run_import(app, path)[-1] == "accepted 0, duplicate 0, rejected 0"
    listed = list(waiting_lines(app, "default"))
    assert listed[-1] == "unmatched 1, ambiguous 0"
    key, day, amount, currency, payer, _, why = listed[0].split("\t")
    assert (key, day, amount, currency, payer) == (
        "STMT-2026-10-02/9",
        "2026-10-01",
        "1400.00",
        "EUR",
        "M. Martin",
    )
    assert why.startswith("unmatched: no invoice number in the remittance")
    with pytest.raises(MatchRefused, match=r"1400\.00 is more than the 300\.00 open on F-2"):
        match(app, "default", key, ["F-2"], None, io.StringIO())
    found = match(app, "default", key, ["F-2", "F-1"], "claire", io.StringIO())
    assert [(p.invoice_number, str(p.amount)) for p in found.payments] == [
        ("F-2", "300.00"),
        ("F-1", "1100.00"),
    ]
    assert open_balance(app, "F-2") == ("settled", Decimal("0.00"))
    assert open_balance(app, "F-1") == ("open", Decimal("100.00"))  # 1200.00 - 1100.00
    assert list(waiting_lines(app, "default")) == ["unmatched 0, ambiguous 0"]
    with transaction(app.sessions) as session:
        row = session.scalars(select(BankEntryRow)).one()
        assert (row.status, row.matched_by) == ("matched", "claire")
    with pytest.raises(MatchRefused, match="bank entry STMT-2026-10-02/9 is already matched"):
        match(app, "default", key, ["F-1"], None, io.StringIO())


def test_an_entry_before_its_invoice_is_matched_on_retry(app, tmp_path):
    """Given a transfer naming F-7 imported before F-7 is issued
    When F-7 arrives and the waiting entries are matched again
    Then F-7 is paid and nothing waits."""
    path = tmp_path / "s.xml"
    path.write_text(camt("08", entry("1", "450.00", text="Règlement F-7")), encoding="utf-8")
    run_import(app, path)
    assert list(waiting_lines(app, "default"))[-1] == "unmatched 1, ambiguous 0"
    ingest(app, invoice_issued("F-7", "2026-10-30", "450.00"))
    assert retry(app, "default", io.StringIO()) == 1
    assert open_balance(app, "F-7") == ("settled", Decimal("0.00"))
    assert list(waiting_lines(app, "default")) == ["unmatched 0, ambiguous 0"]


def test_a_returned_direct_debit_reopens_the_invoice(app, tmp_path):
    """Given F-1 (1200.00) collected by direct debit (end-to-end id DD-F-1) on one
    statement, and the debit returned (AM04, insufficient funds) on the next
    When both are imported
    Then the collection's payment is reversed on the return's value date and F-1 is open
    again for 1200.00; the return imported again changes nothing."""
    ingest(app, invoice_issued("F-1", "2026-10-30"))
    first, second = tmp_path / "1.xml", tmp_path / "2.xml"
    first.write_text(camt("02", entry("1", "1200.00", text="F-1", e2e="DD-F-1")), encoding="utf-8")
    second.write_text(
        camt("02", entry("1", "1200.00", credit=False, e2e="DD-F-1", reversal=True, reason="AM04")).replace(
            "STMT-2026-10-02", "STMT-2026-10-09"
        ),
        encoding="utf-8",
    )
    run_import(app, first)
    assert open_balance(app, "F-1") == ("settled", Decimal("0.00"))
    assert run_import(app, second) == [
        summary(second, returned=1),
        "accepted 1, duplicate 0, rejected 0",
    ]
    assert open_balance(app, "F-1") == ("open", Decimal("1200.00"))
    with transaction(app.sessions) as session:
        reversed_on = session.scalars(select(PaymentRow.reversed_on)).one()
    assert reversed_on.isoformat() == "2026-10-01"
    assert run_import(app, second)[-1] == "accepted 0, duplicate 1, rejected 0"
    assert open_balance(app, "F-1") == ("open", Decimal("1200.00"))


def test_a_return_whose_payment_is_unknown_waits_then_is_matched_to_its_invoice_by_hand(app, tmp_path):
    """Given F-1 (200.00) paid 80.00 by the accounting system under payment id CHQ-7, and
    a returned debit of 80.00 whose end-to-end id X-1 names no payment
    When it is imported, then matched by hand to F-1
    Then it waits with why, and the match takes back CHQ-7: F-1 is open for 200.00 again."""
    ingest(app, invoice_issued("F-1", "2026-10-30", "200.00"))
    paid = payment("F-1", "80.00", "2026-09-20") | {"payment_id": "CHQ-7"}
    assert ingest(app, paid) == ["accepted"]
    path = tmp_path / "s.xml"
    path.write_text(
        camt("02", entry("5", "80.00", credit=False, e2e="X-1", reversal=True, reason="MD06")),
        encoding="utf-8",
    )
    run_import(app, path)
    (line, _) = waiting_lines(app, "default")
    assert line.split("\t")[2] == "-80.00"
    assert line.endswith(
        "unmatched: returned debit (MD06): the payment it takes back was not found (end-to-end id X-1)"
    )
    with pytest.raises(MatchRefused, match="name the one invoice it was for"):
        match(app, "default", "STMT-2026-10-02/5", ["F-1", "F-2"], None, io.StringIO())
    found = match(app, "default", "STMT-2026-10-02/5", ["F-1"], "claire", io.StringIO())
    assert (found.status, found.reason, found.payments[0].payment_id) == (
        "reversed",
        "returned debit (MD06)",
        "CHQ-7",
    )
    assert open_balance(app, "F-1") == ("open", Decimal("200.00"))  # 200.00 - 80.00 + 80.00
    assert list(waiting_lines(app, "default")) == ["unmatched 0, ambiguous 0"]


def test_a_statement_for_another_creditor_pays_only_its_invoices(app, tmp_path):
    assert DEBTOR["name"] == "ACME Industrie SAS"
    ingest(app, invoice_issued("F-1", "2026-10-30"))
    path = tmp_path / "s.xml"
    path.write_text(camt("02", entry("1", "1200.00", text="F-1")), encoding="utf-8")
    out = io.StringIO()
    import_files(app, [path], out, creditor="nobody")
    assert out.getvalue().splitlines()[-2].startswith(f"{path}: rejected: file: ")
    assert open_balance(app, "F-1") == ("open", Decimal("1200.00"))
