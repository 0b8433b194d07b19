"""``relance import``: e-invoice files and bank statements to events, through the same path
as ``relance ingest``.

Each file becomes its events (adapters/importers/einvoice.py), which are validated,
de-duplicated and applied exactly like ingested lines, in batches of one transaction. A file
that cannot become an event is stored with the rejected events, with its reason naming the
EN 16931 term, so ``relance inbox`` lists it and ``relance inbox replay ID --file`` can apply
a corrected event in its place. A bank statement gives the payments of its entries
(intake/bank_import.py).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

import structlog
from sqlalchemy import select

from adapters.importers.einvoice import ImportedDocument, ImportRejected, Seller, read_document
from adapters.orm import RejectedEvent
from adapters.store import transaction
from config.bootstrap import App
from config.creditor import example_keys
from handlers.context import Context, UnknownCreditor
from handlers.events import DEFAULT_CREDITOR, EventRejected
from handlers.identity import is_seller
from handlers.service import ParsedLine, parse_line
from intake.bank_import import StatementRefused, is_statement, statement_events
from intake.ingest import BATCH, BatchItem, apply_items

log = structlog.get_logger("relance.import")


class NoSuchFile(ValueError):
    """A path given to ``relance import`` that is neither a file nor a folder."""


class Files:
    """The files to import, in order, kept as folder and file names and made into paths one
    at a time: 100 000 names take about 7 MB, their paths five times as much."""

    def __init__(self) -> None:
        self._parts: list[tuple[Path, list[str]]] = []

    def add(self, folder: Path, names: list[str]) -> None:
        if names:
            self._parts.append((folder, names))

    def __iter__(self) -> Iterator[Path]:
        for folder, names in self._parts:
            for name in names:
                yield folder / name

    def __len__(self) -> int:
        return sum(len(names) for _, names in self._parts)


def files_of(paths: Iterable[str]) -> Files:
    """The files to import, in the order given; a folder gives its files in name order
    (not its sub-folders, nor its hidden files)."""
    files = Files()
    for given in paths:
        path = Path(given)
        if path.is_dir():
            with os.scandir(path) as entries:
                files.add(path, sorted(e.name for e in entries if not e.name.startswith(".") and e.is_file()))
        elif path.is_file():
            files.add(path.parent, [path.name])
        else:
            raise NoSuchFile(f"{given}: no such file or folder")
    return files


def event_lines(
    path: Path, out: TextIO, ctx: Context, asked: str | None = None, shown: str | None = None
) -> Iterator[tuple[int | None, bytes, EventRejected | None]]:
    """The events of one file as JSON lines numbered from 1, or one rejection for the file
    (no line number); warnings are printed and logged as ``import.warning``, naming the file
    as ``shown`` (its path by default). The events are those of the creditor the seller is
    (``creditor_for``), named by ``creditor_id`` unless it is ``default``."""
    shown = str(path) if shown is None else shown
    try:
        document = read_document(path)
        creditor = creditor_for(ctx, document, asked)
    except ImportRejected as rejected:
        yield None, _file_stand_in(path), EventRejected(rejected.reason)
        return
    for warning in document.warnings:
        out.write(f"{shown}: warning: {warning}\n")
        log.warning("import.warning", file=shown, number=document.number, warning=warning)
    for number, event in enumerate(document.events, start=1):
        owned = event if creditor == DEFAULT_CREDITOR else event | {"creditor_id": creditor}
        yield number, json_line(owned), None


def creditor_for(ctx: Context, document: ImportedDocument, asked: str | None) -> str:
    """The creditor whose invoice ``document`` is: its seller (BG-4) must be that creditor.

    With ``asked`` (``--creditor``), that creditor, unless its identity states a SIREN or VAT
    number the seller's do not match. Without, the creditor whose SIREN or VAT number the
    seller has; when none has it, ``default`` if its identity is not set yet (the shipped
    example or none: anyone can preview a file as it is), else the file is refused.
    """
    seller = document.seller
    shown = f"{seller.name or '?'} (SIREN {seller.siren or '?'}, VAT {seller.vat_id or '?'})"
    if asked is not None:
        try:
            own = ctx.for_creditor(asked)
        except UnknownCreditor as exc:
            raise ImportRejected(document.path, "file", str(exc)) from None
        if not _example(own) and is_seller(own.policy.creditor, seller.siren, seller.vat_id) is False:
            raise ImportRejected(
                document.path, "BG-4", f"{shown} is not creditor {asked}, whose identity differs"
            )
        return asked
    contexts = {DEFAULT_CREDITOR: ctx, **{name: ctx.for_creditor(name) for name in ctx.others}}
    found = [
        name for name, c in contexts.items() if is_seller(c.policy.creditor, seller.siren, seller.vat_id)
    ]
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise ImportRejected(
            document.path, "BG-4", f"{shown} is several creditors ({', '.join(found)}): name one"
        )
    if is_seller(ctx.policy.creditor, seller.siren, seller.vat_id) is None or _example(ctx):
        return DEFAULT_CREDITOR
    reason = f"{shown} is none of the creditors configured: add it to the creditors file, or name it"
    raise ImportRejected(document.path, "BG-4", reason + " with --creditor")


def _example(ctx: Context) -> bool:
    """Whether the creditor's SIREN or VAT number is still the shipped example's."""
    return bool({"siren", "vat_number"} & set(example_keys(ctx.policy.creditor)))


def json_line(event: dict[str, Any]) -> bytes:
    """An event as the compact UTF-8 JSON line the inbox keeps."""
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
    return json_line({"import_file": path.name, "size": size, "sha256": digest.hexdigest()})


def import_files(
    app: App,
    files: Iterable[Path],
    out: TextIO,
    batch_size: int = BATCH,
    creditor: str | None = None,
    *,
    named: Callable[[Path], str] = str,
    rejections_once: bool = False,
) -> dict[str, int]:
    """Import ``files`` in order, in batches of up to ``batch_size`` events, as the invoices
    of ``creditor`` or, when None, of the creditor each seller is (``creditor_for``); print
    the warnings and rejections, then the summary line of ``relance ingest``.

    A file is shown and kept as ``named(path)`` (its path by default). With
    ``rejections_once``, a file rejected before under that name with the same content is a
    duplicate, not a second rejection (a broker message delivered twice)."""
    counts = {"accepted": 0, "duplicate": 0, "rejected": 0}
    batch: list[BatchItem] = []

    def apply(items: list[BatchItem]) -> None:
        apply_items(app, not_kept_before(app, items, counts) if rejections_once else items, counts, out)

    for path in files:
        label = named(path)
        if is_statement(path):
            if batch:  # the invoices before it are open when its entries are matched
                apply(batch)
                batch = []
            items = _statement_items(app, path, out, creditor, label)
            for start in range(0, len(items), batch_size):
                apply(items[start : start + batch_size])
            continue
        for number, raw, rejected in event_lines(path, out, app.ctx, creditor, label):
            parsed = ParsedLine(raw.decode("utf-8"), None, None, rejected) if rejected else parse_line(raw)
            shown = label if number is None or number == 1 else f"{label} (event {number})"
            batch.append(BatchItem(label, number, raw, parsed, shown))
            if len(batch) >= batch_size:
                apply(batch)
                batch = []
    if batch:
        apply(batch)
    out.write(
        f"accepted {counts['accepted']}, duplicate {counts['duplicate']}, rejected {counts['rejected']}\n"
    )
    return counts


def _statement_items(app: App, path: Path, out: TextIO, creditor: str | None, label: str) -> list[BatchItem]:
    """The payment events of a bank statement (intake/bank_import.py), or its rejection."""
    try:
        events = statement_events(app, path, out, creditor, label)
    except StatementRefused as refused:
        return [rejection_item(label, _file_stand_in(path), str(refused))]
    items = []
    for number, event in enumerate(events, start=1):
        raw = json_line(event)
        items.append(BatchItem(label, number, raw, parse_line(raw), f"{label} (event {number})"))
    return items


def rejection_item(label: str, stand_in: bytes, reason: str) -> BatchItem:
    """The batch item of a file that gives no event: kept as ``stand_in``, for ``reason``."""
    parsed = ParsedLine(stand_in.decode("utf-8"), None, None, EventRejected(reason))
    return BatchItem(label, None, stand_in, parsed, label)


def not_kept_before(app: App, items: list[BatchItem], counts: dict[str, int]) -> list[BatchItem]:
    """``items`` without the file rejections already kept from the same source with the
    same stand-in (name, size, SHA-256), which are counted as duplicates."""
    files = [item for item in items if item.line is None and item.parsed.event is None]
    if not files:
        return items
    with transaction(app.sessions) as session:
        session.scope(None)  # a file's rejection is kept before its creditor is known
        query = select(RejectedEvent.source, RejectedEvent.raw).where(
            RejectedEvent.source.in_({item.source for item in files}), RejectedEvent.line_no.is_(None)
        )
        kept = {(source, raw) for source, raw in session.execute(query)}
    fresh = []
    for item in items:
        if item.line is None and (item.source, item.raw.decode("utf-8")) in kept:
            counts["duplicate"] += 1
        else:
            fresh.append(item)
    return fresh


def simulation_lines(path: Path, warnings: TextIO) -> tuple[list[str], Seller]:
    """The events of one e-invoice as JSON lines for ``relance simulate``, and its seller;
    its warnings go to ``warnings``. Raises ImportRejected for a file that gives no event."""
    document = read_document(path)
    for warning in document.warnings:
        warnings.write(f"{path}: warning: {warning}\n")
    return [json_line(event).decode("utf-8") for event in document.events], document.seller
