"""International addresses: kept as given, sent with SMTPUTF8 when the server offers it,
with the domain in IDNA when only the domain is not ASCII, and by post when neither works."""

from __future__ import annotations

import pytest

from adapters.transports import SmtpMailer
from handlers.ports import AddressUnusable, Outgoing
from tests.integration.test_smtp import outgoing
from tests.integration.test_smtp_outcomes import events, logs, run_pre_due  # noqa: F401  # fixture
from tests.smtp_scripted import ScriptedSmtp


@pytest.fixture(params=[[], ["PIPELINING"]], ids=["one at a time", "pipelining"])
def server(request):
    script = ScriptedSmtp(extensions=["8BITMIME", *request.param]).start()
    yield script
    script.stop()


def to(address: str) -> Outgoing:
    message = outgoing()
    return Outgoing(message.message_id, "email", address, message.subject, message.content, "D-1")


def test_an_address_given_in_punycode_is_kept_ascii_by_validation():
    import json

    from handlers.events import parse_event
    from tests.support import DEBTOR, invoice_issued

    event = invoice_issued("F-1", "2026-04-01", debtor={**DEBTOR, "email": "compta@xn--mnchen-3ya.de"})
    assert parse_event(json.dumps(event)).debtor.email == "compta@xn--mnchen-3ya.de"


def test_a_non_ascii_address_goes_with_smtputf8_when_the_server_offers_it(server):
    server.extensions.append("SMTPUTF8")
    SmtpMailer("127.0.0.1", server.port, "none", timeout=5).transmit(to("jürgen@münchen.de"))
    ((mail, (rcpt,)),) = server.envelopes
    assert "SMTPUTF8" in mail and rcpt.upper() == "RCPT TO:<jürgen@münchen.de>".upper()


def test_a_non_ascii_domain_goes_in_idna_when_the_server_has_no_smtputf8(server):
    SmtpMailer("127.0.0.1", server.port, "none", timeout=5).transmit(to("compta@münchen.de"))
    ((mail, (rcpt,)),) = server.envelopes
    assert "SMTPUTF8" not in mail and rcpt.upper() == "RCPT TO:<COMPTA@XN--MNCHEN-3YA.DE>"


def test_a_non_ascii_local_part_without_smtputf8_fails_for_good_and_sends_nothing(server):
    with pytest.raises(AddressUnusable, match="SMTPUTF8"):
        SmtpMailer("127.0.0.1", server.port, "none", timeout=5).transmit(to("jürgen@example.de"))
    assert server.copies() == 0


def test_an_unusable_address_sends_the_step_by_post_and_says_so(server, tmp_path, logs):  # noqa: F811
    from tests.support import DEBTOR

    DEBTOR_EMAIL = DEBTOR["email"]
    DEBTOR["email"] = "jürgen@example.de"
    try:
        rows, marked, letters = run_pre_due(tmp_path, server.port)
    finally:
        DEBTOR["email"] = DEBTOR_EMAIL
    assert rows == [("pre_due", "email", "failed"), ("pre_due", "letter", "sent")]
    assert marked is True and letters == 1  # e-mail no longer used for this debtor
    said = [e["event"] for e in events(logs) if e["event"].startswith("message.")]
    assert "message.address_unusable" in said and "message.bounced" not in said


def test_a_server_dripping_one_line_at_a_time_is_cut_off_at_the_transaction_deadline():
    """Each line comes within the read timeout, but the whole transaction would take ~6 s:
    the deadline of 2 s cuts it, as a temporary failure, and the thread is free again."""
    import time

    from handlers.ports import TransientFailure

    dripping = ScriptedSmtp(line_delay=0.5).start()
    try:
        mailer = SmtpMailer("127.0.0.1", dripping.port, "none", timeout=5, deadline=2)
        started = time.monotonic()
        with pytest.raises(TransientFailure, match="deadline of 2 s"):
            mailer.transmit(outgoing())
        waited = time.monotonic() - started
    finally:
        dripping.stop()
    assert 1.9 <= waited <= 2.5
    assert dripping.copies() == 0
