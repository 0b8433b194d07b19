"""Read-only commands print their own output only: no log line on stderr in normal operation."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
RELANCE = str(Path(sys.executable).with_name("relance"))


def _run(tmp_path: Path, *args: str, **extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELANCE_")}
    env.update({"RELANCE_DATA_DIR": str(tmp_path / "var"), **extra})
    return subprocess.run(
        [RELANCE, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def store_with_a_case(tmp_path_factory) -> Path:
    """The sample replayed to the end of June 2026: messages, a case, a rejected event."""
    folder = tmp_path_factory.mktemp("quiet")
    sample = str(ROOT / "examples" / "events.jsonl")
    assert _run(folder, "simulate", sample, "--until", "2026-06-30", "--data-dir", "var").returncode == 0
    return folder


@pytest.mark.parametrize(
    "command",
    [
        ["status"],
        ["status", "--json"],
        ["cases"],
        ["case", "show", "1"],
        ["inbox"],
        ["rates"],
        ["evidence", "verify"],
    ],
)
def test_a_read_only_command_writes_nothing_on_stderr(store_with_a_case, command):
    result = _run(store_with_a_case, *command)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    assert result.stderr == ""


@pytest.mark.redis
def test_relance_dlq_writes_nothing_on_stderr(store_with_a_case, redis_url, redis_namespace):
    result = _run(
        store_with_a_case, "dlq", RELANCE_REDIS_URL=redis_url, RELANCE_REDIS_NAMESPACE=redis_namespace
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "0 dead letter(s)\n", "")
