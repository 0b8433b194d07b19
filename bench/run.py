"""``make bench``: no-op Dramatiq ceiling vs. end-to-end reminders, on the real servers.

1. Ceiling: M messages (BENCH_NOOP_MESSAGES, default 5000) to the no-op actor of
   ``bench/noop.py``, drained by ``python -m dramatiq bench.noop -p 2 -t 8`` through the
   shared Redis. Rate = M / (first enqueue -> queue empty, every message handled and acked).
2. End to end: N invoices (BENCH_REMINDERS, default 2000) whose ``pre_due`` step is due at
   once; ``relance worker`` (2 processes, 8 threads) is started and ready, then
   ``relance scheduler``. Rate = N / (scheduler start -> N-th message at the SMTP sink).
   Run with RELANCE_MAX_IN_FLIGHT=100000 (BENCH_MAX_IN_FLIGHT), then with the default 2000
   unless BENCH_DEFAULT_RUN=0.

Uses the system PostgreSQL (BENCH_POSTGRES_URL, default postgres@127.0.0.1:5432) with a
database ``relance_bench_<random>`` and the system Redis (BENCH_REDIS_URL) with namespaces
``relance-bench-<random>-*``; both are removed at the end. The last line printed is
``end_to_end_vs_noop_ratio=<x.xxx>`` (end-to-end msgs/s of the first run / no-op msgs/s).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "chaos"))

import harness  # noqa: E402 - tests/chaos/harness.py, put on the path above

PG_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
NOOP_MESSAGES = int(os.environ.get("BENCH_NOOP_MESSAGES", "5000"))
REMINDERS = int(os.environ.get("BENCH_REMINDERS", "2000"))
MAX_IN_FLIGHT = os.environ.get("BENCH_MAX_IN_FLIGHT", "100000")
DEFAULT_RUN = os.environ.get("BENCH_DEFAULT_RUN", "1") != "0"
TIMEOUT = float(os.environ.get("BENCH_TIMEOUT", "600"))
TAG = secrets.token_hex(4)
CLK_TCK = os.sysconf("SC_CLK_TCK")


def redis_client():
    import redis

    return redis.Redis.from_url(REDIS_URL)


def drop_namespace(namespace: str) -> int:
    client = redis_client()
    keys = list(client.scan_iter(match=f"{namespace}:*", count=1000))
    if keys:
        client.delete(*keys)
    return len(keys)


def wait_for_consumers(namespace: str, count: int, seconds: float = 60) -> None:
    """Dramatiq worker processes register in ``<ns>:__heartbeats__`` once they fetch."""
    client = redis_client()
    if not harness.wait_for(lambda: client.zcard(f"{namespace}:__heartbeats__") >= count, seconds, 0.1):
        raise RuntimeError(f"the workers of {namespace} did not start within {seconds} s")


# --- CPU accounting from /proc ------------------------------------------------------------


def _cpu_of(pid: int) -> float:
    with contextlib.suppress(OSError, IndexError, ValueError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    return 0.0


def _comm(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/comm").read_text().strip()
    return ""


def cpu_snapshot(groups: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far of each process group, of PostgreSQL, Redis and this process."""
    totals = {name: sum(_cpu_of(pid) for pid in harness.group_members(pgid)) for name, pgid in groups.items()}
    totals["postgresql"] = totals["redis"] = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            comm = _comm(int(entry.name))
            if comm.startswith("postgres"):
                totals["postgresql"] += _cpu_of(int(entry.name))
            elif comm.startswith("redis-server"):
                totals["redis"] += _cpu_of(int(entry.name))
    totals["bench+smtp sink"] = _cpu_of(os.getpid())
    return totals


def cpu_split(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    """Average cores used by each part during the measured interval."""
    return {name: round((after.get(name, 0.0) - before.get(name, 0.0)) / seconds, 2) for name in after}


# --- 1. the ceiling -------------------------------------------------------------------------


def bench_noop(folder: Path) -> dict:
    namespace = f"relance-bench-{TAG}-noop"
    env = {**os.environ, "BENCH_REDIS_URL": REDIS_URL, "BENCH_NAMESPACE": namespace, "PYTHONPATH": str(ROOT)}
    os.environ.update({"BENCH_REDIS_URL": REDIS_URL, "BENCH_NAMESPACE": namespace})
    from bench import noop  # the broker reads the environment set just above

    log = open(folder / "noop-worker.log", "wb")  # noqa: SIM115 - closed below
    worker = subprocess.Popen(
        [sys.executable, "-m", "dramatiq", "bench.noop", "-p", "2", "-t", "8"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    client = redis_client()
    try:
        wait_for_consumers(namespace, 2)
        before = cpu_snapshot({"noop workers": worker.pid})
        start = time.monotonic()
        for index in range(NOOP_MESSAGES):
            noop.noop.send(index)
        enqueued = time.monotonic() - start

        def drained() -> bool:
            acks = int(client.get(noop.ACKS_KEY) or 0)
            return (
                acks >= NOOP_MESSAGES
                and client.llen(f"{namespace}:bench_noop") == 0
                and client.hlen(f"{namespace}:bench_noop.msgs") == 0
            )

        if not harness.wait_for(drained, TIMEOUT, 0.01):
            raise RuntimeError(f"no-op queue not drained: {client.get(noop.ACKS_KEY)} handled")
        elapsed = time.monotonic() - start
        split = cpu_split(before, cpu_snapshot({"noop workers": worker.pid}), elapsed)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(5)
        log.close()
        noop.broker.close()
        drop_namespace(namespace)
    return {
        "messages": NOOP_MESSAGES,
        "seconds": elapsed,
        "enqueue_seconds": enqueued,
        "rate": NOOP_MESSAGES / elapsed,
        "cpu": split,
    }


# --- 2. end to end --------------------------------------------------------------------------


def create_database(name: str) -> str:
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return PG_URL.rsplit("/", 1)[0] + f"/{name}"


def drop_database(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def bench_end_to_end(folder: Path, label: str, max_in_flight: str) -> dict:
    database = f"relance_bench_{TAG}_{label}"
    namespace = f"relance-bench-{TAG}-{label}"
    sink = harness.Sink().start()
    service = None
    try:
        url = create_database(database)
        service = harness.Service(
            folder / label,
            url,
            REDIS_URL,
            sink.port,
            RELANCE_REDIS_NAMESPACE=namespace,
            RELANCE_MAX_IN_FLIGHT=max_in_flight,
            RELANCE_CLAIM_LEASE_SECONDS="300",
            RELANCE_TICK_SECONDS="0.5",
        )
        service.command("migrate")
        service.ingest_invoices(REMINDERS)
        worker = service.start("worker", "worker")
        wait_for_consumers(namespace, 2)
        before = cpu_snapshot({"worker": worker.pid})
        start = time.monotonic()
        scheduler = service.start("scheduler", "scheduler")
        if not harness.wait_for(lambda: sink.count() >= REMINDERS, TIMEOUT, 0.02):
            raise RuntimeError(f"{label}: only {sink.count()} of {REMINDERS} messages received")
        times = sorted(sink.times())
        last = times[REMINDERS - 1]
        elapsed = last - start
        after = cpu_snapshot({"worker": worker.pid, "scheduler": scheduler.pid})
        before["scheduler"] = 0.0
        split = cpu_split(before, after, time.monotonic() - start)
        harness.wait_for(harness.done(sink, url, REMINDERS), 60, 0.2)  # last commits of `sent`
        tally = sink.tally()
        state = harness.database_state(url)
        return {
            "label": label,
            "max_in_flight": max_in_flight,
            "messages": REMINDERS,
            "seconds": elapsed,
            "rate": REMINDERS / elapsed,
            "first_message_after": times[0] - start,
            "steady_rate": (REMINDERS - 1) / (last - times[0]) if last > times[0] else None,
            "unique": tally["unique"],
            "duplicated": tally["duplicated"],
            "sent_in_db": state["messages"].get("email:sent", 0),
            "cpu": split,
        }
    finally:
        if service is not None:
            service.close()
        sink.stop()
        drop_namespace(namespace)
        drop_database(database)


def main() -> int:
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}", flush=True)
    with tempfile.TemporaryDirectory(prefix="relance-bench-") as tmp:
        folder = Path(tmp)
        noop = bench_noop(folder)
        print(
            f"noop: {noop['messages']} messages in {noop['seconds']:.2f} s "
            f"(enqueue {noop['enqueue_seconds']:.2f} s) = {noop['rate']:.1f} msgs/s; "
            f"cores used {json.dumps(noop['cpu'])}",
            flush=True,
        )
        runs = [bench_end_to_end(folder, "wide", MAX_IN_FLIGHT)]
        if DEFAULT_RUN:
            runs.append(bench_end_to_end(folder, "default", "2000"))
        for run in runs:
            print(
                f"end_to_end max_in_flight={run['max_in_flight']}: {run['messages']} messages in "
                f"{run['seconds']:.2f} s = {run['rate']:.1f} msgs/s (first after "
                f"{run['first_message_after']:.2f} s, then {run['steady_rate']:.1f} msgs/s); "
                f"unique {run['unique']}, duplicated {run['duplicated']}, "
                f"sent in db {run['sent_in_db']}",
                flush=True,
            )
            print(f"  cores used {json.dumps(run['cpu'])}", flush=True)
    print(f"end_to_end_vs_noop_ratio={runs[0]['rate'] / noop['rate']:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
