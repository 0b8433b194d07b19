"""Catch-up after a pause or an outage: an invoice whose several steps fall due at once."""

from __future__ import annotations

from datetime import datetime
from email import message_from_bytes
from email.policy import default as default_policy
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from adapters.orm import MessageRow, PlannedStep
from adapters.store import transaction
from tests.support import advance, ingest, invoice_issued, make_test_app

PARIS = ZoneInfo("Europe/Paris")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=PARIS)


@pytest.fixture
def app(database_url, tmp_path):
    application = make_test_app(database_url, tmp_path, at("2026-03-02 10:00"))
    yield application
    application.dispose()


def test_four_overdue_steps_due_at_once_give_one_line_and_one_indemnity_in_one_message(app):
    ingest(app, invoice_issued("F-1", "2026-03-10", "1000.00"))
    # nothing ran since 2 March: pre_due, due, notice, reminder_1, reminder_2 and reminder_3
    # (D+30 = Thursday 9 April) are all due on Friday 10 April
    advance(app, at("2026-04-10 10:00"))
    emails = sorted((app.settings.outbox_dir / "email").glob("*.eml"))
    assert len(emails) == 1
    message = message_from_bytes(emails[0].read_bytes(), policy=default_policy)
    body = message.get_body(("plain",)).get_content()
    assert str(message["Subject"]).endswith(": F-1")
    assert body.count("Facture n° F-1") == 2  # its line, and its penalties line: once each
    assert body.count("40,00 €") == 2  # the one indemnity, and the total of indemnities
    # 1 000,00 € at 12,15 % (ECB 2,15 % + 10 points) for the 31 days from 11 March to
    # 10 April: 1000 × 0.1215 × 31 / 365 = 10.319… → 10,32 €; claimed 1000 + 10,32 + 40
    assert "Total des pénalités : 10,32 € ; indemnités forfaitaires : 40,00 €." in body
    with transaction(app.sessions) as session:
        messages = session.execute(select(MessageRow).order_by(MessageRow.channel)).scalars().all()
        steps = session.execute(select(PlannedStep).where(PlannedStep.event != "deadline.expired")).scalars()
        by_name = {s.step: (s.status, s.reason) for s in steps}
    assert [m.channel for m in messages] == ["email", "letter"]  # reminder_2 and 3 go by post too
    assert {m.step for m in messages} == {"reminder_3"}
    email_id = next(m.message_id for m in messages if m.channel == "email")
    covered = {name: by_name[name] for name in ("pre_due", "due", "notice", "reminder_1", "reminder_2")}
    assert covered == {
        name: ("done", f"covered by message {email_id}, sent for reminder_3") for name in covered
    }
    assert by_name["reminder_3"][0] == "done" and by_name["formal_notice"][0] == "planned"
