"""PIPELINING (RFC 2920): when the server offers it, MAIL FROM, RCPT TO and DATA leave in one
write and their answers are read in order; each refusal is classified as when the commands
go one at a time, and the connection stays in step for the next message. Without the
extension, one command at a time as before."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from adapters.transports import SmtpMailer
from handlers.ports import AmbiguousTransmission, PermanentFailure, RecipientRefused, TransientFailure
from tests.integration.test_smtp import _closed_by_server, outgoing
from tests.smtp_scripted import ScriptedSmtp

ENVELOPE = b"MAIL FROM:<relance@creancier.example>\r\nRCPT TO:<compta@acme.example>\r\nDATA\r\n"


@pytest.fixture
def pipelining() -> Iterator[ScriptedSmtp]:
    server = ScriptedSmtp(extensions=["8BITMIME", "PIPELINING"]).start()
    yield server
    server.stop()


@pytest.fixture
def one_at_a_time() -> Iterator[ScriptedSmtp]:
    server = ScriptedSmtp(extensions=["8BITMIME"]).start()
    yield server
    server.stop()


def mailer(server: ScriptedSmtp) -> SmtpMailer:
    return SmtpMailer("127.0.0.1", server.port, "none", timeout=5)


def test_the_envelope_arrives_in_one_read_when_the_server_offers_pipelining(pipelining):
    mailer(pipelining).transmit(outgoing())

    assert ENVELOPE in pipelining.reads  # MAIL, RCPT and DATA together, then the message
    assert pipelining.envelopes == [
        ("MAIL FROM:<relance@creancier.example>", ["RCPT TO:<compta@acme.example>"])
    ]
    (content,) = pipelining.received
    assert b"Message-ID: <abc@creancier.example>" in content


def test_without_pipelining_each_command_waits_for_its_answer(one_at_a_time):
    mailer(one_at_a_time).transmit(outgoing())

    commands = [read for read in one_at_a_time.reads if read[:4].upper() in (b"MAIL", b"RCPT", b"DATA")]
    assert [read[:4].upper() for read in commands] == [b"MAIL", b"RCPT", b"DATA"]
    assert all(read.count(b"\r\n") == 1 for read in commands)  # one command per read
    assert one_at_a_time.copies() == 1


def test_messages_in_turn_share_one_connection_each_envelope_in_one_write(pipelining):
    sender = mailer(pipelining)
    for subject in ("first", "second", "third"):
        sender.transmit(outgoing(subject))

    assert pipelining.connections == 1 and pipelining.copies() == 3
    assert sum(read == ENVELOPE for read in pipelining.reads) == 3


@pytest.mark.parametrize(
    ("command", "answer", "failure", "stage"),
    [
        ("RCPT", "550 5.1.1 no such user", RecipientRefused, "RCPT TO"),
        ("RCPT", "553 5.1.3 bad address", RecipientRefused, "RCPT TO"),
        ("RCPT", "452 4.2.2 over quota", TransientFailure, "RCPT TO"),
        ("RCPT", "552 5.2.2 full", TransientFailure, "RCPT TO"),
        ("RCPT", "554 5.7.1 relay denied", PermanentFailure, "RCPT TO"),
        ("MAIL", "554 5.7.1 sender refused by policy", PermanentFailure, "MAIL FROM"),
        ("MAIL", "451 4.3.0 try later", TransientFailure, "MAIL FROM"),
        ("DATA", "554 5.7.1 no thanks", PermanentFailure, "DATA"),
    ],
)
def test_a_pipelined_refusal_is_classified_at_its_own_command_and_the_next_message_goes(
    pipelining, command, answer, failure, stage
):
    sender = mailer(pipelining)
    pipelining.answers[command] = answer

    with pytest.raises(failure) as raised:
        sender.transmit(outgoing("refused"))

    assert type(raised.value) is failure  # a RCPT refusal that is not the address's is no bounce
    assert raised.value.code == int(answer[:3])
    assert str(raised.value).startswith(f"SMTP {answer[:3]} to {stage}:")
    assert pipelining.copies() == 0
    del pipelining.answers[command]
    sender.transmit(outgoing("accepted"))  # answers read to the end: the connection is in step
    assert pipelining.copies() == 1 and pipelining.connections == 1


def test_a_data_accepted_after_a_refused_recipient_gets_an_empty_message_and_nothing_is_delivered(pipelining):
    pipelining.answers["RCPT"] = "550 5.1.1 no such user"
    pipelining.answers["DATA"] = "354 go ahead anyway"  # a server that should have refused DATA
    sender = mailer(pipelining)

    with pytest.raises(RecipientRefused):
        sender.transmit(outgoing("refused"))

    pipelining.answers.clear()
    sender.transmit(outgoing("accepted"))
    assert pipelining.connections == 1 and pipelining.copies() == 1
    assert b"Subject: accepted" in pipelining.received[0]


def test_a_pipelined_connection_lost_after_the_message_is_ambiguous():
    server = ScriptedSmtp(extensions=["PIPELINING"], drop_after_data=True).start()
    try:
        with pytest.raises(AmbiguousTransmission):
            mailer(server).transmit(outgoing())
        assert server.copies() == 1
    finally:
        server.stop()


def test_a_kept_connection_the_server_dropped_is_opened_again_and_the_message_goes_once(
    smtp_pipelining_dropping_idle,
):
    sink = smtp_pipelining_dropping_idle
    sender = SmtpMailer("127.0.0.1", sink.port, "none", timeout=5)
    sender.transmit(outgoing("before"))
    assert _closed_by_server(sender._local.client.sock, within=10)
    sender.transmit(outgoing("after"))
    assert sink.subjects() == ["before", "after"]
    assert len(set(sink.peers)) == 2


@pytest.fixture
def smtp_pipelining_dropping_idle():
    from tests.conftest import SmtpSink, _start

    sink = SmtpSink("127.0.0.1", 0)
    controller = _start(sink, pipelining=True, timeout=0.3)
    yield sink
    controller.stop()
