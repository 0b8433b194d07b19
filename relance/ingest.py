"""``relance ingest``: apply a JSON Lines stream, report per line, summary last."""

from __future__ import annotations

from typing import BinaryIO, TextIO

from config.bootstrap import App
from handlers.adapters.store import transaction
from handlers.events import MAX_LINE_BYTES
from handlers.service import ingest_one

BATCH = 500


def _lines(stream: BinaryIO):
    number = 0
    while True:
        raw = stream.readline(MAX_LINE_BYTES + 2)
        if not raw:
            return
        number += 1
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while True:  # skip the rest of an over-long line
                rest = stream.readline(MAX_LINE_BYTES)
                if not rest or rest.endswith(b"\n"):
                    break
        yield number, raw.rstrip(b"\r\n")


def ingest_stream(app: App, stream: BinaryIO, label: str, out: TextIO) -> dict[str, int]:
    """Ingest every non-blank line, in batches of one transaction each."""
    counts = {"accepted": 0, "duplicate": 0, "rejected": 0}
    batch: list[tuple[int, bytes]] = []
    for number, raw in _lines(stream):
        if raw.strip():
            batch.append((number, raw))
        if len(batch) >= BATCH:
            _apply(app, batch, label, counts, out)
            batch = []
    if batch:
        _apply(app, batch, label, counts, out)
    out.write(f"accepted {counts['accepted']}, duplicate {counts['duplicate']}, "
              f"rejected {counts['rejected']}\n")
    return counts


def _apply(app: App, batch: list[tuple[int, bytes]], label: str, counts: dict[str, int],
           out: TextIO) -> None:
    now = app.clock.now()
    with transaction(app.sessions) as session:
        for number, raw in batch:
            result = ingest_one(session, raw, now, app.ctx, source=label, line_no=number)
            key = "accepted" if result.status == "parked" else result.status
            counts[key] += 1
            if result.status == "rejected":
                out.write(f"line {number}: rejected: {result.reason}\n")
