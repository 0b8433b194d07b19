"""Two creditors through the real Redis broker, the PostgreSQL store and loopback SMTP:
events sent by producers to the broker, each creditor's own policy, sender and letterhead,
and each creditor's evidence chain verifying on its own."""

from __future__ import annotations

import json

import pytest

from adapters.publisher import QUEUE
from handlers.messages import AccountingEventReceived
from relance.reports import verify_chains
from scheduler.tick import tick
from tests.brokered import brokered, on_redis
from tests.integration.test_creditors import of
from tests.integration.test_flow import at
from tests.support import DEBTOR, POLICY_WITH_MEDIATOR, invoice_issued

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

# atelier's own policy: one step, a notice 3 days after the due date (no pre-due reminder)
CREDITORS = """
[atelier]
policy = "atelier.toml"
sender = "Atelier Durand <relances@atelier-durand.example>"
[atelier.creditor]
name = "Atelier Durand SARL"
"""


@pytest.fixture
def running(postgres_url, redis_url, redis_namespace, smtp_server, tmp_path):
    (tmp_path / "atelier.toml").write_text(POLICY_WITH_MEDIATOR, encoding="utf-8")
    (tmp_path / "creditors.toml").write_text(CREDITORS, encoding="utf-8")
    settings = on_redis(
        tmp_path,
        postgres_url,
        redis_url,
        redis_namespace,
        smtp_server,
        creditors_file=tmp_path / "creditors.toml",
    )
    with brokered(settings) as (app, broker):
        yield app, broker, smtp_server


def _run_tick(app, broker, when: str) -> None:
    now = at(when)
    app.clock.set(now)
    tick(app.sessions, app.publisher, now, lease=app.ctx.lease, batch_size=50)
    broker.join(QUEUE, timeout=20_000)


def test_two_creditors_with_the_same_ids_each_get_their_own_policy_sender_and_chain(running):
    app, broker, sink = running
    theirs = DEBTOR | {"name": "Boulangerie Martin", "email": "martin@boulangerie.example"}
    events = [
        invoice_issued("F-1", "2026-04-01", "1200.00"),
        of("atelier", invoice_issued("F-1", "2026-04-01", "300.00", debtor=theirs)),
    ]
    app.publisher.publish([AccountingEventReceived(json.dumps(e), "erp") for e in events])
    broker.join(QUEUE, timeout=20_000)

    _run_tick(app, broker, "2026-03-27 09:00")  # the service's policy: pre-due 5 days before
    assert [(m["From"], m["To"]) for m in sink.messages] == [
        ("Relance <relance@creancier.example>", "compta@acme.example")
    ]
    # atelier's: a notice 3 days after 1 April, a Saturday, on the next business day (the 6th
    # is Easter Monday)
    _run_tick(app, broker, "2026-04-07 09:00")
    theirs_sent = [m for m in sink.messages if m["To"] == "martin@boulangerie.example"]
    assert len(theirs_sent) == 1
    mail = theirs_sent[0]
    assert mail["From"] == "Atelier Durand <relances@atelier-durand.example>"
    text = next(p for p in mail.walk() if p.get_content_type() == "text/plain").get_content()
    assert "300,00" in text and "Atelier Durand SARL" in text and "1 200,00" not in text

    checks = verify_chains(app)
    assert sorted(checks) == ["atelier", "default"] and all(c.ok for c in checks.values())
