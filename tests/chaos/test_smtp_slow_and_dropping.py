"""Slow and broken SMTP servers on the real delivery path, in process with a virtual clock:

- a server writing one line every 0.5 s is cut off by the transaction deadline (2 s here):
  no transmission holds its thread longer than the deadline and a margin, and the message
  waits for its back-off;
- a server that drops the connection once the whole message is in, before its answer,
  receives each message at most ``RELANCE_SMTP_MAX_COPIES`` times (2): then the message is
  failed (``message.resend_limit``) and the debtor is not blamed.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta
from email.parser import BytesHeaderParser

import pytest
from sqlalchemy import select

from adapters.orm import DebtorRow, MessageRow
from adapters.store import transaction
from tests.chaos.harness import PgCluster, record, smtp_app
from tests.smtp_scripted import ScriptedSmtp
from tests.support import advance

pytestmark = pytest.mark.chaos

DEADLINE = 2.0
MARGIN = 1.0


def _app(pg_cluster: PgCluster, server: ScriptedSmtp, tmp_path, invoices: int, **settings):
    return smtp_app(pg_cluster, server.port, tmp_path, invoices, **settings)


def _rows(app):
    with transaction(app.sessions) as session:
        messages = session.execute(select(MessageRow).order_by(MessageRow.id)).scalars().all()
        bounced = [d.id for d in session.execute(select(DebtorRow)).scalars() if d.email_bounced]
    return messages, bounced


def _copies(server: ScriptedSmtp) -> Counter[str]:
    with server.lock:
        raw = list(server.received)
    return Counter(str(BytesHeaderParser().parsebytes(r).get("Message-ID", "")).strip() for r in raw)


EXTENSIONS = pytest.mark.parametrize(
    "extensions", [["8BITMIME"], ["8BITMIME", "PIPELINING"]], ids=["one at a time", "pipelining"]
)


@EXTENSIONS
def test_a_dripping_server_is_cut_off_at_the_deadline_and_never_holds_a_thread_longer(
    pg_cluster, tmp_path, extensions
):
    server = ScriptedSmtp(line_delay=0.5, extensions=extensions).start()
    app = _app(pg_cluster, server, tmp_path, 4, smtp_deadline_seconds=DEADLINE)
    mailer = app.transports["email"]
    waits: list[float] = []
    transmit = mailer.transmit

    def timed(message):
        started = time.monotonic()
        try:
            return transmit(message)
        finally:
            waits.append(time.monotonic() - started)

    mailer.transmit = timed  # type: ignore[method-assign]
    try:
        now = app.clock.now()
        advance(app, now)  # each transmission cut at the deadline: retried after 30 s
        advance(app, now + timedelta(seconds=31))  # and again
        messages, bounced = _rows(app)
    finally:
        server.stop()
        app.dispose()
    assert len(waits) == 8 and max(waits) <= DEADLINE + MARGIN
    assert {(m.status, m.attempts) for m in messages} == {("pending", 2)}
    assert all("deadline" in (m.last_error or "") for m in messages)
    assert bounced == [] and server.copies() == 0
    record(
        "smtp_drip_inprocess",
        "SMTP server writing one line every 0.5 s",
        {"reminders": 4, "mode": "in-process, virtual clock", "deadline_s": DEADLINE},
        {"received": 0, "unique": 0, "duplicated": 0, "conflicting": 0, "missing_message_id": 0},
        0,  # nothing can be received: every transaction is cut
        {},
        longest_transmission_s=round(max(waits), 2),
        transmissions=len(waits),
        pipelining="PIPELINING" in extensions,
    )


@EXTENSIONS
@pytest.mark.parametrize("max_copies", [2, 3])
def test_a_server_dropping_after_data_never_receives_more_copies_than_the_bound(
    pg_cluster, tmp_path, max_copies, extensions
):
    server = ScriptedSmtp(drop_after_data=True, extensions=extensions).start()
    invoices = 10
    app = _app(pg_cluster, server, tmp_path, invoices, smtp_max_copies=max_copies)
    try:
        now = app.clock.now()
        for minutes in range(0, 24 * 60, 7):  # a day of ticks: every back-off runs out
            advance(app, now + timedelta(minutes=minutes))
        messages, bounced = _rows(app)
    finally:
        server.stop()
        app.dispose()
    copies = _copies(server)
    assert len(copies) == invoices and max(copies.values()) == max_copies  # never more
    assert {(m.channel, m.status) for m in messages} == {("email", "failed")}
    assert all(m.last_error.startswith(f"[copies possibly received: {max_copies}]") for m in messages)
    assert bounced == []  # the debtor is not blamed for our server's dropped answers
    record(
        f"smtp_drop_after_data_inprocess_max{max_copies}",
        "SMTP server dropping the connection after DATA, before its answer",
        {"reminders": invoices, "mode": "in-process, virtual clock", "max_copies": max_copies},
        {
            "received": sum(copies.values()),
            "unique": len(copies),
            "duplicated": sum(copies.values()) - len(copies),
            "conflicting": 0,
            "missing_message_id": 0,
        },
        invoices,
        {},
        most_copies=max(copies.values()),
        pipelining="PIPELINING" in extensions,
    )
