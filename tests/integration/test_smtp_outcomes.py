"""Who is at fault when an SMTP server refuses: only a refusal of the recipient's address
(RCPT TO answered 550, 551 or 553) is the debtor's bounce and sends the step by post; a
refused login, a message too big, a policy refusal, TLS and connection errors are ours:
retried when transient, failed with an error for the operator when permanent, and the
debtor's e-mail is left alone."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from adapters.orm import DebtorRow, MessageRow
from adapters.store import transaction
from config.logging import configure_logging
from tests.conftest import SmtpSink, _start
from tests.integration.test_flow import at
from tests.smtp_scripted import ScriptedSmtp
from tests.support import advance, ingest, invoice_issued, make_test_app


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    yield stream


@pytest.fixture(params=["one at a time", "pipelining"])
def smtp_server(request) -> Iterator[SmtpSink]:
    """The loopback server, without and with PIPELINING: the outcomes are the same."""
    sink = SmtpSink("127.0.0.1", 0)
    controller = _start(sink, pipelining=request.param == "pipelining")
    yield sink
    controller.stop()


def events(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]


def run_pre_due(tmp_path, port: int, **smtp) -> tuple[list[tuple[str, str, str]], bool, int]:
    """Send the pre_due reminder of one invoice through the SMTP server at ``port``, then
    give the re-planned steps their turn; return (step, channel, status) per message, whether
    the debtor's e-mail is marked bounced, and how many letters were written."""
    app = make_test_app(
        f"sqlite:///{tmp_path / 'r.db'}",
        tmp_path,
        at("2026-03-02 10:00"),
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_tls="none",
        smtp_timeout=5,
        **smtp,
    )
    try:
        ingest(app, invoice_issued("F-1", "2026-04-01"))
        advance(app, at("2026-03-27 09:00"))
        advance(app, at("2026-03-27 09:01"))
        with transaction(app.sessions) as session:
            rows = session.execute(
                select(MessageRow.step, MessageRow.channel, MessageRow.status).order_by(MessageRow.id)
            ).all()
            bounced = bool(session.get(DebtorRow, ("default", "D-1")).email_bounced)
        letters = len(list((tmp_path / "outbox" / "letters").glob("*.pdf")))
        return [tuple(row) for row in rows], bounced, letters
    finally:
        app.dispose()


@pytest.mark.parametrize(
    "code", ["550 5.1.1 no such user", "551 5.1.6 user not local", "553 5.1.3 bad address"]
)
def test_a_recipient_refused_at_rcpt_is_a_bounce_and_the_step_goes_by_post(smtp_server, tmp_path, logs, code):
    smtp_server.answers["RCPT"] = code
    rows, bounced, letters = run_pre_due(tmp_path, smtp_server.port)
    assert rows == [("pre_due", "email", "failed"), ("pre_due", "letter", "sent")]
    assert bounced is True and letters == 1
    assert [e["event"] for e in events(logs) if e["event"].startswith("message.b")] == ["message.bounced"]


@pytest.mark.parametrize(
    ("command", "answer", "code"),
    [
        ("MAIL", "554 5.7.1 sender refused by policy", 554),
        ("MAIL", "550 5.7.1 sender not allowed", 550),
        ("DATA", "552 5.3.4 message too big", 552),
        ("DATA", "554 5.7.1 message refused by policy", 554),
        ("DATA", "550 5.7.1 content refused", 550),
        ("RCPT", "554 5.7.1 relay denied", 554),
    ],
)
def test_a_refusal_that_is_not_about_the_recipient_fails_the_message_without_blaming_the_debtor(
    smtp_server, tmp_path, logs, command, answer, code
):
    if command == "DATA":
        smtp_server.answer = answer
    else:
        smtp_server.answers[command] = answer
    rows, bounced, letters = run_pre_due(tmp_path, smtp_server.port)
    assert rows == [("pre_due", "email", "failed")]
    assert bounced is False and letters == 0
    failed = [e for e in events(logs) if e["event"] == "message.failed"]
    assert [(e["level"], e["smtp_code"]) for e in failed] == [("error", code)]
    assert not [e for e in events(logs) if e["event"] == "message.bounced"]


@pytest.fixture
def smtp_server_requiring_login() -> Iterator[SmtpSink]:
    """An SMTP server that answers 530 to MAIL FROM without a login, and 535 to any login."""
    from aiosmtpd.smtp import AuthResult

    sink = SmtpSink("127.0.0.1", 0)
    controller = _start(
        sink,
        auth_required=True,
        auth_require_tls=False,
        authenticator=lambda *_: AuthResult(success=False, handled=False),
    )
    yield sink
    controller.stop()


@pytest.mark.parametrize(
    ("login", "code"), [({}, 530), ({"smtp_user": "relance", "smtp_password": "wrong"}, 535)]
)
def test_a_refused_login_is_our_failure_not_a_bounce(
    smtp_server_requiring_login, tmp_path, logs, login, code
):
    rows, bounced, letters = run_pre_due(tmp_path, smtp_server_requiring_login.port, **login)
    assert rows == [("pre_due", "email", "failed")]
    assert bounced is False and letters == 0
    failed = [e for e in events(logs) if e["event"] == "message.failed"]
    assert [(e["level"], e["smtp_code"]) for e in failed] == [("error", code)]


def test_a_server_refusing_service_on_connect_fails_the_message_without_blaming_the_debtor(tmp_path, logs):
    server = ScriptedSmtp(greeting="554 5.7.1 no service for you").start()
    try:
        rows, bounced, letters = run_pre_due(tmp_path, server.port)
    finally:
        server.stop()
    assert rows == [("pre_due", "email", "failed")]
    assert bounced is False and letters == 0
    assert [e["smtp_code"] for e in events(logs) if e["event"] == "message.failed"] == [554]


@pytest.mark.parametrize(
    ("command", "answer"),
    [
        ("RCPT", "450 4.2.1 mailbox busy"),
        ("RCPT", "452 4.2.2 over quota"),
        ("MAIL", "421 4.3.2 shutting down"),
        ("RCPT", "552 5.2.2 full"),
    ],
)
def test_a_temporary_refusal_waits_for_its_back_off_and_blames_no_one(
    smtp_server, tmp_path, logs, command, answer
):
    smtp_server.answers[command] = answer
    rows, bounced, letters = run_pre_due(tmp_path, smtp_server.port)
    assert rows == [("pre_due", "email", "pending")]
    assert bounced is False and letters == 0
    said = [e["event"] for e in events(logs) if e["event"].startswith("message.")]
    assert said and set(said) == {"message.retry"}  # tried again after its back-off, never failed
