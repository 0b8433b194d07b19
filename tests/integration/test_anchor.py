"""`relance evidence anchor` writes the signed chain head and an RFC 3161 time-stamp over its
hash (from a local authority made with `openssl ts`); `relance evidence verify --anchor`
detects a chain rewritten after it, even when the rewritten chain verifies on its own."""

from __future__ import annotations

import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import select

from adapters.orm import EvidenceHead, EvidenceRecord
from adapters.store import transaction
from handlers.anchor import timestamp_status
from relance.cli import main
from relance.reports import verify_chain
from tests.integration.test_flow import at
from tests.support import ingest, invoice_issued, make_test_app, payment

KEY = "anchor-key-for-tests-0123456789"

TSA_CONFIG = """
[ tsa ]
default_tsa = tsa1
[ tsa1 ]
dir = {dir}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.pem
certs = $dir/ca.pem
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256
accuracy = secs:1
ordering = yes
tsa_name = no
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


def _openssl(*args: str, cwd: Path, data: bytes | None = None) -> bytes:
    done = subprocess.run(["openssl", *args], cwd=cwd, input=data, capture_output=True, check=False)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


@pytest.fixture
def authority(tmp_path_factory):
    """A throwaway CA, a TSA certificate signed by it, and a loopback HTTP time-stamping
    authority answering with `openssl ts -reply`. Yields (url, folder of ca.pem and tsa.pem)."""
    folder = tmp_path_factory.mktemp("tsa")
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-subj", "/CN=Test CA", "-days", "2",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign",
        cwd=folder,
    )  # fmt: skip
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "tsa.key", "-out", "tsa.csr",
        "-subj", "/CN=Test TSA",
        cwd=folder,
    )  # fmt: skip
    (folder / "ext.cnf").write_text("basicConstraints=CA:FALSE\nextendedKeyUsage=critical,timeStamping\n")
    _openssl(
        "x509", "-req", "-in", "tsa.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "tsa.pem", "-days", "2", "-extfile", "ext.cnf",
        cwd=folder,
    )  # fmt: skip
    (folder / "serial").write_text("01\n")
    (folder / "tsa.cnf").write_text(TSA_CONFIG.format(dir=folder))
    lock = threading.Lock()

    class Reply(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            query = self.rfile.read(int(self.headers["Content-Length"]))
            with lock:
                (folder / "query.tsq").write_bytes(query)
                body = _openssl(
                    "ts", "-reply", "-config", "tsa.cnf", "-queryfile", "query.tsq", "-out", "-", cwd=folder
                )
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Reply)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/tsa", folder
    server.shutdown()
    server.server_close()


@pytest.fixture
def app(database_url, tmp_path, monkeypatch):
    application = make_test_app(database_url, tmp_path, at("2026-03-02 10:00"))
    ingest(application, invoice_issued("F-1", "2026-04-01"), invoice_issued("F-2", "2026-04-02"))
    ingest(application, payment("F-1", "100.00", "2026-03-30"))
    monkeypatch.setenv("RELANCE_DATABASE_URL", application.engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("RELANCE_ANCHOR_KEY", KEY)
    monkeypatch.delenv("RELANCE_TSA_URL", raising=False)
    yield application
    application.dispose()


def run(app, *args: str) -> int:
    return main([*args, "--data-dir", str(app.settings.data_dir)])


def head(app) -> tuple[int, str]:
    with transaction(app.sessions) as session:
        row = session.get(EvidenceHead, 1)
        return row.seq, row.hash


def rewrite_whole_chain(app) -> None:
    """What someone with write access could do: change record 1 and rebuild every hash after it."""
    from handlers.evidence import hash_of

    with transaction(app.sessions) as session:
        rows = session.execute(select(EvidenceRecord).order_by(EvidenceRecord.seq)).scalars().all()
        rows[0].payload = rows[0].payload.replace("}", ',"forged":true}', 1)
        prev = rows[0].prev_hash
        for row in rows:
            row.prev_hash = prev
            row.hash = prev = hash_of(row)
        chain_head = session.get(EvidenceHead, 1)
        chain_head.hash = prev


def test_the_head_is_anchored_time_stamped_and_checked(app, authority, tmp_path, monkeypatch, capsys):
    url, folder = authority
    monkeypatch.setenv("RELANCE_TSA_URL", url)
    out = tmp_path / "anchors"
    seq, digest = head(app)

    assert run(app, "evidence", "anchor", "--out", str(out)) == 0
    statement, token = out / f"head-{seq}.json", out / f"head-{seq}.tsr"
    assert capsys.readouterr().out.splitlines() == [
        f"anchored record {seq}, head {digest}: {statement}",
        f"time-stamped: {token}",
    ]
    assert f'"hash":"{digest}"' in statement.read_text() and f'"seq":{seq}' in statement.read_text()
    assert timestamp_status(token.read_bytes()) == 0
    verified = _openssl(
        "ts", "-verify", "-digest", digest, "-in", str(token), "-CAfile", "ca.pem", "-untrusted", "tsa.pem",
        cwd=folder,
    )  # fmt: skip
    assert b"Verification: OK" in verified

    ingest(app, payment("F-2", "10.00", "2026-03-31"))  # the chain goes on after the anchor
    assert run(app, "evidence", "verify", "--anchor", str(statement)) == 0
    assert capsys.readouterr().out.startswith("ok ")


def test_a_whole_chain_rewritten_after_the_anchor_is_detected(app, tmp_path, capsys):
    out = tmp_path / "anchors"
    assert run(app, "evidence", "anchor", "--out", str(out)) == 0
    seq, _ = head(app)
    assert not (out / f"head-{seq}.tsr").exists()  # no authority configured
    capsys.readouterr()

    rewrite_whole_chain(app)
    assert verify_chain(app).ok  # on its own, the rewritten chain holds
    assert run(app, "evidence", "verify", "--anchor", str(out / f"head-{seq}.json")) == 1
    assert capsys.readouterr().out.strip() == (
        f"broken against {out / f'head-{seq}.json'}: anchored record {seq} does not have the anchored hash"
    )


def test_an_altered_statement_is_refused(app, tmp_path, capsys):
    out = tmp_path / "anchors"
    assert run(app, "evidence", "anchor", "--out", str(out)) == 0
    seq, digest = head(app)
    statement = out / f"head-{seq}.json"
    statement.write_text(statement.read_text().replace(digest, "a" * 64))
    capsys.readouterr()
    assert run(app, "evidence", "verify", "--anchor", str(statement)) == 2
    assert capsys.readouterr().err.strip() == (
        f"relance: error: {statement}: its signature does not hold under the anchor key"
    )


def test_anchoring_needs_the_key(app, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("RELANCE_ANCHOR_KEY")
    assert run(app, "evidence", "anchor", "--out", str(tmp_path / "anchors")) == 2
    assert capsys.readouterr().err.strip() == (
        "relance: error: RELANCE_ANCHOR_KEY is not set: head statements are signed with it"
    )


def test_an_unreachable_authority_is_one_line(app, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RELANCE_TSA_URL", "http://127.0.0.1:9/tsa")
    assert run(app, "evidence", "anchor", "--out", str(tmp_path / "anchors")) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("relance: error: time-stamping authority http://127.0.0.1:9/tsa: ")
    assert "\n" not in err
