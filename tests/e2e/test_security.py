"""Secrets stay out of logs and errors; file names cannot leave the outbox."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest
import structlog

from adapters.transports import safe_name, write_atomic
from config.logging import configure_logging
from handlers.ports import PermanentFailure
from tests.e2e.test_run_process import _env

SECRET = "s3cr3t-P4ssw0rd-never-logged"


def test_log_keys_that_look_like_secrets_are_masked():
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    structlog.get_logger("t").info("smtp.login", smtp_password=SECRET, api_token=SECRET, user="relance")
    logging.getLogger("library").info("plain", extra={"client_secret": SECRET})
    text = stream.getvalue()
    assert SECRET not in text
    first = json.loads(text.splitlines()[0])
    assert first["smtp_password"] == "***" and first["user"] == "relance"


def test_a_secret_key_is_masked_on_every_line_and_a_line_keeps_its_fields():
    """Whether a key names a secret is decided once per key: the second line is masked too."""
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    log = structlog.get_logger("relance.inbox")
    for _ in range(2):
        log.info("smtp.login", smtp_password=SECRET, user="relance")
    log.info("event.accepted", event_id="E-1", type="invoice.issued")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert SECRET not in stream.getvalue()
    assert [line["smtp_password"] for line in lines[:2]] == ["***", "***"]
    assert set(lines[2]) == {"event", "event_id", "type", "level", "logger", "timestamp"}
    accepted = (lines[2]["event"], lines[2]["logger"], lines[2]["level"])
    assert accepted == ("event.accepted", "relance.inbox", "info")


def test_a_bad_password_setting_is_reported_without_its_value(monkeypatch):
    from config.errors import ConfigError
    from config.settings import load_settings

    monkeypatch.setenv("RELANCE_SMTP_PASSWORD_FILE", "/nonexistent/secret")
    monkeypatch.setenv("RELANCE_SMTP_PASSWORD", SECRET)
    with pytest.raises(ConfigError) as caught:
        load_settings().smtp_secret()
    assert "RELANCE_SMTP_PASSWORD_FILE" in str(caught.value) and SECRET not in str(caught.value)


def test_the_service_never_writes_the_smtp_password_to_its_logs(tmp_path):
    """A real run that fails to reach its SMTP server logs the failure, not the password."""
    from tests.support import invoice_issued

    env = _env(
        tmp_path / "var",
        RELANCE_NOW="2026-03-27T10:00:00+01:00",
        RELANCE_SMTP_HOST="127.0.0.1",
        RELANCE_SMTP_PORT="1",
        RELANCE_SMTP_TLS="none",
        RELANCE_SMTP_USER="relance",
        RELANCE_SMTP_PASSWORD=SECRET,
    )
    event = json.dumps(invoice_issued("F-1", "2026-04-01"))
    subprocess.run(
        [sys.executable, "-m", "relance", "ingest", "-"],
        input=event,
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    output = _run_until(env, tmp_path, "message.retry", seconds=90)
    assert "message.retry" in output  # it did try, and said so
    assert SECRET not in output


def _run_until(env: dict[str, str], cwd: Path, wanted: str, seconds: float) -> str:
    """``relance run`` until its output shows ``wanted`` (or ``seconds`` pass: a loaded
    machine may take a while to start), then stopped; all it wrote."""
    log = cwd / "run.log"
    with log.open("w") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "relance", "run"], env=env, cwd=cwd, stdout=handle, stderr=handle
        )
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline and wanted not in log.read_text(encoding="utf-8"):
            time.sleep(0.2)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return log.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "message_id",
    [
        "<../../../../etc/passwd@x>",
        "<..@..>",
        "</absolute/path@x>",
        "<a/b\\c:d*e?f@x>",
        "<" + "é" * 400 + "@x>",
        "<\x00null@x>",
    ],
)
def test_file_names_from_message_ids_stay_inside_the_outbox(tmp_path, message_id):
    name = safe_name(message_id, ".eml")
    assert "/" not in name and "\\" not in name and not name.startswith(".")
    target = write_atomic(tmp_path / "outbox", name, b"x")
    assert target.parent == (tmp_path / "outbox").resolve()


def test_writing_outside_the_folder_is_refused(tmp_path):
    with pytest.raises(PermanentFailure, match="refusing to write outside"):
        write_atomic(tmp_path / "outbox", "../escape.eml", b"x")
    assert not Path(tmp_path / "escape.eml").exists()


NON_ASCII_SECRET = "pä55wörd-Ω-jamais-écrit"


def _pieces(secret: str, width: int = 6) -> set[str]:
    """Every run of ``width`` characters of ``secret``: no part of it may show either."""
    return {secret[i : i + width] for i in range(len(secret) - width + 1)}


@pytest.fixture
def smtp_refusing_logins():
    """A loopback SMTP server that offers AUTH and answers 535 to every login."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    from tests.conftest import free_port

    class Accepting:
        async def handle_DATA(self, server, session, envelope):
            return "250 OK"

    port = free_port()
    controller = Controller(
        Accepting(),
        hostname="127.0.0.1",
        port=port,
        auth_require_tls=False,
        authenticator=lambda *_: AuthResult(success=False, handled=False),
        ready_timeout=10,
    )
    controller.start()
    yield port
    controller.stop()


@pytest.mark.parametrize("secret", [SECRET, NON_ASCII_SECRET], ids=["ascii", "non_ascii"])
def test_failing_smtp_logins_connections_and_webhooks_never_show_a_secret_even_in_part(
    tmp_path, smtp_refusing_logins, secret
):
    """Given a wrong SMTP password (535), a closed SMTP port and an unreachable webhook,
    when the service tries them and logs every failure with its traceback,
    then no log line, error text or repr holds the secret or any 6 characters of it."""
    from pydantic import SecretStr

    from adapters.handover import PartnerLinks
    from adapters.transports import SmtpMailer
    from handlers.partners import Partner
    from tests.conftest import free_port
    from tests.integration.test_flow import at
    from tests.support import advance, ingest, invoice_issued, make_test_app

    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    library = logging.getLogger("dramatiq.worker.WorkerThread")
    texts: list[str] = []

    def attempt(action) -> None:
        try:
            action()
        except Exception as exc:  # what a worker does with any error: log it with its traceback
            texts.extend([str(exc), repr(exc), str(exc.__cause__), repr(exc.__cause__)])
            library.error("Failed to process message with unhandled exception.", exc_info=exc)

    login = ("relance", SecretStr(secret))
    wrong_login = SmtpMailer("127.0.0.1", smtp_refusing_logins, "none", *login, timeout=5)
    closed_port = SmtpMailer("127.0.0.1", free_port(), "none", "relance", SecretStr(secret), timeout=2)
    partner = Partner(
        "agence",
        "collection_agency",
        "webhook",
        url=f"http://127.0.0.1:{free_port()}/in",
        secret=SecretStr(secret),
        timeout=2,
    )
    from tests.integration.test_smtp import outgoing

    attempt(lambda: wrong_login.transmit(outgoing()))
    attempt(lambda: closed_port.transmit(outgoing()))
    attempt(lambda: PartnerLinks().post(partner, b"{}", 1, "key-1"))
    texts += [repr(wrong_login), str(wrong_login), repr(closed_port), repr(partner), str(partner)]

    app = make_test_app(
        f"sqlite:///{tmp_path / 'r.db'}",
        tmp_path,
        at("2026-03-02 10:00"),
        smtp_host="127.0.0.1",
        smtp_port=smtp_refusing_logins,
        smtp_tls="none",
        smtp_user="relance",
        smtp_password=secret,
    )
    ingest(app, invoice_issued("F-1", "2026-04-01"))
    attempt(lambda: advance(app, at("2026-03-27 09:00")))  # the pre_due e-mail meets the 535
    texts += [repr(app.settings), str(app.settings), repr(app.transports)]
    app.dispose()

    logged = stream.getvalue()
    assert "message.failed" in logged and "535" in logged  # it did fail, and said so
    assert "Traceback" in logged or "exception" in logged  # tracebacks were logged
    everything = logged + "\n".join(texts)
    leaked = sorted(piece for piece in _pieces(secret) if piece in everything)
    assert leaked == []
