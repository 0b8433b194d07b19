"""Secrets stay out of logs and errors; file names cannot leave the outbox."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
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
    try:
        run = subprocess.run(
            [sys.executable, "-m", "relance", "run"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=8,
        )
        output = run.stdout + run.stderr
    except subprocess.TimeoutExpired as stopped:
        output = (stopped.stdout or b"").decode() + (stopped.stderr or b"").decode()
    assert "message.retry" in output  # it did try, and said so
    assert SECRET not in output


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
