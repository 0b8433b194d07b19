"""`relance erase DEBTOR`: a debtor whose claims are over loses its personal data, and the
evidence chain still verifies."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import JSON, LargeBinary, String, Text, select

from adapters.orm import Base, DebtorRow, DebtorSalt, EvidenceRecord
from adapters.store import transaction
from relance.cli import main
from relance.reports import verify_chain
from tests.integration.test_flow import at
from tests.support import DEBTOR, advance, ingest, invoice_issued, make_test_app, payment

NAME, EMAIL = DEBTOR["name"], DEBTOR["email"]


@pytest.fixture
def app(database_url, tmp_path, monkeypatch):
    application = make_test_app(database_url, tmp_path, at("2026-03-02 10:00"))
    ingest(application, invoice_issued("F-1", "2026-04-01"))
    advance(application, at("2026-03-27 09:00"))  # a reminder to the debtor
    url = application.engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("RELANCE_DATABASE_URL", url)
    monkeypatch.setenv("RELANCE_NOW", "2026-05-02T10:00:00+02:00")
    yield application
    application.dispose()


def erase(app, *args: str) -> int:
    return main(["erase", *args, "--data-dir", str(app.settings.data_dir)])


def cells(app) -> list[tuple[str, str, object]]:
    """Every value of every text, JSON and binary column of every table."""
    found = []
    with transaction(app.sessions) as session:
        for table in Base.metadata.sorted_tables:
            columns = [c for c in table.columns if isinstance(c.type, String | Text | JSON | LargeBinary)]
            rows = session.execute(select(*columns)).all() if columns else []
            for row in rows:
                found.extend((table.name, c.name, v) for c, v in zip(columns, row, strict=True))
    return found


def printed(capsys) -> list[str]:
    """The command's own lines on stdout (log lines go there too)."""
    return capsys.readouterr().out.splitlines()


def mentions(value: object, text: str) -> bool:
    if isinstance(value, bytes):
        return text.encode("utf-8") in value
    return value is not None and text in (
        value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    )


def test_a_debtor_paid_in_full_is_erased_and_the_chain_still_verifies(app, capsys):
    ingest(app, payment("F-1", "1200.00", "2026-04-01"))
    assert any(mentions(v, EMAIL) for _, _, v in cells(app))  # the data was there

    assert erase(app, "D-1") == 0
    summary = "erased D-1: 1 message(s), 1 inbox event(s), 0 rejected event(s), 1 evidence record(s) sealed"
    assert summary in printed(capsys)

    assert main(["evidence", "verify", "--data-dir", str(app.settings.data_dir)]) == 0
    assert any(line.startswith("ok ") for line in printed(capsys))
    assert verify_chain(app).ok
    left = [(t, c) for t, c, v in cells(app) if mentions(v, NAME) or mentions(v, EMAIL)]
    assert left == []
    with transaction(app.sessions) as session:
        erased = session.execute(
            select(EvidenceRecord).where(EvidenceRecord.kind == "debtor.erased")
        ).scalar_one()
        assert erased.debtor_id == "D-1" and json.loads(erased.payload)["messages"] == 1
        assert session.get(DebtorSalt, ("default", "D-1")) is None
        debtor = session.get(DebtorRow, ("default", "D-1"))
        assert (debtor.name, debtor.email, debtor.erased_at is not None) == ("erased", None, True)


def test_a_debtor_with_an_open_invoice_is_not_erased(app, capsys):
    assert erase(app, "D-1") == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "relance: error: debtor D-1 cannot be erased: invoice F-1 is open"
    )
    assert any(mentions(v, EMAIL) for _, _, v in cells(app))


def test_an_unknown_debtor_is_refused_in_one_line(app, capsys):
    assert erase(app, "D-9") == 2
    assert capsys.readouterr().err.splitlines()[-1] == "relance: error: no debtor D-9"


def test_due_lists_a_paid_debtor_only_after_its_retention(app, capsys, monkeypatch):
    ingest(app, payment("F-1", "1200.00", "2026-04-01"))
    assert erase(app, "--due") == 0
    assert "0 debtor(s) past retention" in printed(capsys)
    monkeypatch.setenv("RELANCE_NOW", "2031-05-02T10:00:00+02:00")
    assert erase(app, "--due") == 0
    lines = printed(capsys)
    assert lines[lines.index("1 debtor(s) past retention") - 1] == "D-1\tlast change 2026-03-27"
    assert any(mentions(v, EMAIL) for _, _, v in cells(app))  # listed, not erased


def test_the_dossier_of_a_case_whose_debtor_was_erased_is_refused(app, capsys, tmp_path):
    from decimal import Decimal

    from adapters.orm import CaseRow

    ingest(app, payment("F-1", "1200.00", "2026-04-01"))
    zero, when = Decimal("0.00"), at("2026-03-27 09:00")
    with transaction(app.sessions) as session:
        case = CaseRow(
            debtor_id="D-1", kind="escalation", status="paid", recommended_procedure="injonction_de_payer",
            reasons=[], alternatives=[], currency="EUR", principal=zero, late_interest=zero,
            indemnities=zero, amount_claimed=zero, notes=[], opened_at=when, updated_at=when,
        )  # fmt: skip
        session.add(case)
        session.flush()
        case_id = case.id
    assert erase(app, "D-1") == 0
    capsys.readouterr()
    export = ["case", "export", str(case_id), str(tmp_path / "out"), "--data-dir", str(app.settings.data_dir)]
    assert main(export) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"relance: error: case {case_id}: its debtor D-1 was erased on 2026-05-02: "
        "there is no dossier to build"
    )


def test_a_debtor_is_erased_once(app, capsys):
    ingest(app, payment("F-1", "1200.00", "2026-04-01"))
    assert erase(app, "D-1") == 0
    capsys.readouterr()
    assert erase(app, "D-1") == 2
    assert (
        capsys.readouterr().err.splitlines()[-1]
        == "relance: error: debtor D-1 was already erased on 2026-05-02"
    )


def test_the_bank_entries_that_paid_an_erased_debtor_lose_its_name(app, capsys, tmp_path):
    """Given F-1 paid by a transfer on an imported statement, from "ACME Industrie SAS",
    and another entry from the same payer that matched nothing
    When the debtor is erased
    Then neither entry holds its name any more; their amounts stay."""
    import io

    from adapters.orm import BankEntryRow
    from intake.importing import import_files
    from tests.integration.test_bank_import import camt, entry

    path = tmp_path / "s.xml"
    path.write_text(
        camt("02", entry("1", "1200.00", text="F-1"), entry("2", "5.00", text=f"avoir {NAME}")),
        encoding="utf-8",
    )
    import_files(app, [path], io.StringIO())
    assert erase(app, "D-1") == 0
    left = [(t, c) for t, c, v in cells(app) if mentions(v, NAME) or mentions(v, EMAIL)]
    assert left == []
    with transaction(app.sessions) as session:
        rows = session.scalars(select(BankEntryRow).order_by(BankEntryRow.id)).all()
        assert [(r.status, str(r.amount), r.counterparty, r.remittance) for r in rows] == [
            ("matched", "1200.00", "erased", "erased"),
            ("unmatched", "5.00", "erased", "erased"),
        ]
