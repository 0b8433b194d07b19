"""Evidence-appending commits per second on PostgreSQL: one chain shared by every worker
process vs one chain per creditor (``make bench-chains``).

Each worker process runs a loop of transactions shaped like the tail of a reminder's: it
inserts a 3 kB row (a message), records one evidence record (``handlers.evidence.append``)
and commits, which locks its creditor's chain head for the last statements. With 1, 2, 4
and 8 processes, for ``BENCH_CHAINS_SECONDS`` seconds each (default 10):

- ``one creditor``: every process appends to the chain of ``default``: the head row is
  the one lock every commit waits for;
- ``many creditors``: process *k* appends to the chain of creditor ``c<k>``: no two
  processes share a head.

Settings: ``BENCH_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``),
``BENCH_CHAINS_PROCESSES`` (default ``1,2,4,8``). The figures are written in
docs/benchmarks.md; nothing here is a test.
"""

from __future__ import annotations

import multiprocessing
import os
import time
import uuid
from datetime import UTC, datetime

from bench.run import create_database, drop_database

SECONDS = float(os.environ.get("BENCH_CHAINS_SECONDS", "10"))
PROCESSES = [int(n) for n in os.environ.get("BENCH_CHAINS_PROCESSES", "1,2,4,8").split(",")]
BODY = "x" * 3000


def worker(url: str, creditor: str, start_at: float, seconds: float, done: multiprocessing.Queue) -> None:
    """Commit evidence-appending transactions until the time is up; report how many."""
    from sqlalchemy import text

    from adapters.store import make_engine, session_factory, transaction
    from handlers.evidence import append

    engine = make_engine(url, pool_size=1)
    sessions = session_factory(engine)
    while time.time() < start_at:
        time.sleep(0.001)
    commits, end = 0, start_at + seconds
    while time.time() < end:
        with transaction(sessions) as uow:
            uow.scope(creditor)
            uow.execute(text("INSERT INTO bench_rows (body) VALUES (:b)"), {"b": BODY})
            append(uow, "bench.appended", datetime.now(UTC), {"n": commits}, debtor_id="D-1")
        commits += 1
    engine.dispose()
    done.put(commits)


def run(url: str, processes: int, many: bool) -> float:
    done: multiprocessing.Queue = multiprocessing.Queue()
    start_at = time.time() + 2.0  # every process connected before the clock starts
    workers = [
        multiprocessing.Process(
            target=worker, args=(url, f"c{k}" if many else "default", start_at, SECONDS, done)
        )
        for k in range(processes)
    ]
    for p in workers:
        p.start()
    total = sum(done.get() for _ in workers)
    for p in workers:
        p.join()
    return total / SECONDS


def main() -> None:
    from sqlalchemy import text

    from adapters.store import make_engine, migrate

    name = f"relance_bench_chains_{uuid.uuid4().hex[:8]}"
    url = create_database(name)
    try:
        engine = make_engine(url)
        migrate(engine)
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE bench_rows (id serial PRIMARY KEY, body text)"))
        engine.dispose()
        heading = f"{'processes':>9}  {'one creditor':>14}  {'many creditors':>15}"
        print(f"{heading}   (commits/s, {SECONDS:.0f} s each)")
        for n in PROCESSES:
            one = run(url, n, many=False)
            many = run(url, n, many=True)
            print(f"{n:>9}  {one:>14.0f}  {many:>15.0f}")
        _check_chains(url)
    finally:
        drop_database(name)


def _check_chains(url: str) -> None:
    """Every chain the runs wrote still verifies: the figures are of correct appends."""
    from adapters.chains import chain_creditors, verify_creditor_chain
    from adapters.store import make_engine, session_factory, transaction

    engine = make_engine(url)
    sessions = session_factory(engine)
    with transaction(sessions) as uow:
        creditors = chain_creditors(uow)
    for creditor in creditors:
        with transaction(sessions) as uow:
            check = verify_creditor_chain(uow, creditor)
        if not check.ok:
            raise SystemExit(f"chain of {creditor} broken: {check.reason}")
    print(f"{len(creditors)} chains verified")
    engine.dispose()


if __name__ == "__main__":
    main()
