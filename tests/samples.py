"""Published invoice and statement files, read in place from ``../shared/samples`` beside
the repository (their origin and licence are in SOURCES.md there); never copied in.

Without that folder the tests that need it are skipped, except when ``CI`` is set: then
they fail, so a CI run cannot pass without having read them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]
SAMPLES = REPOSITORY.parent / "shared" / "samples"


def sample(name: str) -> Path:
    """The path of sample ``name``; skips (or fails under CI) when it is not there."""
    path = SAMPLES / name
    if not path.is_file():
        message = f"sample file {path} is not there"
        if os.environ.get("CI"):
            pytest.fail(f"{message} (CI is set: the published samples must be present)")
        pytest.skip(message)
    return path
