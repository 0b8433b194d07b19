"""The send path on a real store: due steps become messages, once, re-checked at send time."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import datetime, timedelta
from email import message_from_bytes
from email.policy import default as default_policy
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from adapters.orm import EvidenceRecord, MessageItem, MessageRow, PlannedStep
from adapters.store import transaction
from handlers.messages import StepDue
from handlers.policy import PolicySet
from scheduler.tick import tick
from tests.support import advance, ingest, invoice_issued, make_test_app, payment, run_until

PARIS = ZoneInfo("Europe/Paris")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=PARIS)


@pytest.fixture
def app(database_url, tmp_path):
    application = make_test_app(database_url, tmp_path, at("2026-03-02 10:00"))
    yield application
    application.dispose()


def outbox_emails(app) -> list:
    folder = app.settings.outbox_dir / "email"
    return sorted(folder.glob("*.eml")) if folder.exists() else []


def count(app, model) -> int:
    with transaction(app.sessions) as session:
        return session.execute(select(func.count()).select_from(model)).scalar_one()


def test_a_due_pre_due_step_writes_one_eml_file_with_the_invoice_and_amount(app):
    assert ingest(app, invoice_issued("F-1", "2026-04-01", "1234.56")) == ["accepted"]
    advance(app, at("2026-03-27 09:00"))  # D-5 = Friday 27 March, window opens 09:00
    files = outbox_emails(app)
    assert len(files) == 1
    message = message_from_bytes(files[0].read_bytes(), policy=default_policy)
    assert message["To"] == "compta@acme.example"
    assert "F-1" in str(message["Subject"])
    body = message.get_body(("plain",)).get_content()
    assert "1 234,56 €" in body and "échue le 1er avril 2026" in body
    assert message["Message-ID"].endswith("@localhost>")


def test_nothing_is_sent_before_the_window_opens(app):
    ingest(app, invoice_issued("F-1", "2026-04-01"))
    advance(app, at("2026-03-27 08:59"))
    assert outbox_emails(app) == []
    advance(app, at("2026-03-27 09:00"))
    assert len(outbox_emails(app)) == 1


def test_a_scheduler_event_delivered_three_times_sends_one_message(app):
    ingest(app, invoice_issued("F-1", "2026-04-01"))
    app.clock.set(at("2026-03-27 09:00"))
    tick(app.sessions, app.publisher, app.clock.now(), lease=app.ctx.lease, batch_size=10)
    app.publisher.drain(deliveries=3)
    assert count(app, MessageRow) == 1
    assert len(outbox_emails(app)) == 1


def test_a_step_re_emitted_after_its_lease_is_not_sent_again(app):
    ingest(app, invoice_issued("F-1", "2026-04-01"))
    advance(app, at("2026-03-27 09:00"))
    with transaction(app.sessions) as session:
        step = session.execute(select(PlannedStep).where(PlannedStep.step == "pre_due")).scalar_one()
        step_id, due_at = step.id, step.due_at
    # a duplicate of the original message arrives much later, with a new message id
    app.publisher.publish([StepDue("invoice.due", step_id, due_at + timedelta(seconds=1))])
    app.publisher.drain()
    assert count(app, MessageRow) == 1


def test_a_payment_between_emit_and_send_wins_and_the_step_is_skipped(app):
    ingest(app, invoice_issued("F-1", "2026-04-01"))
    app.clock.set(at("2026-04-07 09:00"))
    tick(app.sessions, app.publisher, app.clock.now(), lease=app.ctx.lease, batch_size=10)
    assert len(app.publisher.queue) >= 1  # emitted, not yet handled
    ingest(app, payment("F-1", "1200.00", "2026-04-06"))
    app.publisher.drain()
    assert count(app, MessageRow) == 0
    with transaction(app.sessions) as session:
        kinds = session.execute(select(EvidenceRecord.kind)).scalars().all()
        statuses = set(
            session.execute(
                select(PlannedStep.status).where(PlannedStep.step != "prescription_warning")
            ).scalars()
        )
    assert "reminder.sent" not in kinds
    assert statuses <= {"skipped", "cancelled"}


def test_two_invoices_of_one_debtor_due_the_same_day_go_in_one_message(app):
    ingest(app, invoice_issued("F-1", "2026-04-01", "100.00"), invoice_issued("F-2", "2026-04-01", "200.00"))
    advance(app, at("2026-03-27 09:00"))
    files = outbox_emails(app)
    assert len(files) == 1
    body = message_from_bytes(files[0].read_bytes(), policy=default_policy).get_body(("plain",)).get_content()
    assert "F-1" in body and "F-2" in body and "300,00 €" in body
    assert count(app, MessageItem) == 2


def test_the_whole_ladder_ends_in_a_case_with_the_recommended_procedure(app):
    ingest(app, invoice_issued("F-1", "2026-04-01", "1200.00"))
    run_until(app, at("2026-12-31 00:00"))
    with transaction(app.sessions) as session:
        steps = dict(session.execute(select(PlannedStep.step, PlannedStep.status)).all())
        channels = session.execute(select(MessageRow.step, MessageRow.channel).order_by(MessageRow.id)).all()
        from adapters.orm import CaseRow

        case = session.execute(select(CaseRow)).scalar_one()
    assert steps.pop("prescription_warning") == "planned"  # in 2031
    assert steps == {
        s: "done"
        for s in (
            "pre_due",
            "due",
            "notice",
            "reminder_1",
            "reminder_2",
            "reminder_3",
            "call",  # passed: the debtor has no phone number
            "formal_notice",
            "escalation",
        )
    }
    assert ("formal_notice", "registered_letter") in channels
    assert ("reminder_2", "letter") in channels
    assert case.recommended_procedure == "procedure_simplifiee"
    assert case.principal + case.late_interest + case.indemnities == case.amount_claimed
    assert case.indemnities == 40


@pytest.mark.postgres
def test_two_schedulers_ticking_at_once_emit_each_step_once(postgres_url, tmp_path):
    app = make_test_app(postgres_url, tmp_path, at("2026-03-02 10:00"))
    debtors = [{**invoice_issued("x", "2026-04-01")["debtor"], "id": f"D-{i}"} for i in range(60)]
    ingest(app, *[invoice_issued(f"F-{i}", "2026-04-01", debtor=d) for i, d in enumerate(debtors)])
    now = at("2026-03-27 09:00")
    app.clock.set(now)
    publishers = [type(app.publisher)(), type(app.publisher)()]
    barrier = threading.Barrier(2)

    def run(publisher):
        barrier.wait()
        tick(app.sessions, publisher, now, lease=app.ctx.lease, batch_size=7)

    threads = [threading.Thread(target=run, args=(p,)) for p in publishers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    emitted = [t.step_id for p in publishers for t in p.published]
    assert len(emitted) == 60 and len(set(emitted)) == 60
    assert all(p.published for p in publishers)  # both took part
    app.dispose()


def test_a_bounced_email_sends_the_next_step_by_post(app):
    ingest(app, invoice_issued("F-1", "2026-04-01"))
    advance(app, at("2026-03-27 09:00"))
    with transaction(app.sessions) as session:
        first = session.execute(select(MessageRow.message_id)).scalar_one()
    bounce = {
        "event_id": "b-1",
        "type": "delivery.status",
        "occurred_at": "2026-03-27T10:00:00+01:00",
        "message_id": first,
        "status": "bounced",
        "at": "2026-03-27T09:05:00+01:00",
    }
    assert ingest(app, bounce) == ["accepted"]
    advance(app, at("2026-04-01 09:00"))
    with transaction(app.sessions) as session:
        due = session.execute(select(MessageRow.channel).where(MessageRow.step == "due")).all()
    assert [c for (c,) in due] == ["letter"]
    assert list((app.settings.outbox_dir / "letters").glob("*.pdf"))


def test_the_tick_keeps_at_most_max_in_flight_steps_emitted(app):
    debtor = invoice_issued("x", "2026-04-01")["debtor"]
    ingest(
        app, *[invoice_issued(f"F-{i}", "2026-04-01", debtor={**debtor, "id": f"D-{i}"}) for i in range(50)]
    )
    now = at("2026-03-27 09:00")
    app.clock.set(now)

    def emit() -> int:
        return tick(
            app.sessions, app.publisher, now, lease=app.ctx.lease, batch_size=7, max_in_flight=20
        ).steps

    assert emit() == 20  # the cap, in batches of 7
    assert emit() == 0  # all 20 still in flight
    app.publisher.drain()  # the workers handle them
    assert emit() == 20
    app.publisher.drain()
    assert emit() == 10
    app.publisher.drain()
    assert count(app, MessageRow) == 50


def test_a_step_the_policy_no_longer_has_is_skipped_once_and_stays_skipped(app):
    # Given an invoice planned on the default ladder, then a policy without ``pre_due``
    ingest(app, invoice_issued("F-1", "2026-04-01"))
    default = app.ctx.policies.default
    app.ctx = replace(app.ctx, policies=PolicySet(default.model_copy(update={"steps": default.steps[1:]})))
    # When its pre_due instant comes (Friday 27 March, 09:00), and again after the lease
    advance(app, at("2026-03-27 09:00"))
    advance(app, at("2026-03-27 09:00") + app.ctx.lease + timedelta(minutes=1))
    # Then the step is skipped, with one record of it, and never emitted again
    with transaction(app.sessions) as session:
        step = session.execute(select(PlannedStep).where(PlannedStep.step == "pre_due")).scalar_one()
        skipped = session.execute(
            select(func.count()).select_from(EvidenceRecord).where(EvidenceRecord.kind == "reminder.skipped")
        ).scalar_one()
        assert (step.status, step.reason, step.emit_count) == ("skipped", "step no longer in the policy", 1)
    assert skipped == 1
    assert outbox_emails(app) == []
