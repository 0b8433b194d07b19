"""SIGINT stops every long-running command, also when it was started in the background.

A shell that starts a background job sets SIGINT to ignored in it; each command installs its
own handler. Given a command started with SIGINT ignored, when it gets SIGINT, then it exits 0
within a few seconds and logs its ``*.stopped`` line.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

RELANCE = str(Path(sys.executable).with_name("relance"))


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELANCE_")}
    env.update({"RELANCE_DATA_DIR": str(tmp_path / "var"), "RELANCE_TICK_SECONDS": "0.5", **extra})
    return env


def _events(log: Path) -> list[str]:
    lines = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
    return [json.loads(line).get("event", "") for line in lines if line.startswith("{")]


def _wait_for(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def _interrupt_in_background(tmp_path: Path, command: str, started: str, env: dict[str, str]) -> list[str]:
    log = tmp_path / f"{command}.log"
    with log.open("w") as handle:
        process = subprocess.Popen(
            [RELANCE, command],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=handle,
            preexec_fn=_ignore_sigint,  # what a shell does to a background job
        )
    try:
        assert _wait_for(lambda: started in _events(log), 60), log.read_text(encoding="utf-8")
        time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=15) == 0, log.read_text(encoding="utf-8")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return _events(log)


def test_relance_run_started_in_the_background_stops_on_sigint(tmp_path):
    events = _interrupt_in_background(tmp_path, "run", "service.started", _env(tmp_path))
    assert "service.signal" in events and events[-1] == "service.stopped"


@pytest.mark.redis
def test_relance_scheduler_started_in_the_background_stops_on_sigint(tmp_path, redis_url, redis_namespace):
    env = _env(tmp_path, RELANCE_REDIS_URL=redis_url, RELANCE_REDIS_NAMESPACE=redis_namespace)
    subprocess.run([RELANCE, "migrate"], cwd=tmp_path, env=env, check=True, capture_output=True, timeout=60)
    events = _interrupt_in_background(tmp_path, "scheduler", "scheduler.started", env)
    assert events[-1] == "scheduler.stopped"


@pytest.mark.redis
def test_relance_worker_started_in_the_background_stops_on_sigint(tmp_path, redis_url, redis_namespace):
    env = _env(
        tmp_path,
        RELANCE_REDIS_URL=redis_url,
        RELANCE_REDIS_NAMESPACE=redis_namespace,
        RELANCE_WORKER_PROCESSES="1",
        RELANCE_WORKER_THREADS="1",
    )
    subprocess.run([RELANCE, "migrate"], cwd=tmp_path, env=env, check=True, capture_output=True, timeout=60)
    events = _interrupt_in_background(tmp_path, "worker", "worker.ready", env)
    assert "worker.stopped" in events
