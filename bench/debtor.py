"""``make bench-debtor``: one debtor with 20 000 open invoices, one message, end to end.

The invoices (BENCH_DEBTOR_INVOICES, default 20000, all of one debtor, all due the same day)
are ingested into a fresh SQLite database by ``relance ingest``; then a fresh process (the
worker) runs the scheduler tick at the day of ``notice`` and the tasks it publishes, in
process: the decision, the amounts of every invoice, the templates, the composer, the
record, the transmission to the outbox folder.

The tick publishes one task per due step (five per invoice). A real broker holds them in
Redis, not in the worker: the bench's broker (``Queue``) keeps the first step task and only
the step ids of the others (8 bytes each), and runs the first; every other task would find
its step finished by the first's decision and stop. The run checks that none of their steps
is still pending (``steps_left_pending`` 0) rather than running them
(``step_tasks_not_run``). BENCH_DEBTOR_ALL_TASKS=1 keeps and runs them all, as before.

The worker process reports its resident
memory once started (VmRSS), its peak (``ru_maxrss``), the time of the send (wall and CPU), the size of the
message file and of its text body, the size and pages of the letter. The run fails (exit 1)
when the worker's peak exceeds BENCH_DEBTOR_LIMIT_MB (default 300).

Figures: docs/benchmarks.md ("One debtor, 20 000 invoices").
"""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from array import array
from collections.abc import Sequence
from datetime import datetime
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path
from zoneinfo import ZoneInfo

INVOICES = int(os.environ.get("BENCH_DEBTOR_INVOICES", "20000"))
LIMIT_MB = float(os.environ.get("BENCH_DEBTOR_LIMIT_MB", "300"))
ALL_TASKS = os.environ.get("BENCH_DEBTOR_ALL_TASKS") == "1"
PARIS = ZoneInfo("Europe/Paris")
START = datetime(2026, 3, 2, 10, 0, tzinfo=PARIS)
SEND = datetime(2026, 4, 14, 10, 0, tzinfo=PARIS)  # notice (D+3) of invoices due 20 March: caught up
ROOT = Path(__file__).resolve().parents[1]


def _app(folder: Path, at: datetime):
    sys.path.insert(0, str(ROOT))
    from tests.support import make_test_app

    return make_test_app(f"sqlite:///{folder / 'relance.db'}", folder, at)


def seed(folder: Path, count: int) -> float:
    """``relance ingest`` of ``count`` invoices of debtor D-1 due 20 March 2026; seconds."""
    from tests.support import invoice_issued

    events = folder / "events.jsonl"
    with events.open("w") as out:
        for i in range(1, count + 1):
            out.write(json.dumps(invoice_issued(f"F-{i:05d}", "2026-03-20", "100.00")) + "\n")
    env = os.environ | {"RELANCE_DATA_DIR": str(folder), "RELANCE_NOW": START.isoformat()}
    began = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "relance", "ingest", str(events)],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - began


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def send(folder: Path) -> dict[str, float]:
    """In the worker process: one tick and everything it publishes; the figures."""
    import adapters.letter  # noqa: F401 - loaded at start, as the worker loads it (worker/runtime.py)
    from tests.support import advance

    app = _app(folder, SEND)
    started = rss_mb()
    queue = None if ALL_TASKS else Queue(app.publisher)
    if queue is not None:
        app.publisher = queue  # the tick's tasks go to the queue, what they publish too
        app.publisher.app = app
    began, cpu = time.perf_counter(), _cpu_seconds()
    advance(app, SEND)
    seconds, cpu = time.perf_counter() - began, _cpu_seconds() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    [eml] = sorted((folder / "outbox" / "email").glob("*.eml")) or [None]
    content = eml.read_bytes() if eml else b""
    message = message_from_bytes(content, policy=default_policy)
    body = message.get_body(("plain",))
    attachments = list(message.iter_attachments())
    [pdf] = sorted((folder / "outbox").rglob("*.pdf"))[:1] or [None]
    letter = pdf.read_bytes() if pdf else b""
    left = _pending_steps(app, queue.skipped) if queue is not None else 0
    app.dispose()
    return {
        "rss_started_mb": round(started, 1),
        "rss_peak_mb": round(peak, 1),
        "send_seconds": round(seconds, 2),
        "send_cpu_seconds": round(cpu, 2),  # the worker's CPU time (user and system) over the send
        "message_bytes": len(content),
        "body_text_bytes": len(body.get_content().encode()) if body else 0,
        "subject_chars": len(str(message["Subject"] or "")),
        "csv_lines": len(attachments[0].get_content().splitlines()) if attachments else 0,
        "letter_bytes": len(letter),
        "letter_pages": len(re.findall(rb"/Type\s*/Page\b", letter)),
        "step_tasks_not_run": len(queue.skipped) if queue is not None else 0,
        "steps_left_pending": left,
    }


class Queue:
    """The in-process broker of the bench: the tasks a decision publishes run as published;
    of the step tasks, the first of each debtor runs and the others are kept as step ids."""

    def __init__(self, inline) -> None:
        self._inline = inline
        self.app = None
        self.skipped = array("q")
        self._debtor_started = False

    def publish(self, tasks: Sequence[object]) -> None:
        from handlers.messages import StepDue

        for task in tasks:
            if isinstance(task, StepDue) and self._debtor_started:
                self.skipped.append(task.step_id)
            else:
                self._debtor_started |= isinstance(task, StepDue)
                self._inline.queue.append(task)

    def drain(self, *, deliveries: int = 1) -> int:
        return self._inline.drain(deliveries=deliveries)


def _pending_steps(app, step_ids: array) -> int:
    """How many of ``step_ids`` are still to be sent (planned or claimed)."""
    from sqlalchemy import func, select

    from adapters.orm import PlannedStep
    from handlers.planning import PENDING
    from tests.support import transaction

    left = 0
    with transaction(app.sessions) as session:
        for start in range(0, len(step_ids), 500):
            chunk = list(step_ids[start : start + 500])
            left += session.scalar(
                select(func.count()).where(PlannedStep.id.in_(chunk), PlannedStep.status.in_(PENDING))
            )
    return left


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--send":  # the worker process
        print(json.dumps(send(Path(sys.argv[2]))))
        return 0
    with tempfile.TemporaryDirectory(prefix="relance-bench-debtor-") as tmp:
        folder = Path(tmp)
        print(f"seeding {INVOICES} invoices of one debtor ...", flush=True)
        print(f"seeded in {seed(folder, INVOICES):.1f} s", flush=True)
        worker = subprocess.run(
            [sys.executable, "-m", "bench.debtor", "--send", str(folder)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        figures = json.loads(worker.stdout.strip().splitlines()[-1])
    for name, value in figures.items():
        print(f"{name:>18}: {value}")
    if figures["rss_peak_mb"] > LIMIT_MB:
        print(f"worker peak {figures['rss_peak_mb']} MB is above {LIMIT_MB} MB", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
