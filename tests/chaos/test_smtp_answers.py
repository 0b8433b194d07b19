"""SMTP answers on the real delivery path, in process with a virtual clock (the back-off is
30 s doubling and the product has no setting to shorten it): down/4xx are retried after the
back-off and delivered once; a 550 to RCPT TO fails the e-mail and the step goes out by post.

Real PostgreSQL (a copy of the chaos template is not needed: a fresh database), loopback SMTP,
``make_test_app`` + the scheduler tick + ``handlers.delivery.deliver``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from adapters.orm import DebtorRow, MessageRow, PlannedStep
from adapters.store import transaction
from tests.chaos.harness import PgCluster, Sink, record, smtp_app
from tests.support import advance

pytestmark = pytest.mark.chaos

INVOICES = 20


@pytest.fixture(params=[False, True], ids=["one at a time", "pipelining"])
def sink(request) -> Iterator[Sink]:
    """The loopback server, without and with PIPELINING: the same outcomes."""
    sink = Sink(pipelining=request.param).start()
    yield sink
    sink.stop()


@pytest.fixture
def app(pg_cluster: PgCluster, sink: Sink, tmp_path):
    app = smtp_app(pg_cluster, sink.port, tmp_path, INVOICES)
    yield app
    app.dispose()


def _messages(app):
    with transaction(app.sessions) as session:
        return session.execute(select(MessageRow).order_by(MessageRow.id)).scalars().all()


def _tally_and_record(test, fault, sink, expected, **extra):
    tally = sink.tally()
    line = record(
        test,
        fault,
        {"reminders": expected, "mode": "in-process, virtual clock"},
        tally,
        expected,
        {},
        **extra,
    )
    assert tally["conflicting"] == 0 and tally["duplicated"] == 0, line
    return line


@pytest.mark.parametrize("fault", ["down", "451"])
def test_temporary_smtp_failures_are_retried_after_the_back_off_then_delivered(app, sink, fault):
    now = app.clock.now()
    if fault == "down":
        sink.stop()
    else:
        sink.answer = "451 4.3.0 try again later"
    advance(app, now)  # attempt 1 fails: back-off 30 s
    assert {m.status for m in _messages(app)} == {"pending"}
    assert all(m.attempts == 1 and m.last_error for m in _messages(app))
    advance(app, now + timedelta(seconds=29))  # still inside the back-off: nothing
    assert all(m.attempts == 1 for m in _messages(app))
    advance(app, now + timedelta(seconds=31))  # attempt 2 fails: back-off 60 s
    assert all(m.attempts == 2 for m in _messages(app))
    if fault == "down":
        sink.start()  # same port
    else:
        sink.answer = "250 OK"
    started = time.monotonic()
    advance(app, now + timedelta(seconds=31 + 59))
    assert sink.count() == 0  # back-off of 60 s not over yet
    advance(app, now + timedelta(seconds=31 + 61))  # attempt 3 goes out
    rows = _messages(app)
    assert {m.status for m in rows} == {"sent"} and {m.attempts for m in rows} == {3}
    assert sink.message_ids() == {m.message_id for m in rows}
    _tally_and_record(
        f"smtp_{fault}_inprocess",
        "SMTP refused connections" if fault == "down" else "SMTP answered 451",
        sink,
        INVOICES,
        attempts=3,
        backoffs_s=[30, 60],
        recovery_s=round(time.monotonic() - started, 2),
        pipelining=sink.pipelining,
    )


def test_a_permanent_smtp_refusal_fails_the_email_and_sends_the_step_by_post(app, sink):
    now = app.clock.now()
    sink.rcpt_answer = "550 5.1.1 mailbox unavailable"  # the recipient's address refused
    advance(app, now)
    rows = _messages(app)
    assert {(m.channel, m.status) for m in rows} == {("email", "failed")}
    with transaction(app.sessions) as session:
        assert all(d.email_bounced for d in session.execute(select(DebtorRow)).scalars())
        steps = session.execute(select(PlannedStep).where(PlannedStep.step == "pre_due")).scalars().all()
        assert {s.status for s in steps} == {"planned"}  # re-planned at once, by post
    advance(app, now + timedelta(seconds=1))
    rows = _messages(app)
    letters = [m for m in rows if m.channel == "letter"]
    assert len(letters) == INVOICES and {m.status for m in letters} == {"sent"}
    pdfs = sorted((app.settings.outbox_dir / "letters").glob("*.pdf"))
    assert len(pdfs) == INVOICES and all(p.read_bytes().startswith(b"%PDF") for p in pdfs)
    advance(app, now + timedelta(minutes=10))  # nothing more leaves
    assert len(_messages(app)) == 2 * INVOICES and sink.count() == 0
    record(
        "smtp_550_inprocess",
        "SMTP answered 550 to every RCPT TO",
        {"reminders": INVOICES, "mode": "in-process, virtual clock"},
        {**sink.tally(), "unique": len(letters)},
        INVOICES,
        {},
        emails_failed=INVOICES,
        letters_written=len(pdfs),
        refused_at_smtp=sink.refused,
        pipelining=sink.pipelining,
    )
