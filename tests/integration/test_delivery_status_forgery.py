"""Delivery statuses cannot be forged (docs/events.md, ``delivery.status``): Message-IDs
carry a keyed part, a status is applied only to a message relance sent on a channel where
that status exists, and with a signing key configured only signed statuses are accepted."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from adapters.orm import DebtorRow, MessageRow, RejectedEvent
from adapters.store import transaction
from handlers import evidence
from handlers.messages import stable_id
from tests.support import advance, ingest, invoice_issued, make_test_app

PARIS = ZoneInfo("Europe/Paris")
START = datetime(2026, 3, 2, 10, tzinfo=PARIS)


@pytest.fixture
def app(database_url, tmp_path):
    application = make_test_app(database_url, tmp_path, START)
    yield application
    application.dispose()


def sent_email(app) -> str:
    ingest(app, invoice_issued("F-1", "2026-04-01"))
    advance(app, datetime(2026, 3, 27, 9, tzinfo=PARIS))
    with transaction(app.sessions) as session:
        return session.execute(select(MessageRow.message_id)).scalar_one()


def status(message_id: str, value: str, event_id: str = "st-1") -> dict:
    return {
        "event_id": event_id,
        "type": "delivery.status",
        "occurred_at": "2026-03-27T10:00:00+01:00",
        "message_id": message_id,
        "status": value,
        "at": "2026-03-27T09:05:00+01:00",
    }


def bounced_flag(app) -> bool:
    with transaction(app.sessions) as session:
        return session.execute(select(DebtorRow.email_bounced).where(DebtorRow.id == "D-1")).scalar_one()


def rejections(app) -> list[str]:
    with transaction(app.sessions) as session:
        return [
            row.reason for row in session.execute(select(RejectedEvent).order_by(RejectedEvent.id)).scalars()
        ]


def test_the_message_id_cannot_be_computed_from_the_invoice_and_step(app):
    sent = sent_email(app)
    offline = f"<{stable_id('email', 'F-1/pre_due')}@{sent.split('@')[1]}"
    assert sent != offline
    assert sent.startswith("<") and sent.endswith(">")


def test_the_message_id_is_stable_under_one_key_and_differs_under_another(tmp_path, database_url):
    from handlers.reminders import message_id_for

    claims = [("F-1", "pre_due")]
    one = message_id_for("email", claims, "example.fr", b"k" * 32)
    assert one == message_id_for("email", claims, "example.fr", b"k" * 32)
    assert one != message_id_for("email", claims, "example.fr", b"j" * 32)
    assert one != message_id_for("letter", claims, "example.fr", b"k" * 32)


def test_the_key_is_generated_once_in_the_data_dir_and_kept(database_url, tmp_path):
    first = make_test_app(database_url, tmp_path, START)
    key = first.ctx.message_key
    first.dispose()
    again = make_test_app(database_url, tmp_path, START)
    assert again.ctx.message_key == key and len(key) >= 32
    assert (tmp_path / "message-id.key").stat().st_mode & 0o077 == 0
    again.dispose()


def test_a_status_for_an_unknown_message_is_rejected_and_never_applied(app):
    sent = sent_email(app)
    forged = sent.replace(sent[1:9], "00000000")
    reason = f"message_id: no message sent by relance has the Message-ID {forged}"
    assert ingest(app, status(forged, "bounced")) == [reason]
    assert not bounced_flag(app)
    assert rejections(app) == [reason]


def test_a_registered_letter_status_for_an_email_is_rejected(app):
    sent = sent_email(app)
    reason = "status: 'acknowledged' is only for a registered letter; this message went by email"
    assert ingest(app, status(sent, "acknowledged")) == [reason]
    assert rejections(app) == [reason]


def test_a_bounce_for_an_email_is_applied(app):
    sent = sent_email(app)
    assert ingest(app, status(sent, "bounced")) == ["accepted"]
    assert bounced_flag(app)


def signed(event: dict, key: bytes) -> dict:
    text = evidence.canonical({k: v for k, v in event.items() if k != "signature"})
    return {**event, "signature": hmac.new(key, text.encode(), hashlib.sha256).hexdigest()}


def test_with_a_signing_key_only_signed_statuses_are_accepted(database_url, tmp_path):
    key = "s3cret-s3cret-s3cret"
    app = make_test_app(database_url, tmp_path, START, delivery_status_key=key)
    try:
        sent = sent_email(app)
        unsigned = "signature: required (a signing key for delivery statuses is configured)"
        assert ingest(app, status(sent, "bounced")) == [unsigned]
        forged = {**status(sent, "bounced", "st-2"), "signature": "0" * 64}
        assert ingest(app, forged) == ["signature: does not match the event"]
        assert not bounced_flag(app)
        assert rejections(app) == [unsigned, "signature: does not match the event"]
        assert ingest(app, signed(status(sent, "bounced", "st-3"), key.encode())) == ["accepted"]
        assert bounced_flag(app)
    finally:
        app.dispose()
