"""Run ``relance simulate`` the way an operator does, for the end-to-end tests."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

from relance.cli import main


def simulate(events: Path, until: str, folder: Path, *options: str) -> tuple[list[dict], str]:
    """Simulate ``events`` up to ``until`` into ``folder`` (with the command's ``options``);
    the actions and the JSON logs."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["simulate", str(events), "--until", until, "--data-dir", str(folder), *options])
    assert code == 0, err.getvalue()[-2000:]
    return [json.loads(line) for line in out.getvalue().splitlines()], err.getvalue()
