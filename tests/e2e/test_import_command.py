"""`relance import FILE…|DIR`: e-invoices through the path of `relance ingest` (validation,
de-duplication, parking of rejections for replay), with the output and exit codes of the
other commands."""

from __future__ import annotations

import json

import pytest

from adapters.importers.bank import read_statement
from relance.cli import main
from tests.einvoices import cii_invoice, factur_x
from tests.samples import sample


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    for name in ("RELANCE_DATABASE_URL", "RELANCE_REDIS_URL", "RELANCE_SMTP_HOST"):
        monkeypatch.delenv(name, raising=False)
    return str(tmp_path / "var")


def status(data_dir: str, capsys) -> dict:
    capsys.readouterr()
    assert main(["status", "--json", "--data-dir", data_dir]) == 0
    return json.loads(capsys.readouterr().out)


def open_balance(report: dict) -> str:
    return next(v for k, v in report.items() if k.startswith("balance_EUR") and v != "0.00")


def test_the_fnfe_invoice_and_its_credit_note_leave_236_68_open(data_dir, capsys):
    invoice, credit = sample("Facture_FR_EN16931.pdf"), sample("Avoir_FR_type381_EN16931.pdf")
    assert main(["import", str(invoice), str(credit), "--data-dir", data_dir]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{invoice}: warning: BT-20/BT-22: the invoice does not state the late-payment penalty rate nor the "
        "40 € recovery indemnity (mentions required by C. com. L441-9; the claims themselves are due under "
        "L441-10)",
        "accepted 2, duplicate 0, rejected 0",
    ]
    report = status(data_dir, capsys)
    assert report["open_invoices"] == 1 and open_balance(report) == "236.68"
    # the same files again change nothing
    assert main(["import", str(credit), str(invoice), "--data-dir", data_dir]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "accepted 0, duplicate 2, rejected 0"
    assert open_balance(status(data_dir, capsys)) == "236.68"


def test_a_folder_is_read_in_name_order_and_rejections_are_kept_for_replay(tmp_path, data_dir, capsys):
    folder = tmp_path / "inbox"
    folder.mkdir()
    # the credit note comes first by name: it waits (parked) for its invoice
    (folder / "a-credit.xml").write_bytes(
        cii_invoice(number="AV-1", type_code="381", amount="200.00", preceding="F-2026-0042", due=None)
    )
    (folder / "b-invoice.pdf").write_bytes(factur_x(cii_invoice()))
    (folder / "c-no-due-date.xml").write_bytes(cii_invoice(number="F-2", due=None, terms="à convenir"))
    (folder / "d-notes.txt").write_text("not an invoice", encoding="utf-8")
    assert main(["import", str(folder), "--data-dir", data_dir]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{folder / 'c-no-due-date.xml'}: rejected: BT-9 (payment due date): missing, and the payment terms "
        "(BT-20) give no due date relance can compute: 'à convenir'",
        f"{folder / 'd-notes.txt'}: rejected: file: not a PDF, and not well-formed XML: Start tag expected, "
        "'<' not found, line 1, column 1",
        "accepted 2, duplicate 0, rejected 2",
    ]
    assert open_balance(status(data_dir, capsys)) == "1000.00"  # 1200.00 less the credit note
    assert main(["inbox", "--data-dir", data_dir]) == 0
    listed = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert [(row[0], row[2]) for row in listed] == [
        ("1", str(folder / "c-no-due-date.xml")),
        ("2", str(folder / "d-notes.txt")),
    ]
    assert listed[0][3].startswith("BT-9 (payment due date): missing")
    # replayed with the event the file should have given, with its due date
    from adapters.importers.einvoice import read_document

    fixed = cii_invoice(number="F-2", due=None, terms="30 jours")
    (tmp_path / "fixed.xml").write_bytes(fixed)
    event = read_document(tmp_path / "fixed.xml").events[0]
    (tmp_path / "fixed.jsonl").write_text(json.dumps(event, ensure_ascii=False), encoding="utf-8")
    assert (
        main(["inbox", "replay", "1", "--file", str(tmp_path / "fixed.jsonl"), "--data-dir", data_dir]) == 0
    )
    assert capsys.readouterr().out == "accepted\n"
    assert open_balance(status(data_dir, capsys)) == "2200.00"


def test_usage_errors_are_one_line_and_exit_2(tmp_path, data_dir, capsys):
    assert main(["import", str(tmp_path / "none.xml"), "--data-dir", data_dir]) == 2
    assert capsys.readouterr().err == f"relance: error: {tmp_path / 'none.xml'}: no such file or folder\n"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["import", str(empty), "--data-dir", data_dir]) == 2
    assert capsys.readouterr().err == f"relance: error: {empty}: no file to import\n"


def test_simulate_takes_e_invoices_in_the_order_given(capsys):
    invoice, credit = sample("Facture_FR_EN16931.pdf"), sample("Avoir_FR_type381_EN16931.pdf")
    assert main(["simulate", str(invoice), str(credit), "--until", "2017-12-20"]) == 0
    captured = capsys.readouterr()
    actions = [json.loads(line) for line in captured.out.splitlines()]
    assert [(a["at"][:10], a["step"], a["invoice_numbers"]) for a in actions] == [
        ("2017-12-08", "pre_due", ["FA-2017-0010"]),
        ("2017-12-13", "due", ["FA-2017-0010"]),
        ("2017-12-18", "notice", ["FA-2017-0010"]),
    ]
    assert {a["amount_due"] for a in actions} == {"236.68"}  # the credit note was applied
    assert "warning: BT-20/BT-22" in captured.err
    refused = sample("ubl-tc434-creditnote1.xml")
    assert main(["simulate", str(refused), "--until", "2017-12-20"]) == 2
    assert capsys.readouterr().err.startswith(
        f"relance: error: {refused}: BT-25 (preceding invoice reference)"
    )


def test_statement_proposes_matches_against_the_open_invoices_and_applies_nothing(tmp_path, data_dir, capsys):
    invoice, credit = sample("Facture_FR_EN16931.pdf"), sample("Avoir_FR_type381_EN16931.pdf")
    assert main(["import", str(invoice), str(credit), "--data-dir", data_dir]) == 0
    statement = tmp_path / "s.cfo"
    record = "0430003000501234EUR2 01234567890181301{reject}130124{label:<31}  0000000  {amount}"
    statement.write_text(
        "\n".join(
            [
                record.format(reject="24  ", label="VIR MA JOLIE BOUTIQUE", amount="0000000002366H"),
                f"{'0530003000501234EUR2 0123456789018130124':<45}LIBReglement FA-2017-0010",
                record.format(reject="24  ", label="VIR MA JOLIE BOUTIQUE", amount="0000000002366H"),
                f"{'0530003000501234EUR2 0123456789018130124':<45}NPYMA JOLIE BOUTIQUE",
                record.format(reject="24AM", label="VIR INCONNU", amount="0000000001000{"),
            ]
        )
        + "\n",
        encoding="latin-1",
    )
    capsys.readouterr()
    first, second, third = (entry.reference for entry in read_statement(statement))
    assert main(["statement", str(statement), "--data-dir", data_dir]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{first}\t2024-01-13\t236.68 EUR\tmatched (reference)\tFA-2017-0010 236.68\t-",
        # the same amount again: the invoice is already taken by the entry before
        f"{second}\t2024-01-13\t236.68 EUR\tunmatched\t-\t"
        "no invoice number in the remittance, and no debtor of that name with an open balance",
        f"{third}\t2024-01-13\t100.00 EUR\tunmatched\t-\ta return or reversal (AM): not a payment",
        "entries 3: matched 1, ambiguous 0, unmatched 2",
    ]
    assert open_balance(status(data_dir, capsys)) == "236.68"  # nothing applied
    assert main(["statement", str(sample("cfonb_classic.cfo")), "--data-dir", data_dir]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "entries 13: matched 0, ambiguous 0, unmatched 13"
    assert main(["statement", str(invoice), "--data-dir", data_dir]) == 2
    assert capsys.readouterr().err == (
        f"relance: error: {invoice}: file: neither a camt.053 XML statement nor a CFONB 120 file\n"
    )


def test_import_pays_from_a_cfonb_statement_once_and_keeps_the_other_entries(tmp_path, data_dir, capsys):
    """Given FA-2017-0010 open for 236.68, and a CFONB statement paying it by reference, a
    second transfer of the same amount, and a credit returned
    When the statement is imported twice, then the waiting entries listed and matched
    Then the invoice is paid once, the two other entries wait, and a match on a settled
    invoice is refused with one line and exit code 2."""
    invoice, credit = sample("Facture_FR_EN16931.pdf"), sample("Avoir_FR_type381_EN16931.pdf")
    assert main(["import", str(invoice), str(credit), "--data-dir", data_dir]) == 0
    statement = tmp_path / "s.cfo"
    record = "0430003000501234EUR2 01234567890181301{reject}130124{label:<31}  0000000  {amount}"
    statement.write_text(
        "\n".join(
            [
                record.format(reject="24  ", label="VIR MA JOLIE BOUTIQUE", amount="0000000002366H"),
                f"{'0530003000501234EUR2 0123456789018130124':<45}LIBReglement FA-2017-0010",
                record.format(reject="24  ", label="VIR MA JOLIE BOUTIQUE", amount="0000000002366H"),
                f"{'0530003000501234EUR2 0123456789018130124':<45}NPYMA JOLIE BOUTIQUE",
                record.format(reject="24AM", label="VIR INCONNU", amount="0000000001000{"),
            ]
        )
        + "\n",
        encoding="latin-1",
    )
    capsys.readouterr()
    assert main(["import", str(statement), "--data-dir", data_dir]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{statement}: entries 3: matched 1, returned 0, unmatched 2, ambiguous 0, not payments 0 "
        "(already imported 0)",
        "accepted 1, duplicate 0, rejected 0",
    ]
    assert status(data_dir, capsys)["open_invoices"] == 0
    assert main(["import", str(statement), "--data-dir", data_dir]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "accepted 0, duplicate 1, rejected 0"
    assert main(["payments", "unmatched", "--data-dir", data_dir]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[-1] == "unmatched 2, ambiguous 0"
    second = listed[0].split("\t")
    assert second[1:6] == ["2024-01-13", "236.68", "EUR", "MA JOLIE BOUTIQUE", "-"]
    assert main(["payments", "match", second[0], "FA-2017-0010", "--data-dir", data_dir]) == 2
    assert capsys.readouterr().err == "relance: error: invoice FA-2017-0010 is settled, not open\n"
    assert main(["payments", "match", "nothing", "F-1", "--data-dir", data_dir]) == 2
    assert capsys.readouterr().err == (
        "relance: error: no bank entry nothing (see `relance payments unmatched`)\n"
    )
    assert main(["payments", "unmatched", "--creditor", "nobody", "--data-dir", data_dir]) == 2
    assert capsys.readouterr().err.startswith("relance: error: ")


def test_the_cfonb_sample_imported_twice_keeps_its_13_entries_once(data_dir, capsys):
    path = sample("cfonb_classic.cfo")
    assert main(["import", str(path), "--data-dir", data_dir]) == 0
    first = capsys.readouterr().out.splitlines()
    # no invoice is open: the 9 credits wait; two debits of 19.99 with the same label are two
    assert first[0].startswith(f"{path}: entries 13: matched 0, returned 0, unmatched 9, ")
    assert main(["import", str(path), "--data-dir", data_dir]) == 0
    again = capsys.readouterr().out.splitlines()
    assert again[0].endswith("(already imported 13)")
    assert main(["payments", "unmatched", "--data-dir", data_dir]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "unmatched 9, ambiguous 0"


def test_each_file_goes_to_the_creditor_its_seller_is(tmp_path, data_dir, capsys, monkeypatch):
    # the generated invoices' seller is Atelier Martin SARL, SIREN 552 100 554
    creditors = (
        '[atelier]\n[atelier.creditor]\nsiren = "552 100 554"\n[autre.creditor]\nsiren = "732 829 320"\n'
    )
    (tmp_path / "creditors.toml").write_text(creditors, encoding="utf-8")
    monkeypatch.setenv("RELANCE_CREDITORS_FILE", str(tmp_path / "creditors.toml"))
    bill = tmp_path / "F-2026-0042.xml"
    bill.write_bytes(cii_invoice(amount="1200.00"))
    assert main(["import", str(bill), "--data-dir", data_dir]) == 0  # found by its SIREN
    # default's identity is still the shipped example: anyone may import as it (a preview)
    assert main(["import", str(bill), "--creditor", "default", "--data-dir", data_dir]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "accepted 1, duplicate 0, rejected 0"
    assert main(["import", str(bill), "--creditor", "autre", "--data-dir", data_dir]) == 1
    assert capsys.readouterr().out.splitlines()[0] == (
        f"{bill}: rejected: BG-4: Atelier Martin SARL (SIREN 552100554, VAT FR40552100554) is not "
        "creditor autre, whose identity differs"
    )
    assert main(["status", "--json", "--creditor", "atelier", "--data-dir", data_dir]) == 0
    assert json.loads(capsys.readouterr().out)["open_invoices"] == 1
    assert status(data_dir, capsys)["open_invoices"] == 2  # every creditor's: one each


def test_a_folder_of_invoices_and_a_statement_is_imported_in_one_run(tmp_path, data_dir, capsys):
    """Given a folder with an e-invoice F-2026-0042 (1200.00) and, after it by name, a
    camt.053 statement with a transfer naming it
    When the folder is imported
    Then the invoice is applied before the statement is matched, and it is paid."""
    from tests.integration.test_bank_import import camt, entry

    folder = tmp_path / "inbox"
    folder.mkdir()
    (folder / "a-invoice.xml").write_bytes(cii_invoice(amount="1200.00"))
    statement = folder / "b-statement.xml"
    statement.write_text(
        camt("04", entry("1", "1200.00", payer="Boulangerie Dupont", text="Facture F-2026-0042")),
        encoding="utf-8",
    )
    assert main(["import", str(folder), "--data-dir", data_dir]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{statement}: entries 1: matched 1, returned 0, unmatched 0, ambiguous 0, not payments 0 "
        "(already imported 0)",
        "accepted 2, duplicate 0, rejected 0",
    ]
    assert status(data_dir, capsys)["open_invoices"] == 0
