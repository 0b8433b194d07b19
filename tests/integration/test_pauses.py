"""Parking, opt-out and pauses around the formal notice, on a real store."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from adapters.orm import (
    CaseRow,
    InboxEvent,
    InvoiceRow,
    MessageRow,
    PlannedStep,
    RejectedEvent,
)
from adapters.store import transaction
from scheduler.tick import tick
from tests.integration.test_flow import at
from tests.support import DEBTOR, advance, ingest, invoice_issued, make_test_app, run_until


@pytest.fixture
def app(database_url, tmp_path):
    application = make_test_app(database_url, tmp_path, at("2026-03-02 10:00"))
    yield application
    application.dispose()


def run_until_quiet(app, limit: str = "2026-12-31 00:00") -> None:
    run_until(app, at(limit))


def test_a_parked_plan_found_invalid_is_rejected_without_harming_the_invoice(app):
    plan = {
        "event_id": "plan-1",
        "type": "payment_plan.agreed",
        "occurred_at": "2026-03-01T10:00:00+01:00",
        "debtor_id": "D-1",
        "invoice_numbers": ["F-1"],
        "installments": [{"due_date": "2026-05-01", "amount": "100.00"}],
    }
    assert ingest(app, plan) == ["parked"]
    assert ingest(app, invoice_issued("F-1", "2026-04-01", "1200.00")) == ["accepted"]
    with transaction(app.sessions) as session:
        statuses = dict(session.execute(select(InboxEvent.event_id, InboxEvent.status)).all())
        rejected = session.execute(select(RejectedEvent)).scalar_one()
        steps = session.execute(
            select(func.count()).select_from(PlannedStep).where(PlannedStep.step != "prescription_warning")
        ).scalar_one()
    assert statuses == {"plan-1": "rejected", "issued-F-1": "applied"}
    assert rejected.event_id == "plan-1"
    assert rejected.reason == "installments: total 100.00 differs from the open balance 1200.00"
    assert steps == 8  # the default ladder: seven messages and the call


def test_an_opted_out_debtor_gets_no_message_but_the_case_still_opens(app):
    quiet = {**DEBTOR, "opt_out": True}
    ingest(app, invoice_issued("F-1", "2026-04-01", "900.00", debtor=quiet))
    run_until_quiet(app)
    with transaction(app.sessions) as session:
        messages = session.execute(select(func.count()).select_from(MessageRow)).scalar_one()
        case = session.execute(select(CaseRow)).scalar_one()
    assert messages == 0
    assert case.recommended_procedure == "procedure_simplifiee"
    assert case.principal == 900


def test_a_promise_broken_after_the_formal_notice_still_ends_in_a_case(app):
    ingest(app, invoice_issued("F-1", "2026-04-01", "900.00"))
    run_until_quiet(app, "2026-05-11 09:00")  # formal notice sent Monday 11 May
    promise = {
        "event_id": "p-1",
        "type": "promise_to_pay.recorded",
        "occurred_at": "2026-05-12T10:00:00+02:00",
        "invoice_number": "F-1",
        "promised_date": "2026-05-29",
    }
    app.clock.set(at("2026-05-12 10:00"))
    assert ingest(app, promise) == ["accepted"]
    run_until_quiet(app)
    with transaction(app.sessions) as session:
        case = session.execute(select(CaseRow)).scalar_one()
        escalation = session.execute(select(PlannedStep).where(PlannedStep.step == "escalation")).scalar_one()
    # broken at the end of 29 May; the 8-day deadline runs again from Saturday 30 May (no new
    # letter is posted): 30 May + 8 = Sunday 7 June, moved to Monday 8 June, expiring at its end
    assert escalation.due_at == at("2026-06-09 00:00")
    assert case.opened_at == at("2026-06-09 00:00")


def test_a_worker_whose_clock_is_behind_leaves_the_step_for_a_later_emission(app):
    ingest(app, invoice_issued("F-1", "2026-04-01"))
    with transaction(app.sessions) as session:
        step = session.execute(select(PlannedStep).where(PlannedStep.step == "pre_due")).scalar_one()
    # the scheduler's clock says 09:00 and emits; the worker's clock still says 08:00
    tick(app.sessions, app.publisher, at("2026-03-27 09:00"), lease=app.ctx.lease, batch_size=10)
    app.clock.set(at("2026-03-27 08:00"))
    app.publisher.drain()
    with transaction(app.sessions) as session:
        assert session.get(PlannedStep, step.id).status == "planned"
    advance(app, at("2026-03-27 09:00"))
    with transaction(app.sessions) as session:
        assert session.execute(select(func.count()).select_from(MessageRow)).scalar_one() == 1
        assert session.get(PlannedStep, step.id).status == "done"


def test_the_statement_of_other_overdue_invoices_leaves_out_disputed_ones(app):
    ingest(
        app,
        invoice_issued("F-OLD", "2026-03-10", "100.00", issued="2026-02-10"),
        invoice_issued("F-DISP", "2026-03-10", "200.00", issued="2026-02-10"),
        invoice_issued("F-NEW", "2026-04-01", "300.00"),
    )
    dispute = {
        "event_id": "d-1",
        "type": "invoice.disputed",
        "occurred_at": "2026-03-02T11:00:00+01:00",
        "invoice_number": "F-DISP",
        "reason": "livraison incomplète",
    }
    ingest(app, dispute)
    # F-NEW's pre_due (27 March) is the only step due that day; F-OLD's steps were earlier
    with transaction(app.sessions) as session:
        keep = session.execute(
            select(PlannedStep.id)
            .join(InvoiceRow, InvoiceRow.id == PlannedStep.invoice_id)
            .where(InvoiceRow.number == "F-NEW", PlannedStep.step == "pre_due")
        ).scalar_one()
        session.execute(
            PlannedStep.__table__.update().where(PlannedStep.id != keep).values(status="cancelled")
        )
    advance(app, at("2026-03-27 09:00"))
    with transaction(app.sessions) as session:
        (body,) = session.execute(select(MessageRow.body_text)).scalars().all()
    statement = body.split("également échues et impayées")[1]
    assert "F-OLD" in statement and "F-DISP" not in statement
