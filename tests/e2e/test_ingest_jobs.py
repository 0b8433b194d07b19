"""``relance ingest --jobs N FILE...``: independent feeds, one process each, leave the store
one process leaves applying them one after the other — on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import date, timedelta

from sqlalchemy import select

from adapters.orm import (
    DebtorRow,
    EvidenceRecord,
    InboxEvent,
    InvoiceRow,
    PaymentRow,
    PlannedStep,
    RejectedEvent,
)
from adapters.store import make_engine, transaction
from adapters.uow import UnitOfWork
from bench.ingest import Feed, split_by_debtor
from intake.split import part_of, plan_parts
from relance.cli import main
from tests.support import DEBTOR, invoice_issued, payment

NOW = "2026-03-12T09:00:00+00:00"
# set by the clock of each run, seconds apart between the two runs compared
STAMPS = {"received_at", "applied_at", "created_at", "updated_at", "at", "id", "invoice_id", "due_at"}


def _feeds(tmp_path, lines: int) -> list:
    generator = Feed(seed=11, today=date(2026, 3, 12))
    feed = tmp_path / "feed.jsonl"
    feed.write_text("".join(generator.line()[1] + "\n" for _ in range(lines)), encoding="utf-8")
    return split_by_debtor(feed, 2)


def _migrate(monkeypatch, database_url: str, data_dir, capsys) -> None:
    monkeypatch.setenv("RELANCE_DATABASE_URL", database_url)
    assert main(["migrate", "--data-dir", str(data_dir)]) == 0
    capsys.readouterr()


def _ingest(monkeypatch, database_url: str, data_dir, *args: str) -> int:
    monkeypatch.setenv("RELANCE_DATABASE_URL", database_url)
    monkeypatch.setenv("RELANCE_NOW", NOW)
    monkeypatch.setenv("RELANCE_LOG_LEVEL", "WARNING")
    return main(["ingest", *args, "--data-dir", str(data_dir)])


def _store(database_url: str) -> dict:
    """The rows that matter, without what the clock or the order of the processes sets."""
    engine = make_engine(database_url)
    sessions = lambda: UnitOfWork(bind=engine, expire_on_commit=False)  # noqa: E731
    try:
        with transaction(sessions) as session:
            session.scope(None)
            numbers = dict(session.execute(select(InvoiceRow.id, InvoiceRow.number)).all())
            due = {}

            def rows(model) -> list[tuple]:
                columns = [c.key for c in model.__table__.columns if c.key not in STAMPS]
                found = []
                for row in session.execute(select(model)).scalars():
                    key = tuple(str(getattr(row, c)) for c in columns)
                    if hasattr(row, "invoice_id"):
                        key += (numbers[row.invoice_id],)
                    if model is PlannedStep:
                        due[key] = row.due_at
                    found.append(key)
                return sorted(found)

            store = {
                model.__tablename__: rows(model)
                for model in (InboxEvent, RejectedEvent, InvoiceRow, DebtorRow, PaymentRow, PlannedStep)
            }
            store["evidence"] = sorted(
                (kind, payload)
                for kind, payload in session.execute(select(EvidenceRecord.kind, EvidenceRecord.payload))
            )
            store["due"] = due
    finally:
        engine.dispose()
    return store


def _chain_holds(monkeypatch, database_url: str, data_dir, capsys) -> bool:
    capsys.readouterr()
    monkeypatch.setenv("RELANCE_DATABASE_URL", database_url)
    code = main(["evidence", "verify", "--data-dir", str(data_dir)])
    capsys.readouterr()
    return code == 0


def test_two_feeds_in_two_processes_leave_the_store_of_one_process(
    database_url, tmp_path, monkeypatch, capsys
):
    first, second = _feeds(tmp_path, 400)
    _migrate(monkeypatch, database_url, tmp_path / "jobs", capsys)
    code = _ingest(monkeypatch, database_url, tmp_path / "jobs", "--jobs", "2", str(first), str(second))
    printed = capsys.readouterr().out.splitlines()
    reference_url = f"sqlite:///{tmp_path / 'reference.db'}"
    reference_code = _ingest(monkeypatch, reference_url, tmp_path / "reference", str(first), str(second))
    expected = capsys.readouterr().out.splitlines()

    assert code == reference_code == 1  # the feed has invalid lines
    assert printed == expected  # each file's rejections together, in the order of the files
    rejections = printed[:-1]
    assert rejections and all(line.startswith((f"{first}: line ", f"{second}: line ")) for line in rejections)
    assert [line.startswith(f"{first}:") for line in rejections] == sorted(
        (line.startswith(f"{first}:") for line in rejections), reverse=True
    )
    assert printed[-1].startswith("accepted ")
    store, reference = _store(database_url), _store(reference_url)
    for table in ("inbox_events", "rejected_events", "invoices", "debtors", "payments", "planned_steps"):
        assert store[table] == reference[table], table
    assert store["evidence"] == reference["evidence"]
    for key, due_at in store["due"].items():  # planned from the dates of the feed, or from now
        assert abs(due_at - reference["due"][key]) < timedelta(minutes=10), key
    assert _chain_holds(monkeypatch, database_url, tmp_path / "jobs", capsys)


def test_jobs_print_the_rejections_of_each_file_under_its_name(tmp_path, monkeypatch, capsys):
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    one.write_text(json.dumps(invoice_issued("F-1", "2026-04-01")) + "\n{broken\n", encoding="utf-8")
    two.write_text("[]\n" + json.dumps(payment("F-404", "10.00", "2026-04-02")) + "\n", encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'relance.db'}"
    assert _ingest(monkeypatch, url, tmp_path / "data", "--jobs", "2", str(one), str(two)) == 1
    out = capsys.readouterr().out.splitlines()
    assert [line.split(": rejected:")[0] for line in out[:-1]] == [f"{one}: line 2", f"{two}: line 1"]
    assert out[-1] == "accepted 2, duplicate 0, rejected 2"


def test_stdin_is_read_alone_and_jobs_are_at_least_one(tmp_path, capsys):
    data_dir = tmp_path / "data"
    feed = tmp_path / "one.jsonl"
    feed.write_text("", encoding="utf-8")
    assert main(["ingest", "-", str(feed), "--data-dir", str(data_dir)]) == 2
    assert main(["ingest", "--jobs", "0", str(feed), "--data-dir", str(data_dir)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "relance: error: - (stdin) is read alone, not with other files",
        "relance: error: --jobs 0: at least 1",
    ]


def _debtor(number: int, email: str) -> dict:
    return {**DEBTOR, "id": f"ORD-{number}", "email": email}


def _ordered_lines() -> list[dict]:
    """Events whose outcome depends on their order within one debtor's events."""
    lines: list[dict] = []
    for n in range(6):
        first, last = _debtor(n, f"a{n}@example.com"), _debtor(n, f"c{n}@example.com")
        lines += [
            payment(f"ORD-F-{n}", "50.00", "2026-03-05", event_id=f"early-{n}"),  # parked first
            invoice_issued(f"ORD-F-{n}", "2026-04-01", "100.00", debtor=first, event_id=f"ord-iss-{n}"),
            {
                "event_id": f"ord-upd-{n}-b",
                "type": "debtor.updated",
                "occurred_at": "2026-03-06T10:00:00+01:00",
                "debtor": _debtor(n, f"b{n}@example.com"),
            },
            payment(f"ORD-F-{n}", "50.00", "2026-03-07", event_id=f"late-{n}"),  # settles it
            # the same number again: an update only while it is open, so ignored once settled
            invoice_issued(f"ORD-F-{n}", "2026-05-01", "900.00", debtor=last, event_id=f"ord-iss-{n}-again"),
        ]
    return lines


def test_one_feed_cut_by_debtor_leaves_the_store_of_one_process(database_url, tmp_path, monkeypatch, capsys):
    generator = Feed(seed=7, today=date(2026, 3, 12))
    feed = tmp_path / "feed.jsonl"
    text = "".join(generator.line()[1] + "\n" for _ in range(500))
    text += "".join(json.dumps(line) + "\n" for line in _ordered_lines()) + "\n{broken\n"
    feed.write_text(text, encoding="utf-8")
    _migrate(monkeypatch, database_url, tmp_path / "jobs", capsys)
    code = _ingest(monkeypatch, database_url, tmp_path / "jobs", "--jobs", "2", str(feed))
    printed = capsys.readouterr().out.splitlines()
    reference_url = f"sqlite:///{tmp_path / 'reference.db'}"
    reference_code = _ingest(monkeypatch, reference_url, tmp_path / "reference", "--jobs", "1", str(feed))
    expected = capsys.readouterr().out.splitlines()

    assert code == reference_code == 1
    assert printed == expected  # the rejections in the order of the lines, then the summary
    numbers = [int(line.split(":")[0].removeprefix("line ")) for line in printed[:-1]]
    assert numbers == sorted(numbers) and len(numbers) > 2
    store, reference = _store(database_url), _store(reference_url)
    for table in ("inbox_events", "rejected_events", "invoices", "debtors", "payments", "planned_steps"):
        assert store[table] == reference[table], table
    assert store["evidence"] == reference["evidence"]
    for key, due_at in store["due"].items():
        assert abs(due_at - reference["due"][key]) < timedelta(minutes=10), key
    engine = make_engine(database_url)
    try:
        with transaction(lambda: UnitOfWork(bind=engine, expire_on_commit=False)) as session:
            debtors = dict(session.execute(select(DebtorRow.id, DebtorRow.email)).all())
            invoices = {
                number: (status, str(amount))
                for number, status, amount in session.execute(
                    select(InvoiceRow.number, InvoiceRow.status, InvoiceRow.amount_due)
                )
            }
    finally:
        engine.dispose()
    for n in range(6):  # each debtor's events applied in the order of the file
        assert debtors[f"ORD-{n}"] == f"c{n}@example.com"
        assert invoices[f"ORD-F-{n}"] == ("settled", "100.00")
    assert _chain_holds(monkeypatch, database_url, tmp_path / "jobs", capsys)


def test_the_plan_keeps_a_debtors_events_and_its_invoices_in_one_part(tmp_path, monkeypatch, capsys):
    url = f"sqlite:///{tmp_path / 'relance.db'}"
    earlier = tmp_path / "earlier.jsonl"
    earlier.write_text(
        json.dumps(invoice_issued("OLD-1", "2026-04-01", debtor=_debtor(99, "x@example.com"))) + "\n"
    )
    assert _ingest(monkeypatch, url, tmp_path / "data", str(earlier)) == 0
    lines = []
    for n in range(40):
        lines.append(invoice_issued(f"N-{n}", "2026-04-01", debtor=_debtor(n, "a@example.com")))
        lines.append(payment(f"N-{n}", "10.00", "2026-03-05"))
    lines.append(payment("OLD-1", "10.00", "2026-03-05"))  # issued in the store only
    claiming = invoice_issued("OLD-1", "2026-04-01", debtor=_debtor(3, "z@example.com"), event_id="claim")
    lines.append(claiming)  # names debtor 3, about debtor 99's invoice
    lines.append({**payment("N-7", "1.00", "2026-03-06"), "creditor_id": "other"})  # another creditor's
    feed = tmp_path / "feed.jsonl"
    feed.write_text("".join(json.dumps(line) + "\n" for line in lines) + "[]\n", encoding="utf-8")
    engine = make_engine(url)
    try:
        plan = plan_parts(engine, str(feed), 3, tmp_path / "plan").read_bytes()
    finally:
        engine.dispose()
    assert len(plan) == len(lines) + 1 and set(plan) == {0, 1, 2}
    for n in range(40):
        assert plan[2 * n] == plan[2 * n + 1] == part_of("default", f"ORD-{n}", 3)
    assert plan[80] == plan[81] == part_of("default", "ORD-99", 3)
    assert plan[82] == part_of("other", "invoice:N-7", 3)  # another creditor's invoice N-7: unknown
    capsys.readouterr()
