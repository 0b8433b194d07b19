"""``relance run`` started as a process on the embedded default takes an event and mails."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import invoice_issued

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELANCE_")}
    env.update({"RELANCE_DATA_DIR": str(data_dir), "RELANCE_TICK_SECONDS": "0.2", **extra})
    return env


def _wait_for(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


@pytest.fixture
def policy_all_day(tmp_path) -> Path:
    """The default policy with a sending window open all evening (so 20:00 is inside)."""
    text = (ROOT / "config" / "policy.toml").read_text(encoding="utf-8")
    text = text.replace('start = "09:00:00"', 'start = "00:00:00"').replace(
        'end = "18:00:00"', 'end = "23:59:59"'
    )
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_relance_run_accepts_an_ingested_event_and_writes_an_eml_file(tmp_path, policy_all_day):
    data_dir = tmp_path / "var"
    # Friday 27 March 2026, 20:00 in Paris: outside the default window, inside this policy's
    env = _env(data_dir, RELANCE_NOW="2026-03-27T20:00:00+01:00", RELANCE_POLICY_FILE=str(policy_all_day))
    service = subprocess.Popen(
        [sys.executable, "-m", "relance", "run"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert _wait_for(lambda: (data_dir / "relance.db").exists(), 30), "service did not start"
        event = json.dumps(invoice_issued("F-77", "2026-04-01", "980.00"))
        ingest = subprocess.run(
            [sys.executable, "-m", "relance", "ingest", "-"],
            input=event,
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert ingest.returncode == 0, ingest.stderr
        assert ingest.stdout.strip().splitlines()[-1] == "accepted 1, duplicate 0, rejected 0"
        outbox = data_dir / "outbox" / "email"
        assert _wait_for(lambda: any(outbox.glob("*.eml")), 20), "no .eml written"
        (eml,) = list(outbox.glob("*.eml"))
        content = eml.read_text(encoding="utf-8")
        assert "F-77" in content and "To: compta@acme.example" in content
    finally:
        service.send_signal(signal.SIGTERM)
        try:
            _, stderr = service.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            service.kill()
            raise
    assert service.returncode == 0
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    names = {line["event"] for line in lines}
    assert {
        "service.started",
        "scheduler.tick",
        "reminder.sent",
        "message.transmitted",
        "service.stopped",
    } <= names
    assert len(lines) == len(stderr.splitlines())  # every log line is JSON


def test_a_wrong_policy_value_stops_the_service_with_one_line_naming_file_and_key(tmp_path):
    bad = tmp_path / "policy.toml"
    text = (ROOT / "config" / "policy.toml").read_text(encoding="utf-8")
    bad.write_text(text.replace("offset_days = 20", 'offset_days = "twenty"'), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "relance", "run"],
        cwd=tmp_path,
        env=_env(tmp_path / "var", RELANCE_POLICY_FILE=str(bad)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"relance: error: {bad}: steps[4].offset_days: Input should be a valid integer, "
        "unable to parse string as an integer"
    ]


def test_an_unreachable_database_is_one_clear_line(tmp_path):
    url = "postgresql://nobody@127.0.0.1:1/none"
    result = subprocess.run(
        [sys.executable, "-m", "relance", "status"],
        cwd=tmp_path,
        env=_env(tmp_path / "var", RELANCE_DATABASE_URL=url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(
        "relance: error: RELANCE_DATABASE_URL: "
        "database postgresql+psycopg://nobody@127.0.0.1:1/none unreachable:"
    )


def test_sigterm_mid_run_loses_nothing_and_a_restart_finishes_once(tmp_path, policy_all_day):
    """SIGTERM while reminders go out: in-flight work ends, the rest is re-emitted later."""
    data_dir = tmp_path / "var"
    env = _env(
        data_dir,
        RELANCE_NOW="2026-03-27T20:00:00+01:00",
        RELANCE_POLICY_FILE=str(policy_all_day),
        RELANCE_CLAIM_LEASE_SECONDS="5",
        RELANCE_WORKER_THREADS="2",
        # small batches of steps, so that the stop finds most of them still to do (with the
        # default 50, two threads' batches of 50 cover nearly all 120 before it comes)
        RELANCE_WORKER_BATCH="5",
    )
    debtor = invoice_issued("x", "2026-04-01")["debtor"]
    events = "\n".join(
        json.dumps(invoice_issued(f"F-{i}", "2026-04-01", debtor={**debtor, "id": f"D-{i}"}))
        for i in range(120)
    )
    subprocess.run(
        [sys.executable, "-m", "relance", "ingest", "-"],
        input=events,
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    outbox = data_dir / "outbox" / "email"

    def start(log: Path) -> subprocess.Popen:  # logs to a file: a full pipe would block it
        with log.open("w") as handle:
            return subprocess.Popen(
                [sys.executable, "-m", "relance", "run"],
                env=env,
                cwd=tmp_path,
                stdout=subprocess.DEVNULL,
                stderr=handle,
            )

    first = start(tmp_path / "first.log")
    assert _wait_for(lambda: len(list(outbox.glob("*.eml"))) >= 5, 60)
    first.send_signal(signal.SIGTERM)
    first.wait(timeout=60)
    stderr = (tmp_path / "first.log").read_text(encoding="utf-8")
    assert first.returncode == 0
    done_first = len(list(outbox.glob("*.eml")))
    second = start(tmp_path / "second.log")
    try:
        assert _wait_for(lambda: len(list(outbox.glob("*.eml"))) == 120, 90), (
            f"{len(list(outbox.glob('*.eml')))} of 120 after restart"
        )
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=60)
    import sqlite3

    with sqlite3.connect(data_dir / "relance.db") as db:
        statuses = dict(db.execute("SELECT status, count(*) FROM messages GROUP BY status"))
        steps = dict(
            db.execute("SELECT status, count(*) FROM planned_steps WHERE step = 'pre_due' GROUP BY status")
        )
    assert statuses == {"sent": 120}  # one message per invoice, none twice
    assert steps == {"done": 120}
    assert done_first < 120  # the stop really happened mid-run
    assert "service.stopped" in stderr
