"""Two creditors in one store: the same invoice number and the same debtor id are two things,
each creditor's events touch only its own, and each has its own evidence chain."""

from __future__ import annotations

import email
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select, update

from adapters.orm import EvidenceHead, EvidenceRecord, InvoiceRow, MessageRow, RejectedEvent
from adapters.store import transaction
from relance.reports import verify_chain, verify_chains
from tests.integration.test_flow import at, outbox_emails
from tests.support import DEBTOR, advance, ingest, invoice_issued, make_test_app, payment


def of(creditor: str, event: dict) -> dict:
    return event | {"creditor_id": creditor, "event_id": f"{creditor}:{event['event_id']}"}


# the creditor "atelier" beside the service's own ("default"): its own sender, identity and
# bank details
CREDITORS = """
[atelier]
sender = "Atelier Durand <relances@atelier-durand.example>"
reply_to = "compta@atelier-durand.example"

[atelier.creditor]
name = "Atelier Durand SARL"
address = ["3 quai des Arts", "69002 Lyon"]
iban = "FR76 3000 6000 0112 3456 7890 189"
bic = "AGRIFRPP"
payment_link = "https://pay.atelier-durand.example/{invoice_number}"
"""


def creditors_file(tmp_path: Path, text: str = CREDITORS) -> Path:
    path = tmp_path / "creditors.toml"
    path.write_text(text, encoding="utf-8")
    return path


def both_creditors(database_url, tmp_path):
    app = make_test_app(
        database_url, tmp_path, at("2026-03-02 10:00"), creditors_file=creditors_file(tmp_path)
    )
    other_debtor = DEBTOR | {"name": "Boulangerie Martin", "email": "martin@boulangerie.example"}
    statuses = ingest(
        app,
        invoice_issued("F-2026-0001", "2026-04-01", "1200.00"),  # creditor "default"
        of("atelier", invoice_issued("F-2026-0001", "2026-04-01", "300.00", debtor=other_debtor)),
    )
    assert statuses == ["accepted", "accepted"]
    return app


def plain_text(message: email.message.Message) -> str:
    part = next(p for p in message.walk() if p.get_content_type() == "text/plain")
    return part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")


def invoices(app) -> dict[str, tuple[str, Decimal, str]]:
    with transaction(app.sessions) as uow:
        uow.scope(None)
        rows = uow.execute(select(InvoiceRow)).scalars()
        return {r.creditor_id: (r.number, r.amount_due, r.status) for r in rows}


def test_the_same_invoice_number_under_two_creditors_is_two_invoices(database_url, tmp_path):
    app = both_creditors(database_url, tmp_path)
    assert invoices(app) == {
        "default": ("F-2026-0001", Decimal("1200.00"), "open"),
        "atelier": ("F-2026-0001", Decimal("300.00"), "open"),
    }
    app.dispose()


def test_a_payment_for_one_creditor_never_touches_the_others_invoice(database_url, tmp_path):
    app = both_creditors(database_url, tmp_path)
    ingest(app, of("atelier", payment("F-2026-0001", "300.00", "2026-03-10")))
    found = invoices(app)
    assert found["atelier"][2] == "settled"
    assert found["default"] == ("F-2026-0001", Decimal("1200.00"), "open")
    app.dispose()


def test_each_creditors_debtor_gets_its_own_reminder_with_its_own_amount(database_url, tmp_path):
    app = both_creditors(database_url, tmp_path)
    # the pre-due reminder of an invoice due on 1 April goes out on 27 March (policy: 5 days
    # before, on a business day)
    advance(app, at("2026-03-27 09:00"))
    mails = [email.message_from_bytes(path.read_bytes()) for path in outbox_emails(app)]
    by_recipient = {m["To"]: m for m in mails}
    assert set(by_recipient) == {"compta@acme.example", "martin@boulangerie.example"}
    text = {to: plain_text(m) for to, m in by_recipient.items()}
    ours, theirs = text["compta@acme.example"], text["martin@boulangerie.example"]
    assert "1 200,00" in ours and "300,00" not in ours
    assert "300,00" in theirs and "1 200,00" not in theirs
    # each creditor's own sender, identity and payment details, and none of the other's
    atelier_mail, service_mail = (
        by_recipient["martin@boulangerie.example"],
        by_recipient["compta@acme.example"],
    )
    assert atelier_mail["From"] == "Atelier Durand <relances@atelier-durand.example>"
    assert atelier_mail["Reply-To"] == "compta@atelier-durand.example"
    assert service_mail["From"] == app.settings.sender and service_mail["Reply-To"] is None
    assert "Règlement par virement : IBAN FR76 3000 6000 0112 3456 7890 189, BIC AGRIFRPP" in theirs
    assert "https://pay.atelier-durand.example/F-2026-0001" in theirs and "Atelier Durand SARL" in theirs
    assert "IBAN" not in ours and "Atelier Durand" not in ours
    with transaction(app.sessions) as uow:
        uow.scope(None)
        ids = uow.execute(select(MessageRow.creditor_id, MessageRow.message_id)).all()
    assert sorted(c for c, _ in ids) == ["atelier", "default"]
    assert len({m for _, m in ids}) == 2  # two Message-IDs, though number and step are the same
    app.dispose()


def test_each_creditor_has_its_own_evidence_chain_and_each_verifies(database_url, tmp_path):
    app = both_creditors(database_url, tmp_path)
    advance(app, at("2026-03-27 09:00"))
    with transaction(app.sessions) as uow:
        uow.scope(None)
        heads = dict(uow.execute(select(EvidenceHead.creditor_id, EvidenceHead.seq)).all())
        firsts = uow.execute(
            select(EvidenceRecord.creditor_id, EvidenceRecord.prev_hash).where(EvidenceRecord.seq == 1)
        ).all()
    assert set(heads) == {"default", "atelier"} and all(seq >= 2 for seq in heads.values())
    assert sorted(c for c, _ in firsts) == ["atelier", "default"]  # both chains start at 1
    assert all(prev == "0" * 64 for _, prev in firsts)
    checks = verify_chains(app)
    assert {name: (check.ok, check.records) for name, check in checks.items()} == {
        name: (True, seq) for name, seq in heads.items()
    }
    app.dispose()


def test_a_chain_passed_off_as_another_creditors_does_not_verify(database_url, tmp_path):
    app = both_creditors(database_url, tmp_path)
    assert verify_chain(app, "atelier").ok
    with transaction(app.sessions) as uow:  # the whole chain and its head, renamed
        uow.scope(None)
        uow.execute(
            update(EvidenceRecord).where(EvidenceRecord.creditor_id == "atelier").values(creditor_id="x")
        )
        uow.execute(update(EvidenceHead).where(EvidenceHead.creditor_id == "atelier").values(creditor_id="x"))
    check = verify_chain(app, "x")
    assert (check.ok, check.broken_seq, check.reason) == (False, 1, "content does not match its hash")
    assert verify_chain(app, "default").ok
    app.dispose()


def test_an_event_of_a_creditor_the_service_does_not_know_is_rejected_and_kept(database_url, tmp_path):
    app = both_creditors(database_url, tmp_path)
    [status] = ingest(app, of("inconnu", invoice_issued("F-9", "2026-04-01")))
    assert status == (
        "creditor 'inconnu' is not configured: add it to the creditors file "
        "(RELANCE_CREDITORS_FILE, docs/configuration.md#creditors)"
    )
    with transaction(app.sessions) as uow:
        kept = uow.execute(select(RejectedEvent.event_id, RejectedEvent.creditor_id)).all()
    assert kept == [("inconnu:issued-F-9", "inconnu")]
    app.dispose()


def test_a_creditor_with_its_own_mail_account_sends_through_it(database_url, tmp_path, smtp_server):
    own_account = (
        f'{CREDITORS}\n[atelier.smtp]\nhost = "127.0.0.1"\nport = {smtp_server.port}\ntls = "none"\n'
    )
    app = make_test_app(
        database_url, tmp_path, at("2026-03-02 10:00"), creditors_file=creditors_file(tmp_path, own_account)
    )
    theirs = DEBTOR | {"name": "Boulangerie Martin", "email": "martin@boulangerie.example"}
    ingest(
        app,
        invoice_issued("F-1", "2026-04-01"),
        of("atelier", invoice_issued("F-1", "2026-04-01", "300.00", debtor=theirs)),
    )
    advance(app, at("2026-03-27 09:00"))
    # the service has no SMTP server: its e-mail is a file; atelier's left by its account
    files = [email.message_from_bytes(p.read_bytes()) for p in outbox_emails(app)]
    assert [m["To"] for m in files] == ["compta@acme.example"]
    assert [m["To"] for m in smtp_server.messages] == ["martin@boulangerie.example"]
    assert smtp_server.messages[0]["From"] == "Atelier Durand <relances@atelier-durand.example>"
    app.dispose()
