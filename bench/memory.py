"""``make bench-memory``: worker resident memory over 100 000 reminders, on the real servers.

N invoices (BENCH_MEMORY_REMINDERS, default 100000), one debtor each, all due at once (the
load of ``make bench``), go through ``relance scheduler`` and ``relance worker`` (2
processes, 8 threads) to the loopback SMTP sink. The resident memory (VmRSS) of each worker
process is read from ``/proc`` every BENCH_MEMORY_SAMPLE_SECONDS (default 5) together with
the number of messages the sink has received; the figures at 0, 10, 25, 50, 75 and 100 % of
the run are printed, with each process's peak (VmHWM). The run fails (exit 1) when a worker
process ends above BENCH_MEMORY_LIMIT_MB (default 200).

Same servers, database and namespace handling as ``bench/run.py``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from bench.run import (
    REDIS_URL,
    TAG,
    clean_up,
    create_database,
    harness,  # tests/chaos/harness.py, put on the path by bench.run
    wait_for_consumers,
)
from bench.smtp_peer import make_sink

REMINDERS = int(os.environ.get("BENCH_MEMORY_REMINDERS", "100000"))
SAMPLE_SECONDS = float(os.environ.get("BENCH_MEMORY_SAMPLE_SECONDS", "5"))
LIMIT_MB = float(os.environ.get("BENCH_MEMORY_LIMIT_MB", "200"))
TIMEOUT = float(os.environ.get("BENCH_TIMEOUT", "7200"))
MARKS = (0.0, 0.10, 0.25, 0.50, 0.75, 1.0)


def worker_memory(pgid: int) -> dict[int, tuple[float, float]]:
    """(VmRSS, VmHWM) in MB of each Dramatiq worker process of the group (not its parent)."""
    sizes = {}
    for pid in harness.group_members(pgid):
        try:
            if pid == pgid or b"dramatiq" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                continue
            fields = dict(
                line.split(":", 1)
                for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                if ":" in line
            )
        except OSError:
            continue
        sizes[pid] = (int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024)
    return sizes


def run(folder: Path) -> int:
    database = f"relance_bench_{TAG}_memory"
    namespace = f"relance-bench-{TAG}-memory"
    sink = make_sink().start()
    print(f"smtp peer: {sink.name}", flush=True)
    service = None
    samples: list[tuple[int, float, dict[int, tuple[float, float]]]] = []
    try:
        url = create_database(database)
        service = harness.Service(
            folder,
            url,
            REDIS_URL,
            sink.port,
            RELANCE_REDIS_NAMESPACE=namespace,
            RELANCE_CLAIM_LEASE_SECONDS="600",
            RELANCE_TICK_SECONDS="0.5",
        )
        service.command("migrate")
        started = time.monotonic()
        events = folder / "events.jsonl"
        events.write_text(harness.invoice_events(REMINDERS), encoding="utf-8")
        summary = service.command("ingest", str(events), timeout=TIMEOUT).strip().splitlines()[-1]
        if summary != f"accepted {REMINDERS}, duplicate 0, rejected 0":
            raise RuntimeError(f"ingest: {summary}")
        print(f"ingested {REMINDERS} invoices in {time.monotonic() - started:.1f} s", flush=True)
        worker = service.start("worker", "worker")
        wait_for_consumers(namespace, 2)
        harness.wait_for(
            lambda: sum(e.get("event") == "worker.ready" for e in service.log_events("worker")) >= 2, 120, 0.1
        )
        samples.append((0, 0.0, worker_memory(worker.pid)))
        start = time.monotonic()
        service.start("scheduler", "scheduler")
        deadline = start + TIMEOUT
        while sink.count() < REMINDERS and time.monotonic() < deadline:
            time.sleep(SAMPLE_SECONDS)
            samples.append((sink.count(), time.monotonic() - start, worker_memory(worker.pid)))
        samples.append((sink.count(), time.monotonic() - start, worker_memory(worker.pid)))
    finally:
        clean_up(service, sink, namespace, database)
    return report(samples)


def report(samples: list[tuple[int, float, dict[int, tuple[float, float]]]]) -> int:
    done, seconds, last = samples[-1]
    print(f"{done} of {REMINDERS} messages in {seconds:.1f} s = {done / seconds:.1f} msgs/s", flush=True)
    print("| messages received | seconds | worker RSS MB (each process) |")
    print("| --- | --- | --- |")
    for mark in MARKS:
        target = mark * REMINDERS
        count, at, sizes = min(samples, key=lambda s: abs(s[0] - target))
        rss = ", ".join(f"{rss:.1f}" for rss, _ in sorted(sizes.values()))
        print(f"| {count} | {at:.0f} | {rss} |")
    peaks = ", ".join(f"{peak:.1f}" for _, peak in sorted(last.values()))
    print(f"peak RSS (VmHWM) MB per worker process: {peaks}")
    worst = max((rss for rss, _ in last.values()), default=0.0)
    verdict = "ok" if done >= REMINDERS and worst < LIMIT_MB else "FAILED"
    print(f"worker_rss_after_{done}_messages_mb={worst:.1f} (limit {LIMIT_MB:.0f}) {verdict}", flush=True)
    return 0 if verdict == "ok" else 1


def main() -> int:
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}", flush=True)
    with tempfile.TemporaryDirectory(prefix="relance-bench-memory-") as tmp:
        return run(Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
