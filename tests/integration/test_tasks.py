"""The default policy's call, `relance tasks` and `relance task done`, on SQLite and PostgreSQL.

D = Wed 1 April 2026 for F-1 (1200.00) and F-2 (300.00) of ACME, a business with a phone.
reminder_3 D+30 = Fri 1 May (holiday) -> Mon 4 May; the call D+35 = Wed 6 May, 09:00
Paris; the formal notice D+40 = Mon 11 May.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import select

from adapters.orm import EvidenceRecord, InboxEvent, InvoiceRow, MessageRow, PlannedStep, TaskRow
from adapters.store import transaction
from relance.cli import main
from tests.integration.test_flow import at
from tests.support import DEBTOR, ingest, invoice_issued, make_test_app, payment, run_until

PHONE = "+33 4 72 00 00 00"
CALLED = {**DEBTOR, "phone": PHONE}


def issue(app) -> None:
    ingest(
        app,
        invoice_issued("F-1", "2026-04-01", "1200.00", debtor=CALLED),
        invoice_issued("F-2", "2026-04-01", "300.00", debtor=CALLED),
    )


@pytest.fixture
def app(database_url, tmp_path, monkeypatch):
    application = make_test_app(database_url, tmp_path / "main", at("2026-03-02 10:00"))
    issue(application)
    run_until(application, at("2026-05-06 09:00"))  # up to the call
    url = application.engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("RELANCE_DATABASE_URL", url)
    monkeypatch.setenv("RELANCE_NOW", "2026-05-07T10:00:00+02:00")
    yield application
    application.dispose()


def cli(app, *args: str) -> int:
    return main([*args, "--data-dir", str(app.settings.data_dir)])


def out_lines(capsys) -> list[str]:
    """The command's own lines on stdout: log lines (JSON) left out."""
    return [line for line in capsys.readouterr().out.splitlines() if not line.startswith("{")]


def steps(app) -> dict[tuple[str, str], tuple[str, datetime]]:
    with transaction(app.sessions) as session:
        rows = session.execute(
            select(InvoiceRow.number, PlannedStep.step, PlannedStep.status, PlannedStep.due_at).join(
                InvoiceRow, InvoiceRow.id == PlannedStep.invoice_id
            )
        ).all()
    return {(number, step): (status, due_at) for number, step, status, due_at in rows}


def test_the_call_step_makes_one_task_for_both_invoices_and_no_message(app, capsys):
    """Given ACME's two invoices at their call day, then one open task holds the phone, both
    invoices and 1200.00 + 300.00 = 1500.00 EUR, due 6 May; no call message exists; the
    `task.created` evidence names the task; `relance tasks --due` lists it as overdue on 7 May."""
    with transaction(app.sessions) as session:
        (task,) = session.execute(select(TaskRow)).scalars().all()
        assert (task.kind, task.step, task.phone, task.status) == ("call", "call", PHONE, "open")
        assert (task.invoice_numbers, task.amounts) == (["F-1", "F-2"], {"EUR": "1500.00"})
        assert task.due_on.isoformat() == "2026-05-06"
        assert session.execute(select(MessageRow).where(MessageRow.step == "call")).first() is None
        kinds = session.execute(select(EvidenceRecord.kind).order_by(EvidenceRecord.seq)).scalars().all()
        assert kinds.count("task.created") == 1
    assert steps(app)[("F-1", "call")][0] == steps(app)[("F-2", "call")][0] == "done"

    assert cli(app, "tasks", "--due") == 0
    assert out_lines(capsys) == [
        f"{task.id}\tdefault\tcall\tcall\tD-1\t{PHONE}\tF-1,F-2\t1500.00 EUR\tdue 2026-05-06 (overdue)",
        "1 open task(s) due by 2026-05-07",
    ]


def test_a_promise_reported_on_the_call_pauses_both_invoices_as_the_event_does(app, capsys, tmp_path):
    """Given the open call task, when `relance task done` reports a promise for 20 May, then
    each invoice gets an applied promise_to_pay.recorded event named after the task, and the
    steps left are exactly those of a twin store that received the same events from the
    accounting: the formal notice removed, the promise's end planned at the end of 20 May."""
    assert cli(app, "task", "done", "1", "--outcome", "promise", "--promised-date", "2026-05-20") == 0
    assert out_lines(capsys) == [
        "task 1 done: promise",
        "task-1-promise-F-1\taccepted",
        "task-1-promise-F-2\taccepted",
    ]
    with transaction(app.sessions) as session:
        inbox = dict(session.execute(select(InboxEvent.event_id, InboxEvent.status)).all())
        assert inbox["task-1-promise-F-1"] == inbox["task-1-promise-F-2"] == "applied"
        task = session.execute(select(TaskRow)).scalar_one()
        assert (task.status, task.outcome, task.promised_date.isoformat()) == (
            "done",
            "promise",
            "2026-05-20",
        )

    twin = make_test_app(f"sqlite:///{tmp_path / 'twin.db'}", tmp_path / "twin", at("2026-03-02 10:00"))
    issue(twin)
    run_until(twin, at("2026-05-06 09:00"))
    twin.clock.set(at("2026-05-07 10:00"))  # type: ignore[attr-defined]
    for number in ("F-1", "F-2"):
        promise = {
            "event_id": f"erp-promise-{number}",
            "type": "promise_to_pay.recorded",
            "occurred_at": "2026-05-07T10:00:00+02:00",
            "invoice_number": number,
            "promised_date": "2026-05-20",
        }
        assert ingest(twin, promise) == ["accepted"]
    assert steps(app) == steps(twin)
    assert steps(app)[("F-1", "formal_notice")][0] == "cancelled"
    assert steps(app)[("F-1", "promise_expired")] == ("planned", at("2026-05-21 00:00"))
    twin.dispose()


def test_a_dispute_reported_on_the_call_disputes_each_invoice_with_the_note(app, capsys):
    """When the call ends in a dispute with a note, then both invoices are disputed (the
    reason is the note) and their pending ladder steps are gone, as on invoice.disputed (the
    prescription warning stays: a dispute does not stop prescription)."""
    note = "livraison incomplète selon M. Martin"
    assert cli(app, "task", "done", "1", "--outcome", "dispute", "--note", note, "--by", "alice") == 0
    with transaction(app.sessions) as session:
        assert all(session.execute(select(InvoiceRow.disputed)).scalars())
        task = session.execute(select(TaskRow)).scalar_one()
        assert (task.outcome, task.note, task.done_by) == ("dispute", note, "alice")
    left = {key for key, (status, _) in steps(app).items() if status == "planned"}
    assert left == {("F-1", "prescription_warning"), ("F-2", "prescription_warning")}


def test_an_outcome_without_effect_is_kept_and_the_formal_notice_still_goes(app, capsys):
    """When the call was not answered, then the task is done and the formal notice still
    goes on Mon 11 May: a task never stops the ladder."""
    assert cli(app, "task", "done", "1", "--outcome", "no_answer") == 0
    assert out_lines(capsys) == ["task 1 done: no_answer"]
    run_until(app, at("2026-05-11 09:00"))
    with transaction(app.sessions) as session:
        sent = session.execute(select(MessageRow.channel).where(MessageRow.step == "formal_notice")).scalars()
        assert sorted(sent) == ["email", "registered_letter"]
        kinds = session.execute(select(EvidenceRecord.kind)).scalars().all()
        assert kinds.count("task.done") == 1


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["9"], "relance: error: no task 9"),
        (
            ["1", "--promised-date", "2026-05-20"],
            "relance: error: --promised-date goes with --outcome promise only",
        ),
        (  # the last --outcome given counts
            ["1", "--outcome", "promise", "--promised-date", "2026-05-06"],
            "relance: error: --promised-date 2026-05-06 is before today (2026-05-07)",
        ),
    ],
)
def test_an_unknown_task_or_a_date_without_a_promise_is_one_line_and_exit_2(app, capsys, args, error):
    """An unknown id, a promised date with another outcome or before today exits 2 with one
    line and leaves the task open."""
    number, *rest = args
    assert cli(app, "task", "done", number, "--outcome", "other", *rest) == 2
    assert capsys.readouterr().err.strip() == error
    with transaction(app.sessions) as session:
        assert session.execute(select(TaskRow.status)).scalar_one() == "open"


def test_a_promise_without_its_date_and_a_task_done_twice_are_refused(app, capsys):
    """A promise without --promised-date exits 2; a task done once cannot be done again."""
    assert cli(app, "task", "done", "1", "--outcome", "promise") == 2
    assert (
        capsys.readouterr().err.strip()
        == "relance: error: --outcome promise needs --promised-date YYYY-MM-DD"
    )
    assert cli(app, "task", "done", "1", "--outcome", "wrong_number") == 0
    capsys.readouterr()
    assert cli(app, "task", "done", "1", "--outcome", "other") == 2
    assert (
        capsys.readouterr().err.strip() == "relance: error: task 1 is already done (wrong_number, 2026-05-07)"
    )
    assert cli(app, "tasks") == 0
    assert out_lines(capsys) == ["0 open task(s)"]


def test_erasing_the_debtor_clears_its_phone_and_its_tasks_notes(app, capsys):
    """Given the call done with a note and both invoices paid, when the debtor is erased,
    then no column of the debtor or of its task holds the phone or the note any more."""
    assert (
        cli(app, "task", "done", "1", "--outcome", "paid_claimed", "--note", "payé hier, dit Mme Roux") == 0
    )
    ingest(app, payment("F-1", "1200.00", "2026-05-07"), payment("F-2", "300.00", "2026-05-07"))
    assert cli(app, "erase", "D-1") == 0
    with transaction(app.sessions) as session:
        task = session.execute(select(TaskRow)).scalar_one()
        assert (task.phone, task.note, task.outcome) == (None, "erased", "paid_claimed")
        from adapters.orm import DebtorRow

        assert session.execute(select(DebtorRow.phone)).scalar_one() is None
