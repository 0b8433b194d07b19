"""Signals out: facts posted, signed, to webhook subscribers on a real HTTP server on loopback,
with retries driven by the database."""

from __future__ import annotations

import json
from datetime import timedelta
from email.message import Message
from pathlib import Path

from sqlalchemy import select

from adapters.orm import SignalRow
from adapters.store import transaction
from relance.reports import status
from tests.integration.test_creditors import creditors_file, of
from tests.integration.test_flow import at
from tests.integration.test_handover import PartnerEndpoint, escalate
from tests.integration.test_handover import logs as logs  # a fixture of the tests below
from tests.support import advance, ingest, invoice_issued, make_test_app, payment

SECRET = "k3y-for-the-erp-webhook-Yt7rV1"
SECRET_ENV = "RELANCE_TEST_ERP_KEY"
ALL = ["debtor.level_changed", "case.opened", "case.closed", "invoice.settled"]


def timestamp_signed(headers: Message, body: bytes) -> bytes:
    """What a signal's signature covers: ``<X-Relance-Timestamp>.<body>``."""
    return headers.get("X-Relance-Timestamp", "").encode() + b"." + body


def webhooks_file(tmp_path: Path, url: str, events: list[str] = ALL, creditors: str = "") -> Path:
    path = tmp_path / "webhooks.toml"
    path.write_text(
        f"""
max_attempts = 3

[subscribers.erp]
url = "{url}"
secret_env = "{SECRET_ENV}"
events = {json.dumps(events)}
timeout = 5
{creditors}
""",
        encoding="utf-8",
    )
    return path


def signal_rows(app) -> list[SignalRow]:
    with transaction(app.sessions) as session:
        session.scope(None)
        return list(session.execute(select(SignalRow).order_by(SignalRow.id)).scalars())


def ingest_and_publish(app, *events: dict) -> None:
    """Ingest as the accounting_event actor does: the signals' tasks go after commit."""
    from handlers.service import ingest_one

    with app.units() as uow:
        for event in events:
            ingest_one(uow, json.dumps(event), app.clock.now(), app.ctx)
        tasks = uow.take_tasks()
    app.publisher.publish(tasks)
    app.publisher.drain()


def bodies(endpoint: PartnerEndpoint) -> list[dict]:
    return [json.loads(r["body"]) for r in endpoint.requests]


def test_a_settled_invoice_is_posted_signed_with_its_amounts(database_url, tmp_path, monkeypatch):
    monkeypatch.setenv(SECRET_ENV, SECRET)
    with PartnerEndpoint(SECRET, [], signed=timestamp_signed) as erp:
        app = make_test_app(
            database_url,
            tmp_path,
            at("2026-03-02 10:00"),
            webhooks_file=webhooks_file(tmp_path, erp.url, ["invoice.settled"]),
        )
        try:
            ingest(app, invoice_issued("F-1", "2026-04-01", "1200.00"))
            app.clock.set(at("2026-03-10 09:00"))
            ingest_and_publish(
                app, payment("F-1", "1000.00", "2026-03-09"), payment("F-1", "200.00", "2026-03-10")
            )
            rows = signal_rows(app)
        finally:
            app.dispose()
    assert len(erp.requests) == 1
    request = erp.requests[0]
    assert request["verified"] and request["answered"] == 200
    body = json.loads(request["body"])
    assert body == {
        "id": request["headers"]["Idempotency-Key"],
        "type": "invoice.settled",
        "occurred_at": "2026-03-10T08:00:00+00:00",
        "creditor_id": "default",
        "data": {
            "debtor_id": "D-1",
            "invoice_number": "F-1",
            "currency": "EUR",
            "amount_due": "1200.00",
            "paid": "1200.00",
            "credited": "0.00",
        },
    }
    assert request["headers"]["Content-Type"] == "application/json"
    assert abs(int(request["headers"]["X-Relance-Timestamp"]) - int(at("2026-03-10 09:00").timestamp())) < 5
    assert [(r.status, r.attempts, r.response_code) for r in rows] == [("delivered", 1, 200)]


def test_a_500_is_retried_with_the_same_key_and_body_then_delivered(
    database_url, tmp_path, monkeypatch, logs
):
    monkeypatch.setenv(SECRET_ENV, SECRET)
    with PartnerEndpoint(SECRET, [500, 200], signed=timestamp_signed) as erp:
        app = make_test_app(
            database_url,
            tmp_path,
            at("2026-03-02 10:00"),
            webhooks_file=webhooks_file(tmp_path, erp.url, ["invoice.settled"]),
        )
        try:
            ingest(app, invoice_issued("F-1", "2026-04-01", "1200.00"))
            paid = at("2026-03-10 09:00")
            app.clock.set(paid)
            ingest_and_publish(app, payment("F-1", "1200.00", "2026-03-10"))
            [first] = signal_rows(app)
            advance(app, paid + timedelta(seconds=29))  # the back-off is not over
            assert len(erp.requests) == 1
            advance(app, paid + timedelta(seconds=30))
            [second] = signal_rows(app)
        finally:
            app.dispose()
    assert (first.status, first.attempts, first.response_code) == ("pending", 1, 500)
    assert first.lease_until == paid + timedelta(seconds=30)
    assert (second.status, second.attempts, second.response_code) == ("delivered", 2, 200)
    assert [r["answered"] for r in erp.requests] == [500, 200]
    assert all(r["verified"] for r in erp.requests)
    keys = {r["headers"]["Idempotency-Key"] for r in erp.requests}
    assert keys == {first.idempotency_key}
    assert erp.requests[0]["body"] == erp.requests[1]["body"]
    lines = [json.loads(line) for line in logs().splitlines() if line.startswith("{")]
    events = [line["event"] for line in lines if line["event"].startswith("signal.")]
    assert events == ["signal.recorded", "signal.retry", "signal.delivered"]
    assert SECRET not in json.dumps(lines)


def test_a_400_fails_the_signal_at_once_and_it_is_not_tried_again(database_url, tmp_path, monkeypatch, logs):
    monkeypatch.setenv(SECRET_ENV, SECRET)
    with PartnerEndpoint(SECRET, [400], signed=timestamp_signed) as erp:
        app = make_test_app(
            database_url,
            tmp_path,
            at("2026-03-02 10:00"),
            webhooks_file=webhooks_file(tmp_path, erp.url, ["invoice.settled"]),
        )
        try:
            ingest(app, invoice_issued("F-1", "2026-04-01", "1200.00"))
            paid = at("2026-03-10 09:00")
            app.clock.set(paid)
            ingest_and_publish(app, payment("F-1", "1200.00", "2026-03-10"))
            advance(app, paid + timedelta(hours=2))
            [row] = signal_rows(app)
            report = status(app)
        finally:
            app.dispose()
    assert len(erp.requests) == 1
    assert (row.status, row.attempts, row.response_code, row.lease_until) == ("failed", 1, 400, None)
    assert row.last_error and "HTTP 400" in row.last_error
    assert (report["signals_pending"], report["signals_failed"]) == (0, 1)
    failed = [json.loads(line) for line in logs().splitlines() if '"signal.failed"' in line]
    assert len(failed) == 1 and failed[0]["level"] == "error" and failed[0]["response_code"] == 400


def test_an_unreachable_subscriber_is_failed_after_max_attempts(database_url, tmp_path, monkeypatch):
    monkeypatch.setenv(SECRET_ENV, SECRET)
    with PartnerEndpoint(SECRET, []) as closed:
        url = closed.url  # a port nobody listens on once this server is closed
    app = make_test_app(
        database_url,
        tmp_path,
        at("2026-03-02 10:00"),
        webhooks_file=webhooks_file(tmp_path, url, ["invoice.settled"]),
    )
    try:
        ingest(app, invoice_issued("F-1", "2026-04-01", "1200.00"))
        paid = at("2026-03-10 09:00")
        app.clock.set(paid)
        ingest_and_publish(app, payment("F-1", "1200.00", "2026-03-10"))
        for minutes in (1, 3, 10, 30):
            advance(app, paid + timedelta(minutes=minutes))
        [row] = signal_rows(app)
    finally:
        app.dispose()
    assert (row.status, row.attempts, row.response_code) == ("failed", 3, None)  # max_attempts = 3
    assert row.last_error and "(after 3 attempts)" in row.last_error


def test_no_subscriber_of_the_type_means_no_signal(database_url, tmp_path, monkeypatch):
    monkeypatch.setenv(SECRET_ENV, SECRET)
    with PartnerEndpoint(SECRET, [], signed=timestamp_signed) as erp:
        app = make_test_app(
            database_url,
            tmp_path,
            at("2026-03-02 10:00"),
            webhooks_file=webhooks_file(tmp_path, erp.url, ["case.opened"]),
        )
        try:
            ingest(app, invoice_issued("F-1", "2026-04-01", "1200.00"))
            ingest_and_publish(app, payment("F-1", "1200.00", "2026-03-10"))
            rows = signal_rows(app)
        finally:
            app.dispose()
    assert rows == [] and erp.requests == []


def test_a_subscriber_of_one_creditor_gets_nothing_of_the_other(database_url, tmp_path, monkeypatch):
    monkeypatch.setenv(SECRET_ENV, SECRET)
    with PartnerEndpoint(SECRET, [], signed=timestamp_signed) as erp:
        app = make_test_app(
            database_url,
            tmp_path,
            at("2026-03-02 10:00"),
            creditors_file=creditors_file(tmp_path),
            webhooks_file=webhooks_file(tmp_path, erp.url, ["invoice.settled"], 'creditors = ["atelier"]'),
        )
        try:
            ingest(
                app,
                invoice_issued("F-1", "2026-04-01", "1200.00"),
                of("atelier", invoice_issued("F-1", "2026-04-01", "300.00")),
            )
            ingest_and_publish(
                app,
                payment("F-1", "1200.00", "2026-03-10"),
                of("atelier", payment("F-1", "300.00", "2026-03-10")),
            )
            stored = [(r.creditor_id, r.signal_type) for r in signal_rows(app)]
        finally:
            app.dispose()
    assert stored == [("atelier", "invoice.settled")]
    [body] = bodies(erp)
    assert body["creditor_id"] == "atelier" and body["data"]["amount_due"] == "300.00"


def test_levels_and_cases_follow_the_ladder_and_the_payment(database_url, tmp_path, monkeypatch):
    """Each reminder that raises the debtor's level is signalled; the case opened by the
    ladder too; the payment closes the case, settles the invoice and drops the level to none."""
    monkeypatch.setenv(SECRET_ENV, SECRET)
    with PartnerEndpoint(SECRET, [], signed=timestamp_signed) as erp:
        app = make_test_app(
            database_url, tmp_path, at("2026-03-02 10:00"), webhooks_file=webhooks_file(tmp_path, erp.url)
        )
        try:
            ingest(app, invoice_issued("F-1", "2026-04-01", "1200.00"))
            opened = escalate(app)
            app.clock.set(opened + timedelta(days=1))
            ingest_and_publish(
                app, payment("F-1", "1200.00", (opened + timedelta(days=1)).date().isoformat())
            )
            policy = app.ctx.policy
        finally:
            app.dispose()
    assert all(r["verified"] and r["answered"] == 200 for r in erp.requests)
    sent = bodies(erp)
    levels = [b["data"] for b in sent if b["type"] == "debtor.level_changed"]
    ladder = [s.name for s in policy.steps if not s.manual]  # a call is no level
    reached = [d["level"] for d in levels[:-1]]
    assert reached == sorted(reached, key=ladder.index) and len(reached) >= 2  # only ever rising
    assert [d["severity"] for d in levels[:-1]] == [ladder.index(s) + 1 for s in reached]
    assert levels[0]["previous_level"] is None
    assert levels[0]["outstanding"] == [{"currency": "EUR", "amount": "1200.00"}]
    assert levels[0]["invoices"] == [
        {"number": "F-1", "step": reached[0], "currency": "EUR", "balance": "1200.00"}
    ]
    last = levels[-1]
    assert (last["level"], last["severity"], last["previous_level"]) == (None, 0, reached[-1])
    assert last["outstanding"] == [] and last["cause"] == "invoice settled"
    types = [b["type"] for b in sent]
    assert types.count("case.opened") == 1 and types.count("case.closed") == 1
    assert types.index("case.opened") < types.index("case.closed")
    case_opened = next(b["data"] for b in sent if b["type"] == "case.opened")
    assert case_opened["invoice_numbers"] == ["F-1"] and case_opened["principal"] == "1200.00"
    closed = next(b["data"] for b in sent if b["type"] == "case.closed")
    assert closed["status"] == "paid" and closed["case_id"] == case_opened["case_id"]
    assert types[-3:].count("invoice.settled") == 1
    assert len({r["headers"]["Idempotency-Key"] for r in erp.requests}) == len(erp.requests)


def test_the_level_is_signalled_only_when_it_changes(database_url, tmp_path, monkeypatch):
    """Two invoices reach pre_due together: one level signal; paying one leaves the other at
    pre_due (no level signal); paying the second brings the level back to none."""
    monkeypatch.setenv(SECRET_ENV, SECRET)
    with PartnerEndpoint(SECRET, [], signed=timestamp_signed) as erp:
        app = make_test_app(
            database_url,
            tmp_path,
            at("2026-03-02 10:00"),
            webhooks_file=webhooks_file(tmp_path, erp.url, ["debtor.level_changed", "invoice.settled"]),
        )
        try:
            ingest(
                app,
                invoice_issued("F-1", "2026-04-01", "1200.00"),
                invoice_issued("F-2", "2026-04-01", "800.00"),
            )
            advance(app, at("2026-03-27 09:00"))  # both pre_due reminders, in one message
            app.clock.set(at("2026-03-28 09:00"))
            ingest_and_publish(app, payment("F-1", "1200.00", "2026-03-28"))
            app.clock.set(at("2026-03-29 09:00"))
            ingest_and_publish(app, payment("F-2", "800.00", "2026-03-29"))
        finally:
            app.dispose()
    sent = [(b["type"], b["data"].get("level", b["data"].get("invoice_number"))) for b in bodies(erp)]
    assert sent == [
        ("debtor.level_changed", "pre_due"),
        ("invoice.settled", "F-1"),
        ("invoice.settled", "F-2"),
        ("debtor.level_changed", None),
    ]
    first = bodies(erp)[0]["data"]
    assert first["outstanding"] == [{"currency": "EUR", "amount": "2000.00"}]
    assert [(i["number"], i["step"]) for i in first["invoices"]] == [("F-1", "pre_due"), ("F-2", "pre_due")]


def test_an_upheld_dispute_drops_the_level_and_signals_no_settlement(database_url, tmp_path, monkeypatch):
    monkeypatch.setenv(SECRET_ENV, SECRET)
    with PartnerEndpoint(SECRET, [], signed=timestamp_signed) as erp:
        app = make_test_app(
            database_url,
            tmp_path,
            at("2026-03-02 10:00"),
            webhooks_file=webhooks_file(tmp_path, erp.url, ["debtor.level_changed", "invoice.settled"]),
        )
        try:
            ingest(app, invoice_issued("F-1", "2026-04-01", "1200.00"))
            advance(app, at("2026-03-27 09:00"))
            app.clock.set(at("2026-03-30 09:00"))
            ingest_and_publish(
                app,
                {
                    "event_id": "dsp-1",
                    "type": "invoice.disputed",
                    "occurred_at": "2026-03-28T11:00:00+01:00",
                    "invoice_number": "F-1",
                    "reason": "Livraison incomplète",
                },
                {
                    "event_id": "dsp-2",
                    "type": "dispute.resolved",
                    "occurred_at": "2026-03-30T10:00:00+02:00",
                    "invoice_number": "F-1",
                    "outcome": "upheld",
                },
            )
        finally:
            app.dispose()
    sent = [(b["type"], b["data"]["level"], b["data"]["cause"]) for b in bodies(erp)]
    assert sent == [
        ("debtor.level_changed", "pre_due", "reminder recorded"),
        ("debtor.level_changed", None, "dispute upheld"),
    ]
