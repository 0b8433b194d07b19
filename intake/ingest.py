"""``relance ingest``: apply a JSON Lines stream, report per line, summary last.

The stream is read line by line and applied in batches of ``BATCH`` lines, one transaction
each: the lines of a batch are validated first, the inbox is read once for the batch, and
each event is applied without a savepoint of its own (``adapters.ingest_batch.Batch``). A
rejected event never undoes the others. Nothing is kept from one batch to the next but the
counts. ``relance import`` applies the events of e-invoices through the same batches
(``apply_items``).

Several files are applied one after the other. With ``jobs`` above 1, each file is cut
into ``jobs`` parts by debtor (``intake.split``: a debtor's events, and those of its invoices,
all in one part) and the parts are applied at the same time, each by a process of its own,
the next file once every part of the previous one is done (``ingest_files``). Each process
reads the whole file and keeps its part's lines, in the order of the file, with their line
numbers: a debtor's events are applied in the order of the file, as one process would apply
them; the order between two debtors' events is not kept. The rejections of the parts are
printed merged by line number. Each process has its own batches and transactions; the
evidence records of one creditor are still chained one transaction at a time (its chain head
is locked from the records' insertion to the commit).
"""

from __future__ import annotations

import heapq
import json
import logging
import multiprocessing
import tempfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, TextIO

import structlog
from sqlalchemy.exc import IntegrityError

from adapters.ingest_batch import Batch
from adapters.store import transaction
from config.bootstrap import App, build_app
from config.logging import configure_logging
from config.settings import Settings
from handlers.events import DEFAULT_CREDITOR
from handlers.inbox import NeedsSavepoints
from handlers.service import IngestResult, ParsedLine, ingest_one, parse_line
from intake.lines import numbered_lines as _lines
from intake.split import lines_of_part, plan_parts

log = structlog.get_logger("relance.ingest")

BATCH = 500
ANALYZE_FIRST = 2000  # events applied before the first ANALYZE, then each doubling


def ingest_stream(
    app: App,
    stream: BinaryIO,
    label: str,
    out: TextIO,
    batch_size: int = BATCH,
    *,
    prefix: str = "",
    summary: bool = True,
) -> dict[str, int]:
    """Ingest every non-blank line, in batches of one transaction each. A rejected line is
    printed as ``{prefix}line N: rejected: REASON``; the summary last, unless told not to."""
    counts = _ingest_lines(app, _lines(stream), label, _printer(out), batch_size, prefix=prefix)
    if summary:
        write_summary(counts, out)
    return counts


Report = Callable[["BatchItem", str], None]  # a rejected item and its reason


def _printer(out: TextIO) -> Report:
    def report(item: BatchItem, reason: str) -> None:
        out.write(f"{item.shown}: rejected: {reason}\n")

    return report


def _ingest_lines(
    app: App,
    lines: Iterable[tuple[int, bytes]],
    label: str,
    report: Report,
    batch_size: int = BATCH,
    *,
    prefix: str = "",
) -> dict[str, int]:
    counts = {"accepted": 0, "duplicate": 0, "rejected": 0}
    batch: list[tuple[int, bytes]] = []
    statistics = Statistics(app)
    for number, raw in lines:
        if raw.strip():
            batch.append((number, raw))
        if len(batch) >= batch_size:
            _apply(app, batch, label, counts, report, prefix)
            statistics.after(sum(counts.values()))
            batch = []
    if batch:
        _apply(app, batch, label, counts, report, prefix)
    return counts


def write_summary(counts: dict[str, int], out: TextIO) -> None:
    out.write(
        f"accepted {counts['accepted']}, duplicate {counts['duplicate']}, rejected {counts['rejected']}\n"
    )


def ingest_files(app: App, paths: list[str], out: TextIO, jobs: int = 1) -> dict[str, int]:
    """Ingest each file of ``paths``, one after the other: in this process, or with ``jobs``
    above 1 each cut into ``jobs`` parts by debtor, applied by as many processes at a time.
    The rejections are printed in the order of the lines, the files in the order given
    (``FILE: line N: rejected: REASON`` when there are several), then one summary of them all."""
    prefixes = [f"{path}: " if len(paths) > 1 else "" for path in paths]
    totals = {"accepted": 0, "duplicate": 0, "rejected": 0}
    if jobs <= 1:
        for path, prefix in zip(paths, prefixes, strict=True):
            with open(path, "rb") as stream:
                _add(totals, ingest_stream(app, stream, path, out, prefix=prefix, summary=False))
        write_summary(totals, out)
        return totals
    spawn = multiprocessing.get_context("spawn")
    with (
        tempfile.TemporaryDirectory(prefix="relance-ingest-") as folder,
        ProcessPoolExecutor(
            max_workers=jobs, mp_context=spawn, initializer=_start_part_process, initargs=(app.settings,)
        ) as pool,
    ):
        for path, prefix in zip(paths, prefixes, strict=True):
            plan = plan_parts(app.engine, path, jobs, Path(folder) / "plan")
            app.engine.dispose()  # the parts' processes have their own connections
            outputs = [Path(folder) / f"{index}.out" for index in range(jobs)]
            futures = [
                pool.submit(_ingest_part, path, str(plan), index, prefix, str(output))
                for index, output in enumerate(outputs)
            ]
            for future in futures:
                _add(totals, future.result())
            _print_merged(outputs, out)
    write_summary(totals, out)
    return totals


_PART_APP: App | None = None  # the application of a part's process (``_start_part_process``)


def _start_part_process(settings: Settings) -> None:
    global _PART_APP
    configure_logging(settings.log_level)
    _PART_APP = build_app(settings)


def _ingest_part(path: str, plan: str, index: int, prefix: str, output: str) -> dict[str, int]:
    """Part ``index`` of ``path`` (its lines as ``plan`` gives them), in a process of its own;
    its rejections to ``output``, one JSON ``[line, text]`` a line."""
    app = _PART_APP
    if app is None:
        raise RuntimeError("a part is applied in a process started by ingest_files")
    parts = Path(plan).read_bytes()
    try:
        with open(path, "rb") as stream, open(output, "w", encoding="utf-8") as out:

            def report(item: BatchItem, reason: str) -> None:
                out.write(json.dumps([item.line, f"{item.shown}: rejected: {reason}"]) + "\n")

            return _ingest_lines(
                app, lines_of_part(parts, index, _lines(stream)), path, report, prefix=prefix
            )
    finally:
        app.engine.dispose()  # nothing held between two files


def _print_merged(outputs: list[Path], out: TextIO) -> None:
    """The rejections printed by the parts' processes, merged in the order of the lines."""
    files = [output.open(encoding="utf-8") for output in outputs]
    try:
        records = [(tuple(json.loads(line)) for line in file) for file in files]
        for _, text in heapq.merge(*records, key=lambda record: record[0]):
            out.write(text + "\n")
    finally:
        for file in files:
            file.close()


def _add(totals: dict[str, int], counts: dict[str, int]) -> None:
    for key, value in counts.items():
        totals[key] += value


class Statistics:
    """Refresh PostgreSQL's statistics of the tables an import fills, as they grow.

    A bulk import can multiply a table's size many times within minutes; until the planner
    knows it, it keeps the plans of a small table and picks, e.g., a scan of every planned
    step of a given status to cancel the steps of one invoice (50 ms instead of 0.1 ms at
    800 000 steps, measured). Autovacuum would refresh them, but only once a minute at best
    and not at all where it is off; so the import runs ``ANALYZE`` itself each time the
    events it applied have doubled (after 2 000, 4 000, 8 000, ...), about 10 times for a
    million events. Nothing is done on SQLite, whose planner has no such statistics.
    """

    TABLES = ("debtors", "invoices", "planned_steps", "payments", "inbox_events", "evidence")

    def __init__(self, app: App, first: int | None = None) -> None:
        self.app = app
        first = ANALYZE_FIRST if first is None else first
        self.next = first if app.engine.dialect.name == "postgresql" else None

    def after(self, applied: int) -> None:
        if self.next is None or applied < self.next:
            return
        with self.app.engine.connect() as connection:
            connection.exec_driver_sql(f"ANALYZE {', '.join(self.TABLES)}")
            connection.commit()
        log.info("ingest.analyzed", events=applied, tables=list(self.TABLES))
        while self.next <= applied:
            self.next *= 2


def _apply(
    app: App,
    lines: list[tuple[int, bytes]],
    label: str,
    counts: dict[str, int],
    report: Report,
    prefix: str = "",
) -> None:
    items = [
        BatchItem(label, number, raw, parse_line(raw), f"{prefix}line {number}") for number, raw in lines
    ]
    apply_items(app, items, counts, report=report)


@dataclass(frozen=True)
class BatchItem:
    """One raw event of a batch: where it came from (``source``, ``line``: what the store
    keeps), how a rejection names it (``shown``), and its validation."""

    source: str
    line: int | None
    raw: bytes
    parsed: ParsedLine
    shown: str


def apply_items(
    app: App,
    items: list[BatchItem],
    counts: dict[str, int],
    out: TextIO | None = None,
    *,
    report: Report | None = None,
) -> None:
    """Apply one batch in one transaction, count the outcomes and print the rejections to
    ``out`` (or hand them to ``report``)."""
    if report is None:
        if out is None:
            raise TypeError("apply_items prints to out or reports to report")
        report = _printer(out)
    now = app.clock.now()
    results: list[IngestResult] = []
    for run in _runs_of_one_creditor(items):
        try:
            results += _transaction(app, run, now, savepoints=False)
        except _Retry as retry:  # rolled back: again, with a savepoint per event
            results += _transaction(app, run, now, savepoints=True, logged=retry.index)
    for item, result in zip(items, results, strict=True):
        counts["accepted" if result.status == "parked" else result.status] += 1
        if result.status == "rejected":
            report(item, str(result.reason))


def _runs_of_one_creditor(items: list[BatchItem]) -> list[list[BatchItem]]:
    """The items cut where the creditor changes, in order: a transaction and the rows it
    reads ahead are one creditor's (a refused item goes with the items around it)."""
    runs: list[list[BatchItem]] = []
    current: str | None = None
    for item in items:
        creditor = getattr(item.parsed.event, "creditor_id", None)
        if not runs or (creditor is not None and current is not None and creditor != current):
            runs.append([])
        current = creditor if creditor is not None else current
        runs[-1].append(item)
    return runs


class _Retry(Exception):
    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.index = index


def _transaction(
    app: App,
    items: list[BatchItem],
    now: datetime,
    *,
    savepoints: bool,
    logged: int = 0,
) -> list[IngestResult]:
    """Apply one batch in one transaction. The first ``logged`` events were logged by an
    attempt that was rolled back; they are applied again without logging them twice.

    Without savepoints, a row another process stored since the batch read the store (the
    same event id in two parts of ``--jobs``, applied at the same time) makes the insertion
    fail at a flush: the batch is then rolled back and applied again with savepoints, reading
    what the other process stored (a duplicate, or an event id already used)."""
    results = []
    reached = len(items)  # the events applied, and logged, before a failure
    try:
        with transaction(app.sessions) as session:
            session.scope(_creditor_of(items))
            batch = Batch(session, savepoints=savepoints)
            try:
                batch.prefetch([item.parsed.event for item in items if item.parsed.event is not None])
                for index, item in enumerate(items):
                    reached = index
                    with _quiet(index < logged):
                        try:
                            result = ingest_one(
                                session,
                                item.raw,
                                now,
                                app.ctx,
                                source=item.source,
                                line_no=item.line,
                                parsed=item.parsed,
                                batch=batch,
                            )
                        except NeedsSavepoints as exc:
                            raise _Retry(index) from exc
                    results.append(result)
                reached = len(items)
            finally:
                batch.close()
    except IntegrityError as exc:
        if savepoints:
            raise
        raise _Retry(max(reached, logged)) from exc
    return results


def _creditor_of(items: list[BatchItem]) -> str:
    for item in items:
        if item.parsed.event is not None:
            return str(getattr(item.parsed.event, "creditor_id", DEFAULT_CREDITOR))
    return DEFAULT_CREDITOR


@contextmanager
def _quiet(on: bool) -> Iterator[None]:
    if not on:
        yield
        return
    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        yield
    finally:
        logging.disable(previous)
