"""Files through the ``import_document`` actor on the Redis broker, a real Dramatiq worker,
the PostgreSQL store and loopback SMTP: a UBL invoice becomes an open invoice whose first
reminder is e-mailed, the same message delivered twice changes nothing, an unreadable file
is kept as a rejection naming it, and a camt.053 statement sent the same way settles the
invoice."""

from __future__ import annotations

import base64
import json
from datetime import date
from decimal import Decimal

import dramatiq
import pytest
from sqlalchemy import select

from adapters.orm import InboxEvent, InvoiceRow, PlannedStep, RejectedEvent
from adapters.publisher import QUEUE
from adapters.store import transaction
from relance.cli import main
from scheduler.tick import tick
from tests.brokered import brokered, on_redis
from tests.integration.test_bank_import import camt, entry
from tests.samples import sample

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture
def running(postgres_url, redis_url, redis_namespace, smtp_server, tmp_path):
    settings = on_redis(tmp_path, postgres_url, redis_url, redis_namespace, smtp_server)
    with brokered(settings, threads=2) as (app, broker):
        assert type(broker).__name__ == "RedisBroker"
        yield app, broker, smtp_server


def ubl_invoice() -> bytes:
    """The CEN example 1 (invoice 12115118 of 250.33 EUR to ODIN 59), issued 20 February
    2026 and due 20 March 2026: after the clock's 2 March 2026, so it is open and planned;
    its buyer's contact given an e-mail address (BT-58) to send the reminders to."""
    text = sample("ubl-tc434-example1.xml").read_text(encoding="utf-8")
    text = text.replace(
        "<cbc:Name>Dhr. J BLOKKER</cbc:Name>",
        "<cbc:Name>Dhr. J BLOKKER</cbc:Name><cbc:ElectronicMail>compta@odin59.example</cbc:ElectronicMail>",
    )
    text = text.replace("<cbc:IssueDate>2015-01-09<", "<cbc:IssueDate>2026-02-20<")
    return text.replace("<cbc:DueDate>2015-01-09<", "<cbc:DueDate>2026-03-20<").encode("utf-8")


def message(name: str, data: bytes, **kwargs: str) -> dramatiq.Message:
    """The message a producer sends for one file (docs/import.md, "Through the broker")."""
    content = base64.b64encode(data).decode("ascii")
    return dramatiq.Message(
        queue_name=QUEUE, actor_name="import_document", args=(name, content), kwargs=kwargs, options={}
    )


def deliver(broker, *messages: dramatiq.Message, together: bool = False) -> None:
    """Each message once the one before is handled (a message Dramatiq delivers again
    after its worker died); ``together``: all at once, to the worker's two threads."""
    for sent in messages:
        broker.enqueue(sent)
        if not together:
            broker.join(QUEUE, timeout=20_000)
    broker.join(QUEUE, timeout=20_000)


def invoices(app) -> dict[str, InvoiceRow]:
    with transaction(app.sessions) as session:
        return {row.number: row for row in session.execute(select(InvoiceRow)).scalars()}


def reminders_planned(session, invoice_id: int) -> list[PlannedStep]:
    """The steps planned for the invoice but the limitation's warning, which is not a
    reminder to the debtor."""
    query = select(PlannedStep).where(
        PlannedStep.invoice_id == invoice_id,
        PlannedStep.status == "planned",
        PlannedStep.step != "prescription_warning",
    )
    return list(session.execute(query).scalars())


def test_an_invoice_sent_twice_is_imported_once_and_a_statement_settles_it(running):
    """Given the UBL invoice 12115118 sent as an import_document message, when the same
    message is delivered twice at once, then one open invoice of 250.33 EUR due 20 March 2026
    stands, with its reminders planned, and one inbox event, and its first reminder reaches
    the buyer's address once the scheduler finds it due; when a camt.053 statement
    with an entry of 250.33 naming it follows, then the invoice is settled (250.33 - 250.33
    = 0.00 owed) and no reminder is left planned."""
    app, broker, sink = running
    invoice = message("facture-12115118.xml", ubl_invoice())
    deliver(broker, invoice, invoice, together=True)

    row = invoices(app)["12115118"]
    assert (row.amount_due, row.currency, row.due_date, row.status) == (
        Decimal("250.33"),
        "EUR",
        date(2026, 3, 20),
        "open",
    )
    with transaction(app.sessions) as session:
        events = session.execute(select(InboxEvent.type)).scalars().all()
        planned = reminders_planned(session, row.id)
    assert events == ["invoice.issued"]
    assert len(planned) > 0

    first = min(planned, key=lambda step: step.due_at)
    app.clock.set(first.due_at)
    assert tick(app.sessions, app.publisher, first.due_at, lease=app.ctx.lease, batch_size=50).steps == 1
    broker.join(QUEUE, timeout=20_000)
    assert [m["To"] for m in sink.messages] == ["compta@odin59.example"]
    assert "12115118" in sink.messages[0]["Subject"]

    paid = entry("E-1", "250.33", payer="ODIN 59", text="Facture 12115118")
    statement = camt("08", paid).replace("2026-10-0", "2026-03-0").encode("utf-8")
    deliver(broker, message("releve-2026-03-02.xml", statement))

    row = invoices(app)["12115118"]
    owed = row.amount_due - row.paid
    assert (row.paid, owed, row.status) == (Decimal("250.33"), Decimal("0.00"), "settled")
    with transaction(app.sessions) as session:
        left = [step.step for step in reminders_planned(session, row.id)]
    assert left == [], left


def test_an_unreadable_file_is_kept_once_as_a_rejection_naming_it(running):
    """Given a file that is neither an invoice nor a statement, delivered twice at once, and
    a message whose content is not base64, delivered twice, then two rejections are kept, one per file, each
    naming the file and why, and no invoice."""
    app, broker, _ = running
    garbled = message("scan.xml", b"<Invoice><not closed")
    broken = dramatiq.Message(
        queue_name=QUEUE, actor_name="import_document", args=("note.xml", "%%%"), kwargs={}, options={}
    )
    deliver(broker, garbled, garbled, together=True)
    deliver(broker, broken, broken)

    with transaction(app.sessions) as session:
        kept = session.execute(select(RejectedEvent).order_by(RejectedEvent.id)).scalars().all()
        shown = [(r.source, json.loads(r.raw)["import_file"], r.reason.split(":")[0]) for r in kept]
        reasons = [r.reason for r in kept]
    assert shown == [("broker:scan.xml", "scan.xml", "file"), ("broker:note.xml", "note.xml", "file")]
    assert reasons[1] == "file: content is not base64"
    assert invoices(app) == {}


def test_relance_import_via_broker_sends_the_files_the_workers_import(running, monkeypatch, tmp_path, capsys):
    """Given the UBL invoice in a folder, when ``relance import --via-broker`` sends it,
    then it prints the message id and exit status 0, and the worker imports the invoice
    of 250.33 EUR."""
    app, broker, _ = running
    monkeypatch.setenv("RELANCE_REDIS_URL", app.settings.redis_url)
    monkeypatch.setenv("RELANCE_REDIS_NAMESPACE", app.settings.redis_namespace)
    folder = tmp_path / "bills"
    folder.mkdir()
    (folder / "facture-12115118.xml").write_bytes(ubl_invoice())

    assert main(["import", "--via-broker", str(folder)]) == 0
    broker.join(QUEUE, timeout=20_000)

    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith(f"{folder / 'facture-12115118.xml'}: sent as message ")
    assert printed[-1] == "sent 1, not sent 0"
    assert invoices(app)["12115118"].amount_due == Decimal("250.33")


def test_relance_import_via_broker_without_a_broker_says_so_in_one_line(monkeypatch, tmp_path, capsys):
    """Given no RELANCE_REDIS_URL, when ``relance import --via-broker FILE`` runs, then it
    exits with status 2 and one line naming the setting, and sends nothing."""
    monkeypatch.delenv("RELANCE_REDIS_URL", raising=False)
    bill = tmp_path / "facture.xml"
    bill.write_bytes(b"<Invoice/>")

    assert main(["import", "--via-broker", str(bill), "--data-dir", str(tmp_path)]) == 2

    error = capsys.readouterr().err
    assert error.strip().splitlines() == [
        "relance: error: `relance import --via-broker` needs RELANCE_REDIS_URL (the workers' broker)"
    ]
