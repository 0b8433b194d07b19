"""``relance import``: e-invoice files to events, through the same path as ``relance ingest``.

Each file becomes its events (adapters/importers/einvoice.py), which are validated,
de-duplicated and applied exactly like ingested lines, in batches of one transaction. A file
that cannot become an event is stored with the rejected events, with its reason naming the
EN 16931 term, so ``relance inbox`` lists it and ``relance inbox replay ID --file`` can apply
a corrected event in its place.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

import structlog

from adapters.importers.einvoice import ImportRejected, read_document
from config.bootstrap import App
from handlers.events import DEFAULT_CREDITOR, EventRejected
from handlers.service import ParsedLine, parse_line
from relance.ingest import BATCH, BatchItem, apply_items

log = structlog.get_logger("relance.import")


class NoSuchFile(ValueError):
    """A path given to ``relance import`` that is neither a file nor a folder."""


def files_of(paths: Iterable[str]) -> list[Path]:
    """The files to import, in the order given; a folder gives its files in name order
    (not its sub-folders, nor its hidden files)."""
    files: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")))
        elif path.is_file():
            files.append(path)
        else:
            raise NoSuchFile(f"{given}: no such file or folder")
    return files


def event_lines(
    path: Path, out: TextIO, creditor: str = DEFAULT_CREDITOR
) -> Iterator[tuple[int | None, bytes, EventRejected | None]]:
    """The events of one file as JSON lines numbered from 1, or one rejection for the file
    (no line number); warnings are printed and logged as ``import.warning``. The events are
    ``creditor``'s (``creditor_id``, left out for ``default``)."""
    try:
        document = read_document(path)
    except ImportRejected as rejected:
        yield None, _file_stand_in(path), EventRejected(rejected.reason)
        return
    for warning in document.warnings:
        out.write(f"{path}: warning: {warning}\n")
        log.warning("import.warning", file=str(path), number=document.number, warning=warning)
    for number, event in enumerate(document.events, start=1):
        owned = event if creditor == DEFAULT_CREDITOR else event | {"creditor_id": creditor}
        yield number, _line(owned), None


def _line(event: dict[str, Any]) -> bytes:
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _file_stand_in(path: Path) -> bytes:
    """What is stored as the raw text of a file that gave no event: its name, size and
    SHA-256, to find it again (the file itself may be a large PDF)."""
    digest, size = hashlib.sha256(), 0
    try:
        with open(path, "rb") as stream:
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
    except OSError:
        pass  # the rejection says why the file could not be read
    return _line({"import_file": path.name, "size": size, "sha256": digest.hexdigest()})


def import_files(
    app: App, files: list[Path], out: TextIO, batch_size: int = BATCH, creditor: str = DEFAULT_CREDITOR
) -> dict[str, int]:
    """Import ``files`` in order, in batches of up to ``batch_size`` events, as ``creditor``'s;
    print the warnings and rejections, then the summary line of ``relance ingest``."""
    counts = {"accepted": 0, "duplicate": 0, "rejected": 0}
    batch: list[BatchItem] = []
    for path in files:
        for number, raw, rejected in event_lines(path, out, creditor):
            parsed = ParsedLine(raw.decode("utf-8"), None, None, rejected) if rejected else parse_line(raw)
            shown = str(path) if number is None or number == 1 else f"{path} (event {number})"
            batch.append(BatchItem(str(path), number, raw, parsed, shown))
            if len(batch) >= batch_size:
                apply_items(app, batch, counts, out)
                batch = []
    if batch:
        apply_items(app, batch, counts, out)
    out.write(
        f"accepted {counts['accepted']}, duplicate {counts['duplicate']}, rejected {counts['rejected']}\n"
    )
    return counts


def simulation_lines(path: Path, warnings: TextIO) -> list[str]:
    """The events of one e-invoice as JSON lines for ``relance simulate``; its warnings go
    to ``warnings``. Raises ImportRejected for a file that gives no event."""
    document = read_document(path)
    for warning in document.warnings:
        warnings.write(f"{path}: warning: {warning}\n")
    return [_line(event).decode("utf-8") for event in document.events]
