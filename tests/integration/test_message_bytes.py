"""The messages of a big catch-up keep their exact bytes.

One debtor, 130 invoices of varied amounts, due dates and payments, caught up on 14 April
2026 (every step from ``pre_due`` to ``reminder_2`` due at once), with three invoices not
yet due whose ``pre_due`` is mentioned as coming due: one ``reminder_2`` e-mail and one
letter, each listing 50 invoices and carrying the statement of all of them. The e-mail, the
letter, their Message-IDs, the claims recorded and the evidence of the send are compared with
fixed SHA-256 digests, on SQLite and on PostgreSQL.

How the digests were obtained: this test was run on the code of the reminder path before the
messages were fed from the store invoice batch by invoice batch (each claimed invoice then
kept from the reading of the due steps to the messages), and the digests it printed
(``pytest -s``, the ``print`` below; the same on SQLite and PostgreSQL) were written here.
Any change that moves one byte of either message, its Message-ID (which makes the send
idempotent), its claims or its evidence payload fails here.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from adapters.orm import EvidenceRecord, InvoiceRow, MessageItem, MessageRow
from handlers import reminders
from tests.support import advance, ingest, invoice_issued, make_test_app, payment, transaction

PARIS = ZoneInfo("Europe/Paris")
START = datetime(2026, 3, 2, 10, 0, tzinfo=PARIS)
SEND = datetime(2026, 4, 14, 10, 0, tzinfo=PARIS)
KEY = "fixed key of the byte-for-byte test"

EXPECTED = {
    "email": "70c6d49a3949a65a6639d47da9b00785b5d68a0a7a5aa2c9e966bc042d946863",
    "letter": "6655177d96bfe93884c2fe7069afc61a826140347280027f6026528d5a122dd2",
    "message_ids": "f2b5c4c2959eacc7361fac56b0306ba1cb1f65bbd8c7899f58b1a80cf038b226",
    "claims": "02fda26f6386a6e43dd6bde2aad7d2a7533dcb0d467be6e3f1d3f5fc68344588",
    "evidence": "62a97aea3527c61b520361e1754893867b39d8162927bd4f21b77a84e601e54c",
}


def _events() -> list[dict]:
    events = []
    for i in range(1, 131):
        due = f"2026-03-{16 + i % 5:02d}"
        amount = f"{100 + (i * 37) % 900}.{(i * 13) % 100:02d}"
        events.append(invoice_issued(f"F-{(i * 7919) % 1000:04d}-{i}", due, amount))
    for i in range(1, 4):  # not due yet: their pre_due is mentioned as coming due
        events.append(invoice_issued(f"N-{i}", "2026-04-17", f"{250 * i}.00"))
    return events


def _sent(app) -> dict[str, str]:
    with transaction(app.sessions) as session:
        messages = session.execute(
            select(MessageRow.id, MessageRow.channel, MessageRow.message_id, MessageRow.content).order_by(
                MessageRow.channel
            )
        ).all()
        by_channel = {channel: content for _, channel, _, content in messages}
        claims = session.execute(
            select(MessageRow.channel, InvoiceRow.number, MessageItem.step)
            .join(MessageRow, MessageRow.id == MessageItem.message_pk)
            .join(InvoiceRow, InvoiceRow.id == MessageItem.invoice_id)
            .order_by(MessageRow.channel, InvoiceRow.number, MessageItem.step)
        ).all()
        payloads = session.scalars(
            select(EvidenceRecord.payload)
            .where(EvidenceRecord.kind == "reminder.sent")
            .order_by(EvidenceRecord.seq)
        ).all()
    return {
        "channels": ",".join(sorted(by_channel)),
        "email": hashlib.sha256(by_channel["email"]).hexdigest(),
        "letter": hashlib.sha256(by_channel["letter"]).hexdigest(),
        "message_ids": _digest("\n".join(sorted(m for _, _, m, _ in messages))),
        "claims": _digest("\n".join(f"{c}/{n}/{s}" for c, n, s in claims)),
        "evidence": _digest("\n".join(json.dumps(p, sort_keys=True) for p in payloads)),
        "claim_count": str(len(claims)),
    }


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize("claims_at_once", [500, 40], ids=["from-the-reading", "fed-from-the-store"])
def test_a_big_catch_up_sends_the_same_bytes(database_url, tmp_path, monkeypatch, claims_at_once):
    # 130 claims: one batch, made from the due steps read; 40 at a time, their invoices read
    # again from the store in four batches: the same bytes either way
    monkeypatch.setattr(reminders, "CLAIMS_AT_ONCE", claims_at_once)
    app = make_test_app(database_url, tmp_path, START, message_id_key=KEY)
    try:
        assert set(ingest(app, *_events())) == {"accepted"}
        app.clock.set(datetime(2026, 4, 1, 10, 0, tzinfo=PARIS))
        paid = ingest(
            app, payment("F-0919-1", "40.00", "2026-03-25"), payment("F-0838-2", "12.34", "2026-03-30")
        )
        assert set(paid) == {"accepted"}
        advance(app, SEND)
        sent = _sent(app)
    finally:
        app.dispose()
    print(json.dumps(sent, indent=1))
    assert sent["channels"] == "email,letter"  # reminder_2: by e-mail and by post
    assert sent["claim_count"] == str(2 * 130)
    assert {k: sent[k] for k in EXPECTED} == EXPECTED
