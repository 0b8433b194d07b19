"""A debtor with very many open invoices: the message lists the first ones, summarises the
rest and carries the full statement; the amounts demanded are those of every invoice.

Runs the whole reminder path (decision, amounts, templates, composer) on the in-memory
dunning store.
"""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from email import message_from_bytes
from email.policy import default as default_policy

import pytest
from pypdf import PdfReader

from adapters.memory_dunning import MemoryDunning
from config.bootstrap import make_context
from config.settings import Settings
from handlers.dunning import DebtorFacts, InvoiceFacts, StepFacts
from handlers.messages import DeliverMessage
from handlers.reminders import send_due

# Tuesday 14 April 2026, 10:00 in Paris: a business day, inside the sending window
NOW = datetime(2026, 4, 14, 8, 0, tzinfo=UTC)
DUE = date(2026, 3, 20)  # reminder_2 (D+20) fell due on Thursday 9 April
DEBTOR = DebtorFacts(id="D-1", name="ACME Industrie SAS", kind="business", email="compta@acme.example")


def seeded(count: int, debtor: DebtorFacts = DEBTOR) -> MemoryDunning:
    data = MemoryDunning()
    data.add_debtor(debtor)
    for i in range(1, count + 1):
        data.add_invoice(
            InvoiceFacts(
                id=i,
                number=f"F-{i:05d}",
                debtor_id=debtor.id,
                status="open",
                currency="EUR",
                amount_due=Decimal("100.00"),
                paid=Decimal("0.00"),
                credited=Decimal("0.00"),
                issue_date=date(2026, 2, 18),
                due_date=DUE,
            )
        )
        due_at = datetime(2026, 4, 9, 7, 0, tzinfo=UTC)
        data.add_step(StepFacts(i, i, debtor.id, "reminder_2", "invoice.overdue", "planned", due_at))
    return data


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    return make_context(Settings(data_dir=tmp_path_factory.mktemp("ctx"), database_url="sqlite://"))


def sent(data: MemoryDunning, ctx) -> list[DeliverMessage]:
    tasks = send_due(data.store(), 1, NOW, ctx)
    return [t for t in tasks if isinstance(t, DeliverMessage)]


def test_twenty_thousand_invoices_give_a_bounded_message_with_the_full_statement_attached(ctx):
    # no postal address: reminder_2 goes by e-mail only
    data = seeded(20_000)
    [task] = sent(data, ctx)
    assert task.recorded is None  # 1.9 MB: its delivery reads it back
    [recorded] = data.messages.values()
    message = message_from_bytes(recorded.content, policy=default_policy)
    subject = str(message["Subject"])
    assert subject == "2e relance pour facture impayée : F-00001, F-00002, F-00003 et 19 997 autres"
    body = message.get_body(("plain",)).get_content().replace("\u202f", " ").replace("\xa0", " ")
    assert len(body.encode()) < 20_000  # 50 invoices listed, whatever the number claimed
    assert "20000 factures, pour un total restant dû de 2 000 000,00 €" in body
    assert "la plus ancienne est échue depuis le 20 mars 2026" in body
    assert "- Facture n° F-00050 " in body and "F-00051" not in body
    assert "et 19950 autres factures" in body
    # each invoice: 100.00 at 12.15 % for the 25 days from 21 March to 14 April
    # = 100 × 0.1215 × 25 / 365 = 0.832… → 0.83, plus the 40.00 indemnity: 140.83 demanded;
    # 20 000 invoices: 2 000 000.00 + 16 600.00 + 800 000.00 = 2 816 600.00
    assert "Total des pénalités : 16 600,00 € ; indemnités forfaitaires : 800 000,00 €." in body
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == "statement-D-1-2026-04-14.csv"
    rows = list(csv.reader(io.StringIO(attachment.get_content())))
    assert rows[0][:8] == [
        "invoice",
        "issue_date",
        "due_date",
        "currency",
        "balance",
        "late_interest",
        "indemnity",
        "demanded",
    ]
    claimed = [r for r in rows[1:-1] if r[8] == "claimed"]
    assert len(claimed) == 20_000 and len(rows) == 20_002
    assert claimed[0] == [
        "F-00001",
        "2026-02-18",
        "2026-03-20",
        "EUR",
        "100.00",
        "0.83",
        "40.00",
        "140.83",
        "claimed",
    ]
    assert sum(Decimal(r[7]) for r in claimed) == Decimal("2816600.00")
    assert rows[-1] == [
        "total",
        "",
        "",
        "EUR",
        "2000000.00",
        "16600.00",
        "800000.00",
        "2816600.00",
        "claimed",
    ]
    assert recorded.amounts["claimed"] == "2816600.00" and len(recorded.claims) == 20_000
    assert len(recorded.content) < 4_000_000  # the statement is most of it


def test_a_message_up_to_the_limit_lists_every_invoice_and_attaches_nothing(ctx):
    [task] = sent(seeded(50), ctx)
    assert task.recorded is not None
    message = message_from_bytes(task.recorded.content, policy=default_policy)
    assert list(message.iter_attachments()) == []
    body = message.get_body(("plain",)).get_content()
    assert "F-00050" in body and "relevé joint" not in body
    assert str(message["Subject"]).endswith("F-00001, F-00002, F-00003 et 47 autres")


def test_a_letter_past_the_limit_ends_with_the_statement_as_an_annex(ctx):
    address = {"line1": "12 rue des Forges", "postal_code": "69007", "city": "Lyon", "country": "FR"}
    data = seeded(60, replace(DEBTOR, address=address))
    tasks = sent(data, ctx)
    [letter] = [t.recorded for t in tasks if t.recorded is not None and t.recorded.channel == "letter"]
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(letter.content)).pages)
    assert "Annexe : relevé des factures (statement-D-1-2026-04-14.csv)" in text
    assert "F-00060; 2026-02-18; 2026-03-20; EUR; 100.00; 0.83; 40.00; 140.83; claimed" in text
    assert "total; ; ; EUR; 6000.00; 49.80; 2400.00; 8449.80; claimed" in text


def test_invoices_folded_one_by_one_give_the_statement_and_totals_of_all_and_keep_the_first_views():
    from handlers.reminders import ClaimedInvoices
    from handlers.statement import StatementBuilder, build_statement

    views = [
        {
            "number": f"F-{i}",
            "issue_date": date(2026, 2, 18),
            "due_date": date(2026, 3, 20 - i),
            "currency": "EUR",
            "balance": Decimal("100.00") + i,
            "late_interest": Decimal("0.37"),
            "indemnity": Decimal("40.00"),
        }
        for i in range(1, 8)
    ]
    folded = ClaimedInvoices(3, StatementBuilder("D-1-2026-04-14", "EUR"))
    for view in views:
        folded.add(view)
    other = {"number": "F-9", "due_date": date(2026, 3, 1), "currency": "EUR", "balance": Decimal("5.00")}
    # the statement is the one built from every view at once, the totals those of all seven
    assert folded.statement is not None
    assert folded.statement.finish([other]) == build_statement("D-1-2026-04-14", "EUR", views, [other])
    assert (folded.count, folded.balance, folded.late_interest) == (7, Decimal("728.00"), Decimal("2.59"))
    assert folded.indemnity == Decimal("280.00")
    assert folded.oldest_due == date(2026, 3, 13)
    # only the first three views are kept to be listed
    assert [v["number"] for v in folded.views] == ["F-1", "F-2", "F-3"]


def test_the_statement_written_line_by_line_keeps_its_exact_csv_bytes_and_annex_lines():
    """The statement is written out as CSV text as the invoices are folded: its bytes and
    the annex's lines are those of the fields, quoted where a field needs it, whatever the
    order they were written in."""
    from handlers.statement import Statement, build_statement

    views = [
        {
            "number": number,
            "issue_date": date(2026, 2, 18),
            "due_date": date(2026, 3, day),
            "currency": "EUR",
            "balance": Decimal(balance),
            "late_interest": Decimal("0.83"),
            "indemnity": Decimal("40.00"),
        }
        for number, day, balance in (
            ("F-1", 20, "100.00"),
            ('F-2, "bis"', 21, "1234.50"),
            ("Fé-3", 22, "0.10"),
        )
    ]
    other = {"number": "F-9", "due_date": date(2026, 3, 1), "currency": "EUR", "balance": Decimal("5.00")}
    coming = {"number": "F-10", "due_date": date(2026, 5, 1), "currency": "EUR", "balance": Decimal("7.5")}

    statement = build_statement("D-1/2026-04-14", "EUR", views, [other], [coming])

    assert statement.filename == "statement-D-1-2026-04-14.csv"
    assert statement.csv_bytes() == (
        b"invoice,issue_date,due_date,currency,balance,late_interest,indemnity,demanded,section\r\n"
        b"F-1,2026-02-18,2026-03-20,EUR,100.00,0.83,40.00,140.83,claimed\r\n"
        b'"F-2, ""bis""",2026-02-18,2026-03-21,EUR,1234.50,0.83,40.00,1275.33,claimed\r\n'
        b"F\xc3\xa9-3,2026-02-18,2026-03-22,EUR,0.10,0.83,40.00,40.93,claimed\r\n"
        b"F-9,,2026-03-01,EUR,5.00,,,,other_overdue\r\n"
        b"F-10,,2026-05-01,EUR,7.5,,,,coming_due\r\n"
        b"total,,,EUR,1334.60,2.49,120.00,1457.09,claimed\r\n"
    )
    assert list(statement.text_lines()) == [
        "invoice; issue_date; due_date; currency; balance; late_interest; indemnity; demanded; section",
        "F-1; 2026-02-18; 2026-03-20; EUR; 100.00; 0.83; 40.00; 140.83; claimed",
        'F-2, "bis"; 2026-02-18; 2026-03-21; EUR; 1234.50; 0.83; 40.00; 1275.33; claimed',
        "Fé-3; 2026-02-18; 2026-03-22; EUR; 0.10; 0.83; 40.00; 40.93; claimed",
        "F-9; ; 2026-03-01; EUR; 5.00; ; ; ; other_overdue",
        "F-10; ; 2026-05-01; EUR; 7.5; ; ; ; coming_due",
        "total; ; ; EUR; 1334.60; 2.49; 120.00; 1457.09; claimed",
    ]
    assert statement.line_count == 7
    # the lines read back are the fields written: the same statement made from its lines
    assert Statement.of_lines(statement.filename, statement.lines) == statement
