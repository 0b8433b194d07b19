"""A reader that goes away (`relance … | head`) ends the command quietly: no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "events.jsonl"
RELANCE = Path(sys.executable).parent / "relance"


def test_a_closed_pipe_stops_the_command_without_a_traceback(tmp_path):
    # the JSON Lines of the sample carry whole message bodies: far more than a pipe holds
    # once `head` has read its first line and left
    run = subprocess.run(
        ["bash", "-o", "pipefail", "-c", f"'{RELANCE}' simulate '{SAMPLE}' --until 2026-06-30 | head -1"],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "RELANCE_DATA_DIR": str(tmp_path / "var")},
    )
    assert run.stdout.count("\n") == 1 and '"action"' in run.stdout
    assert "Traceback" not in run.stderr and "BrokenPipeError" not in run.stderr
    assert run.returncode == 141
