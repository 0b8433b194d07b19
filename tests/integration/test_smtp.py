"""E-mail over SMTP against a real server on loopback: STARTTLS, TLS, failures."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.compose import email_bytes
from adapters.transports import SmtpMailer
from handlers.ports import Outgoing, PermanentFailure, TransientFailure
from tests.flowtime import T0


def outgoing(subject: str = "2e relance pour facture impayée : F-1") -> Outgoing:
    content = email_bytes(
        sender="Relance <relance@creancier.example>",
        recipient="compta@acme.example",
        subject=subject,
        body_text="Montant dû : 1 234,56 €\n",
        message_id="<abc@creancier.example>",
        at=T0,
        step="reminder_2",
    )
    return Outgoing("<abc@creancier.example>", "email", "compta@acme.example", subject, content, "D-1")


def test_starttls_delivers_the_exact_message_with_its_message_id(smtp_starttls_server):
    sink, ca_file = smtp_starttls_server
    mailer = SmtpMailer("127.0.0.1", sink.port, "starttls", ca_file=Path(ca_file), timeout=5)
    mailer.transmit(outgoing())
    assert len(sink.messages) == 1
    received = sink.messages[0]
    assert received["Message-ID"] == "<abc@creancier.example>"
    assert received["Subject"] == "2e relance pour facture impayée : F-1"
    assert "1 234,56 €" in received.get_body(("plain",)).get_content()
    assert sink.envelopes[0] == ("relance@creancier.example", ["compta@acme.example"])


def test_implicit_tls_delivers(smtp_tls_server):
    sink, ca_file = smtp_tls_server
    SmtpMailer("127.0.0.1", sink.port, "tls", ca_file=Path(ca_file), timeout=5).transmit(outgoing())
    assert sink.subjects() == ["2e relance pour facture impayée : F-1"]


def test_a_server_certificate_not_signed_by_a_trusted_ca_is_refused(smtp_starttls_server):
    sink, _ = smtp_starttls_server
    mailer = SmtpMailer("127.0.0.1", sink.port, "starttls", timeout=5)  # system CAs only
    with pytest.raises(TransientFailure, match=r"CERTIFICATE_VERIFY_FAILED|certificate"):
        mailer.transmit(outgoing())
    assert sink.messages == []


def test_a_4xx_answer_is_transient_and_a_5xx_answer_is_permanent(smtp_server):
    mailer = SmtpMailer("127.0.0.1", smtp_server.port, "none", timeout=5)
    smtp_server.answer = "451 4.3.0 try again later"
    with pytest.raises(TransientFailure, match="451"):
        mailer.transmit(outgoing())
    smtp_server.answer = "550 5.1.1 mailbox unavailable"
    with pytest.raises(PermanentFailure, match="550"):
        mailer.transmit(outgoing())
    assert smtp_server.messages == []


def test_messages_from_one_thread_share_one_connection(smtp_server):
    mailer = SmtpMailer("127.0.0.1", smtp_server.port, "none", timeout=5)
    for subject in ("first", "second", "third"):
        mailer.transmit(outgoing(subject))
    assert smtp_server.subjects() == ["first", "second", "third"]
    assert len(set(smtp_server.peers)) == 1


def test_a_refused_message_leaves_the_connection_usable_for_the_next(smtp_server):
    mailer = SmtpMailer("127.0.0.1", smtp_server.port, "none", timeout=5)
    smtp_server.answer = "451 4.3.0 try again later"
    with pytest.raises(TransientFailure, match="451"):
        mailer.transmit(outgoing("refused"))
    smtp_server.answer = "250 OK"
    mailer.transmit(outgoing("accepted"))
    assert smtp_server.subjects() == ["accepted"]


def test_a_connection_the_server_dropped_is_opened_again_and_the_message_goes_once(smtp_server_dropping_idle):
    sink = smtp_server_dropping_idle
    mailer = SmtpMailer("127.0.0.1", sink.port, "none", timeout=5)
    mailer.transmit(outgoing("before"))
    assert _closed_by_server(mailer._local.client.sock, within=10)
    mailer.transmit(outgoing("after"))
    assert sink.subjects() == ["before", "after"]
    assert len(set(sink.peers)) == 2


def _closed_by_server(sock, within: float) -> bool:
    """Wait until the server's end of ``sock`` is closed (an empty read)."""
    import select
    import socket
    import time

    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        readable, _, _ = select.select([sock], [], [], 0.05)
        if readable:
            try:
                if sock.recv(1024, socket.MSG_PEEK) == b"":
                    return True
                sock.recv(1024)  # the server's goodbye line, then the close
            except OSError:
                return True
    return False


def test_a_closed_port_is_a_transient_failure():
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(TransientFailure, match=f"127.0.0.1:{port}"):
        SmtpMailer("127.0.0.1", port, "none", timeout=2).transmit(outgoing())


def test_an_email_refused_for_good_is_sent_again_by_post(smtp_server, tmp_path):
    from sqlalchemy import select

    from adapters.orm import DebtorRow, MessageRow
    from adapters.store import transaction
    from tests.integration.test_flow import at
    from tests.support import advance, ingest, invoice_issued, make_test_app

    app = make_test_app(
        f"sqlite:///{tmp_path / 'r.db'}",
        tmp_path,
        at("2026-03-02 10:00"),
        smtp_host="127.0.0.1",
        smtp_port=smtp_server.port,
        smtp_tls="none",
    )
    ingest(app, invoice_issued("F-1", "2026-04-01"))
    smtp_server.answers["RCPT"] = "550 5.1.1 mailbox unavailable"
    advance(app, at("2026-03-27 09:00"))  # pre_due e-mail refused: the recipient's address
    advance(app, at("2026-03-27 09:01"))  # the step, re-planned, goes by post
    with transaction(app.sessions) as session:
        sent = session.execute(
            select(MessageRow.step, MessageRow.channel, MessageRow.status).order_by(MessageRow.id)
        ).all()
        bounced = session.get(DebtorRow, ("default", "D-1")).email_bounced
    assert sent == [("pre_due", "email", "failed"), ("pre_due", "letter", "sent")]
    assert bounced is True
    assert smtp_server.messages == []
    assert len(list((tmp_path / "outbox" / "letters").glob("*.pdf"))) == 1
    app.dispose()


@pytest.mark.parametrize("size", [1_000, 200_000], ids=["one write", "two writes"])
@pytest.mark.parametrize("ending", [b"\r\n", b""], ids=["ends with CRLF", "no final CRLF"])
def test_a_message_arrives_whole_whatever_its_size_its_dot_lines_and_its_end(smtp_server, size, ending):
    # below 64 KiB the message and its ending go in one write, above in two (no copy of a
    # large message): either way the server gets every line, a line starting with a dot
    # included (sent doubled, received as it was), and the last line without a CRLF of its own
    lines = [
        b".a line that starts with a dot" if n % 7 == 0 else b"line %d of the statement" % n
        for n in range(size // 24)
    ]
    body = b"\r\n".join(lines) + ending
    content = (
        b"From: Relance <relance@creancier.example>\r\nTo: compta@acme.example\r\n"
        b"Subject: big\r\nMessage-ID: <big@creancier.example>\r\n\r\n" + body
    )
    mailer = SmtpMailer("127.0.0.1", smtp_server.port, "none", timeout=5)
    mailer.transmit(
        Outgoing("<big@creancier.example>", "email", "compta@acme.example", "big", content, "D-1")
    )
    mailer.transmit(outgoing("after it"))  # the connection is still in step
    assert smtp_server.subjects() == ["big", "after it"]
    received = smtp_server.messages[0].get_payload(decode=True).rstrip(b"\r\n").split(b"\r\n")
    assert received == lines


def test_messages_in_turn_start_no_thread_each_and_leave_no_deadline_behind(smtp_server):
    """Each transaction's deadline is watched by the process's one deadline thread: sending
    starts no thread per message, and a message accepted leaves no deadline to fire."""
    import threading

    from adapters.transports import _DEADLINES

    mailer = SmtpMailer("127.0.0.1", smtp_server.port, "none", timeout=5)
    mailer.transmit(outgoing())  # the connection, and the deadline thread if not started yet
    started = {thread.ident for thread in threading.enumerate()}
    for _ in range(20):
        mailer.transmit(outgoing())
    assert {thread.ident for thread in threading.enumerate()} - started == set()
    assert len(smtp_server.messages) == 21
    assert _DEADLINES._due == {}
    assert [t.name for t in threading.enumerate()].count("relance-smtp-deadlines") == 1
