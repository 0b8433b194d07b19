"""The lines of a JSON Lines feed, numbered as every reader of the feed numbers them
(``relance ingest``, and the cut of a file into parts for ``--jobs``)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import BinaryIO

from handlers.events import MAX_LINE_BYTES, OverlongLine


def numbered_lines(stream: BinaryIO) -> Iterator[tuple[int, bytes | OverlongLine]]:
    """Each line of ``stream`` with its number from 1, its line end removed; an over-long one
    (over ``MAX_LINE_BYTES``) read past and given as an ``OverlongLine``: its start, size and
    SHA-256."""
    number = 0
    while True:
        raw = stream.readline(MAX_LINE_BYTES + 2)
        if not raw:
            return
        number += 1
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            yield number, _skip_overlong(stream, raw)
            continue
        yield number, raw.rstrip(b"\r\n")


def _skip_overlong(stream: BinaryIO, head: bytes) -> OverlongLine:
    """Read past the rest of an over-long line, keeping its start, size and SHA-256."""
    digest, size, last = hashlib.sha256(), 0, head
    while True:
        rest = stream.readline(MAX_LINE_BYTES)
        if not rest:
            break
        digest.update(last)
        size, last = size + len(last), rest
        if rest.endswith(b"\n"):
            break
    last = last.rstrip(b"\r\n")
    digest.update(last)
    return OverlongLine.of(head, size + len(last), digest.hexdigest())
