"""After a consumer's dispute is rejected, the messages that follow give the consumer
mediator's details (Code de la consommation L616-1); a business debtor's do not."""

from __future__ import annotations

from email import message_from_bytes
from email.policy import default as default_policy

import pytest

from tests.integration.test_flow import at, outbox_emails
from tests.support import DEBTOR, POLICY_WITH_MEDIATOR, ingest, invoice_issued, make_test_app, run_until

MEDIATOR_LINE = "Médiateur de la consommation CM2C, https://www.cm2c.net, 14 rue Saint-Jean, 75017 Paris"
CONSUMER = {**DEBTOR, "id": "C-1", "name": "Marie Martin", "kind": "consumer"}


@pytest.fixture
def app(database_url, tmp_path):
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY_WITH_MEDIATOR, encoding="utf-8")
    application = make_test_app(database_url, tmp_path, at("2026-03-02 10:00"), policy_file=policy)
    yield application
    application.dispose()


def dispute_then_reject(app, debtor: dict) -> None:
    ingest(app, invoice_issued("F-1", "2026-04-01", "450.00", debtor=debtor))
    ingest(
        app,
        {
            "event_id": "dispute-1",
            "type": "invoice.disputed",
            "occurred_at": "2026-03-20T10:00:00+01:00",
            "invoice_number": "F-1",
            "reason": "colis non reçu",
        },
    )
    run_until(app, at("2026-04-10 08:00"))
    ingest(
        app,
        {
            "event_id": "resolved-1",
            "type": "dispute.resolved",
            "occurred_at": "2026-04-10T08:30:00+02:00",
            "invoice_number": "F-1",
            "outcome": "rejected",
        },
    )
    run_until(app, at("2026-06-30 00:00"))


def bodies(app) -> list[str]:
    messages = [message_from_bytes(p.read_bytes(), policy=default_policy) for p in outbox_emails(app)]
    return [m.get_body(("plain",)).get_content() for m in messages]


def test_a_consumer_whose_dispute_was_rejected_is_given_the_mediator(app):
    dispute_then_reject(app, CONSUMER)
    sent = bodies(app)
    # the consumer policy (due, notice D+7, reminder_1 D+21, formal notice D+35) resumes
    # after 10 April: every message from then on names the mediator
    assert sent, "the ladder resumed"
    for body in sent:
        assert "Médiation de la consommation" in body
        assert (
            "Médiateur de la consommation CM2C, https://www.cm2c.net, 14 rue Saint-Jean, 75017 Paris" in body
        )


def test_a_business_debtor_is_not_sent_the_consumer_mediator(app):
    dispute_then_reject(app, DEBTOR)
    sent = bodies(app)
    assert sent and all("Médiation de la consommation" not in body for body in sent)
