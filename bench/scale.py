"""``make bench-scale``: reminders end to end with 1, 2 and 4 worker processes.

The same run as ``make bench``'s end to end (``bench/run.py``: N invoices due at once,
``relance worker`` then ``relance scheduler`` on PostgreSQL, Redis and the SMTP peer), once
per number of worker processes in BENCH_SCALE_PROCESSES (default ``1,2,4``), each with
BENCH_WORKER_THREADS threads (default 8) and its own database and Redis namespace. Prints one
line per run and a table: reminders/s, the cores each part used, the CPU per reminder of all
processes together, and the workers' resident memory. On one machine the processes share its
cores with PostgreSQL, Redis and the scheduler: what this shows is how far one host goes,
not how several hosts add up.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from bench.run import MAX_IN_FLIGHT, REMINDERS, THREADS, all_processes, bench_end_to_end
from bench.smtp_peer import SinkUnavailable, choose_peer

SCALE = [p.strip() for p in os.environ.get("BENCH_SCALE_PROCESSES", "1,2,4").split(",") if p.strip()]


def main() -> int:
    try:
        peer = choose_peer()
    except SinkUnavailable as error:
        print(f"make bench-scale: {error}", file=sys.stderr)
        return 2
    print(
        f"machine: {os.cpu_count()} cores; smtp peer {peer}; {REMINDERS} reminders; {THREADS} threads",
        flush=True,
    )
    rows = []
    with tempfile.TemporaryDirectory(prefix="relance-bench-scale-") as tmp:
        for processes in SCALE:
            run = bench_end_to_end(Path(tmp), f"scale{processes}", MAX_IN_FLIGHT, processes)
            total = round(all_processes(run["cpu_ms_per_message"]), 1)
            print(
                f"processes={processes}: {run['rate']:.1f} reminders/s; cores {json.dumps(run['cpu'])}; "
                f"CPU ms per reminder {json.dumps(run['cpu_ms_per_message'])} (all {total}); "
                f"unique {run['unique']}, duplicated {run['duplicated']}; worker RSS MB {run['rss_mb']}",
                flush=True,
            )
            rows.append((processes, run["rate"], total, all_processes(run["cpu"])))
    print("| worker processes | reminders/s | CPU ms per reminder, all | cores used |")
    print("| --- | --- | --- | --- |")
    for processes, rate, total, cores in rows:
        print(f"| {processes} | {rate:.1f} | {total} | {cores:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
