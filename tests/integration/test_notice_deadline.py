"""The formal notice's deadline on a real store: stated in the letter, planned from the
registered letter's expected presentation, moved later by a late acknowledgment.

Worked out by hand: F-1, 4 800,00 € due Wed 1 April 2026, default ladder. The formal notice
(D+40 = Mon 11 May) is posted at 09:00; the registered letter is expected on Wed 13 May
(2 business days: Tue 12, Wed 13); 13 + 8 = Thu 21 May, a business day, so the deadline
expires at 00:00 on Fri 22 May (Paris).
"""

from __future__ import annotations

import json
from decimal import Decimal
from io import BytesIO

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from adapters.orm import CaseRow, EvidenceRecord, MessageRow, PlannedStep
from adapters.store import transaction
from tests.integration.test_flow import at
from tests.support import advance, ingest, invoice_issued, make_test_app, run_until

MENTIONS = "Votre société SAS, SAS au capital de 10 000 €, RCS Paris 123 456 782, TVA FR11123456782"


@pytest.fixture
def app(database_url, tmp_path):
    application = make_test_app(database_url, tmp_path, at("2026-03-02 10:00"))
    ingest(application, invoice_issued("F-1", "2026-04-01", "4800.00"))
    run_until(application, at("2026-05-11 09:00"))  # up to the formal notice
    yield application
    application.dispose()


def escalation(app) -> PlannedStep:
    with transaction(app.sessions) as session:
        return session.execute(select(PlannedStep).where(PlannedStep.step == "escalation")).scalar_one()


def notice(app, channel: str) -> MessageRow:
    with transaction(app.sessions) as session:
        return session.execute(
            select(MessageRow).where(MessageRow.step == "formal_notice", MessageRow.channel == channel)
        ).scalar_one()


def status(app, message_id: str, kind: str, when: str) -> None:
    app.clock.set(at(when))
    event = {
        "event_id": f"status-{kind}-{when}",
        "type": "delivery.status",
        "occurred_at": at(when).isoformat(),
        "message_id": message_id,
        "status": kind,
        "at": at(when).isoformat(),
    }
    assert ingest(app, event) == ["accepted"]


def evidence(app, kind: str) -> list[dict]:
    with transaction(app.sessions) as session:
        rows = session.execute(select(EvidenceRecord.payload).where(EvidenceRecord.kind == kind)).scalars()
        return [json.loads(row) for row in rows]


def test_the_deadline_is_planned_from_the_expected_presentation_and_stated_in_the_letter(app):
    assert escalation(app).due_at == at("2026-05-22 00:00")  # end of Thu 21 May
    for channel in ("registered_letter", "email"):
        assert "au plus tard le 21 mai 2026." in notice(app, channel).body_text
    letter = notice(app, "registered_letter")  # its exact bytes, as stored and sent
    text = " ".join(PdfReader(BytesIO(letter.content)).pages[0].extract_text().split())
    assert "au plus tard le 21 mai 2026" in text and MENTIONS in text
    # the notice says the penalties keep running and the 40 € is owed per invoice
    assert "les pénalités de retard continuent de courir jusqu'au paiement complet" in letter.body_text


def test_a_later_acknowledgment_moves_the_deadline_and_the_case_counts_to_the_new_day(app):
    # signed for on Wed 20 May: 20 + 8 = Thu 28 May, expiring at 00:00 on Fri 29 May
    status(app, notice(app, "registered_letter").message_id, "acknowledged", "2026-05-20 10:42")
    assert escalation(app).due_at == at("2026-05-29 00:00")
    (moved,) = evidence(app, "deadline.moved")
    assert (moved["previous_deadline"], moved["deadline"]) == ("2026-05-21", "2026-05-28")
    advance(app, at("2026-05-22 00:00"))  # the old deadline: nothing happens
    with transaction(app.sessions) as session:
        assert session.execute(select(CaseRow)).scalar_one_or_none() is None
    run_until(app, at("2026-12-31 00:00"))
    with transaction(app.sessions) as session:
        case = session.execute(select(CaseRow)).scalar_one()
    # penalties 2 April to 29 May: 29 + 29 = 58 days: 4800 * .1215 * 58 / 365 = 92.6728 -> 92.67
    assert case.opened_at == at("2026-05-29 00:00")
    assert (case.late_interest, case.amount_claimed) == (Decimal("92.67"), Decimal("4932.67"))


def test_an_acknowledgment_on_the_expected_day_keeps_the_deadline(app):
    status(app, notice(app, "registered_letter").message_id, "acknowledged", "2026-05-13 11:00")
    assert escalation(app).due_at == at("2026-05-22 00:00")
    assert evidence(app, "deadline.moved") == []
