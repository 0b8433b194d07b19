"""``relance case show`` / ``relance case export``: the dossier of a case (docs/dossier.md).

The sample of the README (examples/events.jsonl) escalates CLI-ACME on 22 May 2026 with
``injonction_de_payer`` (see test_simulate.py for the amounts, worked out by hand). The
provider's receipt of the formal notice is added as a ``delivery.status`` ``acknowledged``
event two days after the letter, so that the dossier can show it: signed on Wednesday 13
May, the day the letter was expected to be presented, so the deadline stays 21 May.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import zipfile
from datetime import UTC, datetime
from email import message_from_bytes
from itertools import pairwise
from pathlib import Path

import pytest
from sqlalchemy import create_engine, exists, func, select

from adapters.dossier import dossier_archive, write_dossier
from adapters.orm import CaseRow, EvidenceHead, EvidenceRecord, MessageRow, PlannedStep, StepLease
from adapters.store import transaction
from config.bootstrap import build_app
from config.settings import load_settings
from handlers.reminders import message_id_for
from relance.cli import main
from relance.simulate import SIMULATION_KEY
from tests.support import advance, ingest, invoice_issued, make_test_app, payment

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SAMPLE = EXAMPLES / "events.jsonl"
INSOLVENCY = EXAMPLES / "insolvency.jsonl"
ENV = (
    "RELANCE_DATABASE_URL",
    "RELANCE_REDIS_URL",
    "RELANCE_SMTP_HOST",
    "RELANCE_SENDER",
    "RELANCE_DATA_DIR",
    "RELANCE_POLICY_FILE",
    "RELANCE_RATES_FILE",
    "RELANCE_NOW",
)
# the registered formal notice of both ACME invoices, as the simulation keys its Message-IDs
# (docs/events.md)
NOTICE_ID = message_id_for(
    "registered_letter",
    [("F-2026-0101", "formal_notice"), ("F-2026-0102", "formal_notice")],
    "localhost",
    SIMULATION_KEY.encode(),
)
RECEIPT = {
    "event_id": "evt-ar-1",
    "type": "delivery.status",
    "occurred_at": "2026-05-13T11:00:00+02:00",
    "message_id": NOTICE_ID,
    "status": "acknowledged",
    "at": "2026-05-13T10:42:00+02:00",
}


@pytest.fixture(scope="module")
def clean_env():
    with pytest.MonkeyPatch.context() as patch:
        for name in ENV:
            patch.delenv(name, raising=False)
        yield


def simulate(source: Path, until: str, folder: Path) -> None:
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["simulate", str(source), "--until", until, "--data-dir", str(folder)]) == 0


@pytest.fixture(scope="module")
def store(tmp_path_factory, clean_env) -> Path:
    folder = tmp_path_factory.mktemp("dossier")
    events = folder / "events.jsonl"
    events.write_text(
        SAMPLE.read_text(encoding="utf-8").rstrip("\n") + "\n" + json.dumps(RECEIPT) + "\n", encoding="utf-8"
    )
    simulate(events, "2026-06-30", folder / "var")
    return folder / "var"


@pytest.fixture(scope="module")
def exported(store, tmp_path_factory) -> tuple[Path, list[str]]:
    out = tmp_path_factory.mktemp("export") / "case-1"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["case", "export", "1", str(out), "--data-dir", str(store)]) == 0
    return out, printed.getvalue().splitlines()


def stored(store: Path, query):
    engine = create_engine(f"sqlite:///{store / 'relance.db'}")
    try:
        with engine.connect() as connection:
            return connection.execute(query).all()
    finally:
        engine.dispose()


def test_the_chain_of_the_simulated_store_verifies(store, capsys):
    assert main(["evidence", "verify", "--data-dir", str(store)]) == 0
    assert capsys.readouterr().out.startswith("ok ")


def test_every_file_of_the_manifest_is_there_with_its_sha256(exported):
    out, printed = exported
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    listed = {f["path"]: f["sha256"] for f in manifest["files"]}
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert on_disk == {*listed, "manifest.json"}
    for name, digest in listed.items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest, name
    assert sorted(printed) == sorted(str(out / name) for name in on_disk)
    assert {
        "summary.md",
        "summary.json",
        "deliveries.json",
        "evidence.jsonl",
        "verification.txt",
        "injonction_de_payer.md",
    } <= set(listed)


def test_messages_hold_the_exact_bytes_recorded_in_the_evidence(exported, store):
    out, _ = exported
    rows = stored(
        store, select(MessageRow.message_id, MessageRow.channel).where(MessageRow.debtor_id == "CLI-ACME")
    )
    files = sorted(p.name for p in (out / "messages").iterdir())
    assert len(files) == len(rows) == 10  # 7 e-mails, 2 letters, 1 registered letter
    assert sum(f.endswith(".eml") for f in files) == sum(c == "email" for _, c in rows)
    sent = {
        message_id: json.loads(payload)["content_sha256"]
        for message_id, payload in stored(
            store,
            select(EvidenceRecord.message_id, EvidenceRecord.payload).where(
                EvidenceRecord.kind == "reminder.sent"
            ),
        )
    }
    deliveries = json.loads((out / "deliveries.json").read_text(encoding="utf-8"))
    assert {d["file"].split("/", 1)[1] for d in deliveries} == set(files)
    for delivery in deliveries:
        content = (out / delivery["file"]).read_bytes()
        assert hashlib.sha256(content).hexdigest() == sent[delivery["message_id"]]
        assert delivery["content_matches_evidence"] is True
        if delivery["channel"] == "email":
            assert message_from_bytes(content)["Message-ID"] == delivery["message_id"]
        else:
            assert content.startswith(b"%PDF")


def test_the_formal_notice_and_its_receipt_are_in_the_dossier(exported):
    from pypdf import PdfReader

    out, _ = exported
    deliveries = json.loads((out / "deliveries.json").read_text(encoding="utf-8"))
    (notice,) = [d for d in deliveries if d["channel"] == "registered_letter"]
    assert notice["message_id"] == NOTICE_ID and notice["step"] == "formal_notice"
    assert notice["status"] == "sent" and notice["tracking_id"]
    assert [(s["status"], s["status_at"]) for s in notice["delivery_statuses"]] == [
        ("acknowledged", "2026-05-13T10:42:00+02:00")
    ]
    text = PdfReader(out / notice["file"]).pages[0].extract_text()
    assert "Mise en demeure" in text and "F-2026-0101" in text
    # the letter a court receives carries the creditor's legal mentions (C. com. R123-237)
    assert "SAS au capital de 10 000 €, RCS Paris 123 456 782" in " ".join(text.split())


def test_the_summary_shows_the_interest_per_half_year_and_the_total_claimed(exported):
    out, _ = exported
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert "ACME Industrie SAS" in summary and "552100554" in summary
    assert "12 rue des Forges" in summary and "69007 Lyon" in summary
    # F-0101: 1 200 € from 2 to 20 April, then 1 000 € (the 200 € paid on 20 April reduce the
    # principal, principal first) to 22 May: 1 000 * .1215 * 32 / 365 = 10.65205;
    # 7.58959 + 10.65205 = 18.24164 -> 18,24 €; F-0102: 5 400 € for 51 days, 2 April to 22 May
    # (test_simulate.py): 5 400 * .1215 * 51 / 365 = 91.67425 -> 91,67 €
    assert "| 2026-H1 | 2 avril 2026 | 20 avril 2026 | 19 | 1 200,00 € | 12,15 % | 7,58959 € |" in summary
    assert "| 2026-H1 | 21 avril 2026 | 22 mai 2026 | 32 | 1 000,00 € | 12,15 % | 10,65205 € |" in summary
    assert "| 2026-H1 | 2 avril 2026 | 22 mai 2026 | 51 | 5 400,00 € | 12,15 % | 91,67425 € |" in summary
    assert "**18,24 €**" in summary and "**91,67 €**" in summary
    assert "20 avril 2026 : paiement de 200,00 €" in summary
    assert "Pénalités dues : 18,24 €" in summary  # none of the payment went to them
    # 6 400 principal + 109,91 penalties (18,24 + 91,67) + 80 indemnities
    assert "**Total réclamé** | **6 589,91 €**" in summary
    assert "`injonction_de_payer`" in summary and "`refere_provision`" in summary
    assert "créance non contestée de 6589.91 > 5000.00" in summary  # the stored reason, in French
    data = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert data["case"]["amount_claimed"] == "6589.91"
    assert data["totals"] == {
        "principal": "6400.00",
        "late_interest": "109.91",
        "indemnities": "80.00",
        "amount_claimed": "6589.91",
    }
    first = data["invoices"][0]
    assert first["number"] == "F-2026-0101" and first["interest"]["due"] == "18.24"
    assert first["payments"] == [
        {
            "kind": "payment",
            "on_day": "2026-04-20",
            "amount": "200.00",
            "reference": None,
            "after_computation": False,
        }
    ]


def test_the_injonction_de_payer_request_lists_the_pieces(exported):
    out, _ = exported
    request = (out / "injonction_de_payer.md").read_text(encoding="utf-8")
    deliveries = json.loads((out / "deliveries.json").read_text(encoding="utf-8"))
    (notice,) = [d for d in deliveries if d["channel"] == "registered_letter"]
    assert "Votre société SAS" in request and "ACME Industrie SAS" in request
    assert "6 400,00 €" in request and "109,91 €" in request and "80,00 €" in request
    assert "**6 589,91 €**" in request
    assert "L441-10" in request and "D441-5" in request
    assert "Facture F-2026-0101" in request and "Facture F-2026-0102" in request
    assert "conditions générales de vente" in request
    assert f"`{notice['file']}`" in request
    assert "Accusé de réception de la mise en demeure, signé le 13 mai 2026" in request


def hashed_as_documented(record: dict) -> str:
    """A record's hash recomputed as docs/dossier.md tells a reader to, by its version."""
    parts = [record["prev_hash"], str(record["seq"]), record["at"], record["kind"]]
    payload = record["payload"]
    if record["version"] in (2, 3, 4):
        selectors = {k: record[k] for k in ("case_id", "debtor_id", "invoice_numbers", "message_id")}
        parts = [
            f"v{record['version']}",
            *parts,
            json.dumps(selectors, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
        ]
    if record["version"] == 4:  # the creditor's id after the version line
        parts.insert(1, record["creditor_id"])
    if record["version"] >= 3:
        payload = record["sealed_payload"]
    return hashlib.sha256("\n".join([*parts, payload]).encode("utf-8")).hexdigest()


def sealed_as_documented(record: dict) -> str:
    """A version 3 or 4 record's sealed payload recomputed from its payload and salt."""
    import hmac

    payload = json.loads(record["payload"])
    for key in ("address", "email", "name", "phone", "recipient", "to"):
        if payload.get(key) is not None and record["salt"]:
            clear = json.dumps(payload[key], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            digest = hmac.new(bytes.fromhex(record["salt"]), clear.encode("utf-8"), hashlib.sha256)
            payload[key] = "hmac-sha256:" + digest.hexdigest()
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def test_evidence_records_chain_and_their_hashes_recompute(exported, store):
    out, _ = exported
    records = [json.loads(line) for line in (out / "evidence.jsonl").read_text(encoding="utf-8").splitlines()]
    assert records and [r["seq"] for r in records] == sorted(r["seq"] for r in records)
    for before, after in pairwise(records):
        if after["seq"] == before["seq"] + 1:
            assert after["prev_hash"] == before["hash"]
    for record in records:
        assert (record["version"], record["creditor_id"]) == (4, "default")
        assert hashed_as_documented(record) == record["hash"], record["seq"]
        assert sealed_as_documented(record) == record["sealed_payload"], record["seq"]
    kinds = {r["kind"] for r in records}
    assert {
        "event.accepted",
        "reminder.sent",
        "message.transmitted",
        "delivery.status",
        "deadline.expired",
        "case.escalated",
    } <= kinds
    ours = {"F-2026-0101", "F-2026-0102"}
    assert all(
        r["debtor_id"] == "CLI-ACME" or r["case_id"] == 1 or ours.intersection(r["invoice_numbers"])
        for r in records
    )
    assert not any("F-2026-0103" in r["invoice_numbers"] for r in records)  # CLI-BLEU's
    (head,) = stored(store, select(EvidenceHead.seq, EvidenceHead.hash))
    text = (out / "verification.txt").read_text(encoding="utf-8")
    assert text.startswith(f"ok {head.seq} records\n")
    assert f"chain head: seq {head.seq} hash {head.hash}" in text


def test_the_zip_holds_the_same_files(exported, store, tmp_path, capsys):
    out, _ = exported
    target = tmp_path / "case-1.zip"
    assert main(["case", "export", "1", str(target), "--zip", "--data-dir", str(store)]) == 0
    assert capsys.readouterr().out.strip() == str(target)
    with zipfile.ZipFile(target) as archive:
        names = archive.namelist()
        assert names == sorted(names)
        assert set(names) == {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
        for name in names:
            if name.startswith("messages/"):
                assert archive.read(name) == (out / name).read_bytes()


def test_the_archive_is_deterministic_for_a_given_instant(store, clean_env):
    app = build_app(load_settings(data_dir=store))
    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    try:
        with transaction(app.sessions) as session:
            first = dossier_archive(session, 1, app.ctx, now)
            second = dossier_archive(session, 1, app.ctx, now)
            with pytest.raises(LookupError, match=r"^no case 42$"):
                dossier_archive(session, 42, app.ctx, now)
    finally:
        app.dispose()
    assert first == second
    with zipfile.ZipFile(io.BytesIO(first)) as archive:
        assert {i.date_time for i in archive.infolist()} == {(2026, 6, 1, 12, 0, 0)}
        summary = archive.read("summary.md").decode("utf-8")
    # on 1 June the case is still live: the update to that day adds 10 days of penalties
    assert "### Actualisation au 1er juin 2026" in summary


def test_case_show_prints_the_summary(store, capsys):
    assert main(["case", "show", "1", "--data-dir", str(store)]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith("# Dossier de recouvrement n° 1 — ACME Industrie SAS\n")
    assert "`injonction_de_payer`" in shown and "6 589,91 €" in shown


def test_case_show_lists_the_alternatives_with_their_basis_and_the_competent_court(store, capsys):
    # ACME (Lyon 69007) did not say whether it is a merchant: the merchants' procedure is an
    # alternative to check, and the court is named for either case
    assert main(["case", "show", "1", "--data-dir", str(store)]) == 0
    shown = capsys.readouterr().out
    assert (
        "### Recommandée : Injonction de payer (`injonction_de_payer`)\n\n- Base légale : CPC art. 1405"
        in shown
    )
    assert (
        "### Alternative : Référé-provision (`refere_provision`)\n\n- Base légale : CPC art. 835 al. 2"
        in shown
    )
    assert "(`recouvrement_creances_commerciales`)\n\n- Base légale : CPCE art. L126-1 et s." in shown
    assert "- À vérifier : le débiteur est-il commerçant ? (non renseigné)" in shown
    assert "**tribunal des activités économiques de Lyon si le débiteur est commerçant ou artisan" in shown
    assert "- Lieu pour lequel le chercher : 69007 Lyon" in shown


@pytest.mark.parametrize("command", [["show", "42"], ["export", "42", "OUT"]])
def test_an_unknown_case_is_one_line_and_exit_2(store, tmp_path, capsys, command):
    args = [str(tmp_path / "out") if a == "OUT" else a for a in command]
    assert main(["case", *args, "--data-dir", str(store)]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == "relance: error: no case 42"
    assert not (tmp_path / "out").exists()


def test_a_non_empty_folder_is_refused(store, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    assert main(["case", "export", "1", str(tmp_path), "--data-dir", str(store)]) == 2
    err = capsys.readouterr().err.splitlines()[-1]
    assert err.startswith("relance: error: ") and "not empty" in err
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_a_claim_declaration_dossier_has_no_injonction_request(tmp_path, clean_env):
    simulate(INSOLVENCY, "2026-04-30", tmp_path / "var")
    out = tmp_path / "dossier"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["case", "export", "1", str(out), "--data-dir", str(tmp_path / "var")]) == 0
    assert not (out / "injonction_de_payer.md").exists()
    data = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert data["case"]["kind"] == "claim_declaration"
    assert data["case"]["recommended_procedure"] == "declaration_de_creance"
    assert data["case"]["deadline"] == "2026-05-20" and data["update"] is None
    # penalties stop the day before the judgment of 17 March (effective at 0 h, L622-28):
    # 5 to 16 March, 1800 * .1215 * 12 / 365 = 7.19 (the judgment day was counted before: 7.79)
    (invoice,) = data["invoices"]
    assert invoice["interest"]["until"] == "2026-03-16" and invoice["late_interest"] == "7.19"
    assert data["case"]["amount_claimed"] == "1847.19"
    # only the messages of the pre-judgment invoice of the case
    assert [m["invoice_numbers"] for m in data["messages"]] == [["F-2026-0801"]] * 4
    assert len(list((out / "messages").iterdir())) == 4
    assert (out / "verification.txt").read_text(encoding="utf-8").startswith("ok ")


# --------------------------------------------------------------------------- both stores


def paris(text: str) -> datetime:
    from tests.flowtime import PARIS

    return datetime.fromisoformat(text).replace(tzinfo=PARIS)


@pytest.fixture
def app(database_url, tmp_path):
    application = make_test_app(database_url, tmp_path, paris("2026-03-02 10:00"))
    yield application
    application.dispose()


def test_a_dossier_is_written_from_sqlite_and_postgresql(app, tmp_path):
    ingest(app, invoice_issued("F-1", "2026-04-01", "5200.00"), invoice_issued("F-2", "2026-04-01", "900.00"))
    app.clock.set(paris("2026-04-20 08:00"))
    ingest(app, payment("F-2", "100.00", "2026-04-20"))
    while True:
        with transaction(app.sessions) as session:
            nxt = session.execute(
                select(func.min(PlannedStep.due_at)).where(
                    PlannedStep.status == "planned",
                    ~exists().where(StepLease.step_id == PlannedStep.id),  # not in flight
                )
            ).scalar()
            cases = session.execute(select(func.count()).select_from(CaseRow)).scalar()
        if nxt is None or cases:
            break
        advance(app, nxt)
    with transaction(app.sessions) as session:
        case = session.execute(select(CaseRow)).scalar_one()
        messages = session.execute(select(func.count()).select_from(MessageRow)).scalar()
        written = write_dossier(session, case.id, tmp_path / "out", app.ctx, app.clock.now())
        archive = dossier_archive(session, case.id, app.ctx, app.clock.now())
    assert case.recommended_procedure == "injonction_de_payer"
    names = {p.relative_to(tmp_path / "out").as_posix() for p in written}
    assert len([n for n in names if n.startswith("messages/")]) == messages
    with zipfile.ZipFile(io.BytesIO(archive)) as files:
        assert set(files.namelist()) == names
    data = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert data["case"]["amount_claimed"] == data["totals"]["amount_claimed"] == str(case.amount_claimed)
    f2 = data["invoices"][1]
    assert f2["number"] == "F-2" and len(f2["interest"]["segments"]) == 2
    assert (tmp_path / "out" / "verification.txt").read_text().startswith("ok ")
