"""Drafts of two creditors in one store (relance/drafts.py): each listed and acted on in
its creditor's scope, each approval in its creditor's own evidence chain.

The service's creditor ("default") and "atelier" each have an invoice F-2026-0001 due Wed 1
April 2026, with examples/policies/approval.toml: the formal notice falls at D+40 = Mon 11
May 2026, 09:00 in Paris, and is drafted on the registered letter and the e-mail.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

import pytest
from sqlalchemy import select

from adapters.orm import MessageRow
from adapters.store import transaction
from handlers.approval import NotAwaiting
from relance.drafts import approve_drafts, chosen, list_drafts
from relance.reports import verify_chains
from tests.integration.test_creditors import creditors_file, of
from tests.integration.test_flow import at
from tests.support import DEBTOR, InlinePublisher, ingest, invoice_issued, make_test_app, run_until

POLICY = Path(__file__).resolve().parents[2] / "examples" / "policies" / "approval.toml"


@pytest.fixture
def drafted(database_url, tmp_path):
    app = make_test_app(
        database_url,
        tmp_path,
        at("2026-03-02 10:00"),
        creditors_file=creditors_file(tmp_path),
        policy_file=POLICY,
    )
    other = DEBTOR | {"name": "Boulangerie Martin", "email": "martin@boulangerie.example"}
    assert ingest(
        app,
        invoice_issued("F-2026-0001", "2026-04-01", "1200.00"),
        of("atelier", invoice_issued("F-2026-0001", "2026-04-01", "300.00", debtor=other)),
    ) == ["accepted", "accepted"]
    run_until(app, at("2026-05-11 12:00"))
    yield app
    app.dispose()


def _statuses(app) -> dict[tuple[str, str], str]:
    with transaction(app.sessions) as session:
        session.scope(None)
        rows = session.execute(
            select(MessageRow.creditor_id, MessageRow.channel, MessageRow.status).where(
                MessageRow.step == "formal_notice"
            )
        ).all()
    return {(creditor, channel): status for creditor, channel, status in rows}


def test_each_creditors_drafts_are_listed_and_approved_in_its_own_scope_and_chain(drafted):
    app = drafted
    # Given both creditors' formal notices drafted
    everyone = list_drafts(app, None)
    atelier = list_drafts(app, "atelier")
    assert sorted((d.creditor_id, d.channel) for d in everyone) == [
        ("atelier", "email"),
        ("atelier", "registered_letter"),
        ("default", "email"),
        ("default", "registered_letter"),
    ]
    assert {(d.creditor_id, d.amounts["balance"]) for d in atelier} == {("atelier", "300.00")}
    # When a draft of the default creditor is named with --creditor atelier, Then it is unknown
    theirs = next(d.id for d in everyone if d.creditor_id == "default")
    with pytest.raises(NotAwaiting, match=f"no draft {theirs}"):
        chosen(app, [theirs], False, None, "atelier")
    # When marie approves atelier's drafts, and the deliveries run
    outcomes = approve_drafts(app, chosen(app, [], True, "formal_notice", "atelier"), "marie")
    cast(InlinePublisher, app.publisher).drain()
    # Then atelier's notices are sent, the default creditor's still await, and both chains verify
    assert [o.status for o in outcomes] == ["approved", "approved"]
    assert _statuses(app) == {
        ("atelier", "registered_letter"): "sent",
        ("atelier", "email"): "sent",
        ("default", "registered_letter"): "draft",
        ("default", "email"): "draft",
    }
    checks = verify_chains(app, None)
    assert set(checks) == {"default", "atelier"} and all(c.ok for c in checks.values())
