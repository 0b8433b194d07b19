"""Hand-over of escalated cases to partners: a signed webhook against a real HTTP server on
loopback, and an e-mail with the dossier attached through a real SMTP server."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import logging
import threading
import zipfile
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from email import message_from_bytes
from email.message import Message
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import structlog
from sqlalchemy import func, select

from adapters.orm import CaseRow, EvidenceRecord, HandoverRow
from adapters.store import transaction
from config.logging import configure_logging
from relance.cli import main
from relance.reports import list_cases, status
from tests.integration.test_flow import at
from tests.support import advance, ingest, invoice_issued, make_test_app, next_planned, payment

SECRET = "k3y-for-the-partner-hmac-Zq8pW2"
SECRET_ENV = "RELANCE_TEST_PARTNER_KEY"


def body_signed(headers: Message, body: bytes) -> bytes:
    """What a hand-over's signature covers: the body."""
    return body


class PartnerEndpoint:
    """A webhook on loopback: checks the HMAC signature, answers from a script.

    ``signed`` gives the bytes the signature covers (the hand-overs' by default).
    """

    def __init__(
        self, secret: str, answers: list[int], signed: Callable[[Message, bytes], bytes] = body_signed
    ) -> None:
        self.secret = secret.encode()
        self.answers = list(answers)
        self.requests: list[dict] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                covered = signed(self.headers, body)
                expected = "sha256=" + hmac.new(endpoint.secret, covered, hashlib.sha256).hexdigest()
                verified = hmac.compare_digest(expected, self.headers.get("X-Relance-Signature", ""))
                code = (endpoint.answers.pop(0) if endpoint.answers else 200) if verified else 401
                endpoint.requests.append(
                    {
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": body,
                        "verified": verified,
                        "answered": code,
                    }
                )
                answer = b'{"ok": true}'
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/cases"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> PartnerEndpoint:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def webhook_partners(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "partners.toml"
    path.write_text(
        f"""
max_attempts = 10

[partners.agence_nord]
kind = "collection_agency"
channel = "webhook"
url = "{url}"
secret_env = "{SECRET_ENV}"
timeout = 5

[procedures]
procedure_simplifiee = "agence_nord"
injonction_de_payer = "agence_nord"
""",
        encoding="utf-8",
    )
    return path


def email_partners(tmp_path: Path) -> Path:
    path = tmp_path / "partners.toml"
    path.write_text(
        """
[partners.etude_martin]
kind = "commissaire_de_justice"
channel = "email"
email = "dossiers@etude-martin.example"

[procedures]
procedure_simplifiee = "etude_martin"
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def logs(capsys) -> Iterator[Callable[[], str]]:
    """Every JSON log line written during the test (the service's own configuration)."""
    root = logging.getLogger()
    saved = (structlog.get_config(), list(root.handlers), root.level)
    configure_logging("DEBUG")
    capsys.readouterr()
    yield lambda: capsys.readouterr().err
    structlog.configure(**saved[0])
    root.handlers[:] = saved[1]
    root.setLevel(saved[2])


def escalate(app) -> datetime:
    """Run the ladder until the case opens; return the instant it opened."""
    while True:
        with transaction(app.sessions) as session:
            if session.execute(select(CaseRow.id)).first() is not None:
                return app.clock.now()
        nxt = next_planned(app)
        assert nxt is not None and nxt < at("2026-12-31 00:00"), "no case was opened"
        advance(app, nxt)


def the_case(app) -> CaseRow:
    with transaction(app.sessions) as session:
        return session.execute(select(CaseRow)).scalar_one()


def the_handover(app) -> HandoverRow:
    with transaction(app.sessions) as session:
        return session.execute(select(HandoverRow)).scalar_one()


def evidence_of(app, kind: str) -> list[dict]:
    with transaction(app.sessions) as session:
        return [
            json.loads(p)
            for p in session.execute(
                select(EvidenceRecord.payload).where(EvidenceRecord.kind == kind).order_by(EvidenceRecord.seq)
            ).scalars()
        ]


def test_a_webhook_answering_503_twice_then_200_gets_the_case_once_after_three_attempts(
    database_url, tmp_path, monkeypatch, logs
):
    monkeypatch.setenv(SECRET_ENV, SECRET)
    with PartnerEndpoint(SECRET, [503, 503, 200]) as partner:
        app = make_test_app(
            database_url,
            tmp_path,
            at("2026-03-02 10:00"),
            partners_file=webhook_partners(tmp_path, partner.url),
        )
        try:
            ingest(app, invoice_issued("F-1", "2026-04-01", "1200.00"))
            opened = escalate(app)
            assert len(partner.requests) == 1  # published after the commit that opened it
            first = the_handover(app)
            assert (first.status, first.attempts, first.response_code) == ("pending", 1, 503)
            assert first.lease_until == opened + timedelta(seconds=30)
            advance(app, opened + timedelta(seconds=29))  # back-off not over: nothing
            assert len(partner.requests) == 1
            advance(app, opened + timedelta(seconds=30))
            assert len(partner.requests) == 2
            advance(app, opened + timedelta(seconds=30 + 60))  # back-off doubles
            assert len(partner.requests) == 3
            advance(app, opened + timedelta(hours=3))
            advance(app, opened + timedelta(days=2))
            handover, case = the_handover(app), the_case(app)
            handed = evidence_of(app, "case.handed_over")
            cases_lines = list(list_cases(app, None, None))
            report = status(app)
        finally:
            app.dispose()
    assert [r["answered"] for r in partner.requests] == [503, 503, 200]  # delivered once
    assert all(r["verified"] for r in partner.requests)  # checked by the server, with the key
    keys = {r["headers"]["Idempotency-Key"] for r in partner.requests}
    assert keys == {handover.idempotency_key}  # the same key on every attempt
    assert {r["path"] for r in partner.requests} == {"/v1/cases"}
    last = partner.requests[-1]
    body = json.loads(last["body"])
    assert last["headers"]["X-Relance-Timestamp"] == str(body["sent_at"])
    assert body["handover_id"] == handover.idempotency_key and body["attempt"] == 3
    assert body["case"]["recommended_procedure"] == "procedure_simplifiee"
    # each procedure as an option with its basis; the debtor did not say it is a merchant
    assert [(p["role"], p["code"], p["basis"], p["to_check"]) for p in body["case"]["procedures"]] == [
        ("recommended", "procedure_simplifiee", "CPCE art. L125-1, R125-1 et s.", []),
        (
            "alternative",
            "recouvrement_creances_commerciales",
            "CPCE art. L126-1 et s.",
            ["le débiteur est-il commerçant ? (non renseigné)"],
        ),
        ("alternative", "injonction_de_payer", "CPC art. 1405 et s.", []),
        ("alternative", "refere_provision", "CPC art. 835 al. 2, 873 al. 2", []),
    ]
    assert body["case"]["competent_court"]["place"] == "69007 Lyon"
    assert body["case"]["amount_claimed"] == str(case.amount_claimed)  # amounts as strings
    assert [i["number"] for i in body["invoices"]] == ["F-1"]
    assert body["invoices"][0]["balance"] == "1200.00"
    archive = base64.b64decode(body["dossier"]["content_base64"])
    assert zipfile.is_zipfile(io.BytesIO(archive))
    digest = hashlib.sha256(archive).hexdigest()
    assert body["dossier"]["sha256"] == digest

    assert (handover.status, handover.attempts, handover.response_code) == ("delivered", 3, 200)
    assert handover.delivered_at == opened + timedelta(seconds=90)
    assert case.status == "handed_over"
    assert len(handed) == 1
    assert handed[0]["dossier_sha256"] == digest
    assert (handed[0]["partner"], handed[0]["channel"], handed[0]["response_code"]) == (
        "agence_nord",
        "webhook",
        200,
    )
    assert cases_lines[0].split("\t")[1] == "handed_over"
    assert "handover: delivered agence_nord (webhook, attempts 3, HTTP 200" in cases_lines[0]
    assert (report["handovers_pending"], report["handovers_failed"]) == (0, 0)

    lines = [json.loads(line) for line in logs().splitlines() if line.startswith("{")]
    retries = [line for line in lines if line["event"] == "handover.retry"]
    assert [(r["level"], r["attempts"], r["response_code"]) for r in retries] == [
        ("warning", 1, 503),
        ("warning", 2, 503),
    ]
    assert [line["event"] for line in lines if line["event"] == "case.handed_over"] == ["case.handed_over"]
    assert SECRET not in json.dumps(lines)


def test_a_400_answer_fails_at_once_and_the_case_stays_open_visibly(
    database_url, tmp_path, monkeypatch, logs, capsys
):
    monkeypatch.setenv(SECRET_ENV, SECRET)
    with PartnerEndpoint(SECRET, [400]) as partner:
        app = make_test_app(
            database_url,
            tmp_path,
            at("2026-03-02 10:00"),
            partners_file=webhook_partners(tmp_path, partner.url),
        )
        try:
            ingest(app, invoice_issued("F-1", "2026-04-01", "1200.00"))
            opened = escalate(app)
            advance(app, opened + timedelta(hours=2))
            advance(app, opened + timedelta(days=3))
            handover, case = the_handover(app), the_case(app)
            failed = evidence_of(app, "handover.failed")
        finally:
            app.dispose()
        log_text = logs()
        # what an operator sees: the real commands on the same store
        monkeypatch.setenv("RELANCE_DATABASE_URL", database_url)
        monkeypatch.setenv("RELANCE_NOW", "2026-05-25T10:00:00+02:00")
        assert main(["cases", "--data-dir", str(tmp_path)]) == 0
        cases_out = capsys.readouterr().out
        assert main(["status", "--json", "--data-dir", str(tmp_path)]) == 0
        report = json.loads(capsys.readouterr().out)
    assert len(partner.requests) == 1  # not retried
    assert (handover.status, handover.attempts, handover.response_code) == ("failed", 1, 400)
    assert "HTTP 400" in handover.last_error
    assert case.status == "open"  # for a person
    assert [(f["partner"], f["response_code"]) for f in failed] == [("agence_nord", 400)]
    (line,) = cases_out.splitlines()
    assert line.split("\t")[1] == "open"
    assert "handover: failed agence_nord (webhook, attempts 1, HTTP 400, last error: HTTP 400" in line
    assert report["handovers_failed"] == 1 and report["handovers_pending"] == 0
    assert report["open_cases"] == 1
    events = [json.loads(x) for x in log_text.splitlines() if x.startswith("{")]
    (failure,) = [e for e in events if e["event"] == "handover.failed"]
    assert failure["level"] == "error" and failure["case_id"] == case.id
    assert not [e for e in events if e["event"] == "handover.retry"]
    assert SECRET not in log_text and SECRET not in cases_out


def test_a_dossier_goes_by_e_mail_with_the_zip_attached(database_url, tmp_path, smtp_server):
    app = make_test_app(
        database_url,
        tmp_path,
        at("2026-03-02 10:00"),
        partners_file=email_partners(tmp_path),
        smtp_host="127.0.0.1",
        smtp_port=smtp_server.port,
        smtp_tls="none",
        sender="Relance <relance@creancier.example>",
    )
    try:
        ingest(app, invoice_issued("F-1", "2026-04-01", "1200.00"))
        opened = escalate(app)
        advance(app, opened + timedelta(days=1))
        handover, case = the_handover(app), the_case(app)
        handed = evidence_of(app, "case.handed_over")
    finally:
        app.dispose()
    to_partner = [
        (m, env)
        for m, env in zip(smtp_server.messages, smtp_server.envelopes, strict=True)
        if env[1] == ["dossiers@etude-martin.example"]
    ]
    assert len(to_partner) == 1
    message, envelope = to_partner[0]
    assert envelope[0] == "relance@creancier.example"
    assert message["X-Relance-Handover"] == handover.idempotency_key
    assert message["Message-ID"] == f"<handover-{handover.idempotency_key}@creancier.example>"
    assert "procedure_simplifiee" in str(message["Subject"])
    text = message.get_body(("plain",)).get_content()
    assert "F-1" in text
    assert (
        "Procédure recommandée : Procédure simplifiée de recouvrement des petites créances "
        "(CPCE art. L125-1, R125-1 et s.)" in text
    )
    assert "Injonction de payer (CPC art. 1405 et s.)" in text  # an alternative, with its basis
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_content_type() == "application/zip"
    assert attachment.get_filename() == f"dossier-{case.id}.zip"
    archive = attachment.get_content()
    with zipfile.ZipFile(io.BytesIO(archive)) as dossier:
        assert any(name.endswith("summary.json") for name in dossier.namelist())
    assert (handover.status, handover.channel, handover.attempts) == ("delivered", "email", 1)
    assert handover.dossier_sha256 == hashlib.sha256(archive).hexdigest()
    assert case.status == "handed_over"
    assert (handed[0]["channel"], handed[0]["dossier_sha256"], handed[0]["response_code"]) == (
        "email",
        hashlib.sha256(archive).hexdigest(),
        None,
    )


def test_in_the_embedded_mode_the_dossier_e_mail_is_an_eml_file(sqlite_url, tmp_path):
    app = make_test_app(sqlite_url, tmp_path, at("2026-03-02 10:00"), partners_file=email_partners(tmp_path))
    try:
        ingest(app, invoice_issued("F-1", "2026-04-01", "1200.00"))
        escalate(app)
        handover = the_handover(app)
    finally:
        app.dispose()
    folder = tmp_path / "outbox" / "email"
    files = [f for f in folder.glob("*.eml") if f.name.startswith("handover-")]
    assert len(files) == 1 and handover.status == "delivered"
    message = message_from_bytes(files[0].read_bytes(), policy=default_policy)
    assert message["To"] == "dossiers@etude-martin.example"
    (attachment,) = list(message.iter_attachments())
    assert zipfile.is_zipfile(io.BytesIO(attachment.get_content()))


def test_a_case_paid_while_its_hand_over_waits_is_not_handed_over(database_url, tmp_path, monkeypatch):
    monkeypatch.setenv(SECRET_ENV, SECRET)
    with PartnerEndpoint(SECRET, [503]) as partner:
        app = make_test_app(
            database_url,
            tmp_path,
            at("2026-03-02 10:00"),
            partners_file=webhook_partners(tmp_path, partner.url),
        )
        try:
            ingest(app, invoice_issued("F-1", "2026-04-01", "1200.00"))
            opened = escalate(app)
            app.clock.set(opened + timedelta(seconds=10))
            ingest(app, payment("F-1", "1200.00", "2026-05-20"))
            advance(app, opened + timedelta(minutes=10))
            handover, case = the_handover(app), the_case(app)
        finally:
            app.dispose()
    assert len(partner.requests) == 1
    assert case.status == "paid"
    assert (handover.status, handover.last_error) == ("cancelled", "case paid")


def test_an_unreachable_partner_is_retried_then_failed_after_max_attempts(
    database_url, tmp_path, monkeypatch
):
    from tests.conftest import free_port

    monkeypatch.setenv(SECRET_ENV, SECRET)
    path = webhook_partners(tmp_path, f"http://127.0.0.1:{free_port()}/v1/cases")
    path.write_text(path.read_text().replace("max_attempts = 10", "max_attempts = 3"))
    app = make_test_app(database_url, tmp_path, at("2026-03-02 10:00"), partners_file=path)
    try:
        ingest(app, invoice_issued("F-1", "2026-04-01", "1200.00"))
        opened = escalate(app)
        for minutes in (1, 3, 10, 60):
            advance(app, opened + timedelta(minutes=minutes))
        handover, case = the_handover(app), the_case(app)
    finally:
        app.dispose()
    assert (handover.status, handover.attempts) == ("failed", 3)
    assert "ConnectionRefusedError" in handover.last_error
    assert "after 3 attempts" in handover.last_error
    assert case.status == "open"


def test_without_a_partner_for_the_procedure_the_case_stays_open(database_url, tmp_path, monkeypatch):
    monkeypatch.setenv(SECRET_ENV, SECRET)
    path = webhook_partners(tmp_path, "https://partner.example/hook")
    path.write_text(path.read_text().replace('procedure_simplifiee = "agence_nord"\n', ""))
    app = make_test_app(database_url, tmp_path, at("2026-03-02 10:00"), partners_file=path)
    try:
        ingest(app, invoice_issued("F-1", "2026-04-01", "1200.00"))
        escalate(app)
        with transaction(app.sessions) as session:
            count = session.execute(select(func.count()).select_from(HandoverRow)).scalar_one()
        case = the_case(app)
        lines = list(list_cases(app, None, None))
    finally:
        app.dispose()
    assert count == 0 and case.status == "open"
    assert lines[0].endswith("handover: none")


def test_a_claim_declaration_case_goes_to_the_partner_of_declaration_de_creance(database_url, tmp_path):
    from tests.integration.test_insolvency_prescription import insolvency

    path = email_partners(tmp_path)
    path.write_text(path.read_text().replace("procedure_simplifiee", "declaration_de_creance"))
    app = make_test_app(database_url, tmp_path, at("2026-03-02 10:00"), partners_file=path)
    try:
        ingest(app, invoice_issued("F-1", "2026-04-01", "1200.00"))
        advance(app, at("2026-04-07 09:00"))
        app.clock.set(at("2026-05-15 12:00"))
        ingest(app, insolvency("2026-05-12", bodacc="2026-05-31"))
        advance(app, at("2026-05-15 12:00"))
        handover, case = the_handover(app), the_case(app)
        requested = evidence_of(app, "handover.requested")
    finally:
        app.dispose()
    assert case.kind == "claim_declaration" and case.status == "handed_over"
    assert (handover.partner, handover.status) == ("etude_martin", "delivered")
    assert requested[0]["recommended_procedure"] == "declaration_de_creance"
    files = list((tmp_path / "outbox" / "email").glob("handover-*.eml"))
    assert len(files) == 1
