"""``make bench``: no-op Dramatiq ceiling vs. end-to-end reminders, on the real servers.

1. Ceiling: M messages (BENCH_NOOP_MESSAGES, default 20000) to the no-op actor of
   ``bench/noop.py`` (relance's own broker and middleware), drained by ``python -m dramatiq
   bench.noop -p 2 -t 8`` through the shared Redis. They are enqueued with relance's
   publisher (1000 per round trip) while the workers run. Rate = M / (first enqueue ->
   queue and its hash of unacknowledged messages both empty).
2. End to end: N invoices (BENCH_REMINDERS, default 2000) whose ``pre_due`` step is due at
   once; ``relance worker`` (2 processes, 8 threads) is started and waited for (both
   processes report ``worker.ready``), then ``relance scheduler``. Rate = N / (scheduler
   start -> N-th message at the SMTP sink). Settings are the defaults (RELANCE_MAX_IN_FLIGHT
   2000, override with BENCH_MAX_IN_FLIGHT; RELANCE_WORKER_BATCH 50 steps per broker
   message, override with BENCH_WORKER_BATCH, 1 for one message per step), with a tick of
   0.5 s.

Uses the system PostgreSQL (BENCH_POSTGRES_URL, default postgres@127.0.0.1:5432) with a
database ``relance_bench_<random>`` and the system Redis (BENCH_REDIS_URL) with namespaces
``relance-bench-<random>-*``; both are removed at the end. The SMTP peer is postfix's
compiled ``smtp-sink`` when installed, else a Python sink (BENCH_SMTP_SINK, see
``bench/smtp_peer.py``); the output names the one that ran. Each part also reports the CPU
used by every process (from /proc), per message, and the workers' resident memory; the
scheduler's, counted from its start, is also split into its start-up (up to its first
emitting tick) and the rest. The last line printed is ``end_to_end_vs_noop_ratio=<x.xxx>``
(end-to-end msgs/s / no-op msgs/s).
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

from bench.smtp_peer import SinkUnavailable, choose_peer, make_sink  # noqa: E402

PG_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
NOOP_MESSAGES = int(os.environ.get("BENCH_NOOP_MESSAGES", "20000"))
REMINDERS = int(os.environ.get("BENCH_REMINDERS", "2000"))
MAX_IN_FLIGHT = os.environ.get("BENCH_MAX_IN_FLIGHT", "2000")
PROCESSES = os.environ.get("BENCH_WORKER_PROCESSES", "2")
THREADS = os.environ.get("BENCH_WORKER_THREADS", "8")
WORKER_BATCH = os.environ.get("BENCH_WORKER_BATCH")  # None: the service's default
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


def cpu_snapshot(groups: dict[str, int], own: str = "bench+smtp sink") -> dict[str, float]:
    """CPU seconds so far of each process group, of PostgreSQL, Redis and this process.

    ``own`` names this process's share: the bench and, with the Python sink, the SMTP sink.
    ``postgresql`` is every PostgreSQL process of the machine (other databases' work
    included); ``postgresql backends`` only the backends connected to this run's databases
    (their names hold TAG), without the shared WAL writer, checkpointer and the like.
    """
    totals = {name: sum(_cpu_of(pid) for pid in harness.group_members(pgid)) for name, pgid in groups.items()}
    totals["postgresql"] = totals["postgresql backends"] = totals["redis"] = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            comm = _comm(int(entry.name))
            if comm.startswith("postgres"):
                used = _cpu_of(int(entry.name))
                totals["postgresql"] += used
                with contextlib.suppress(OSError):
                    if TAG.encode() in (entry / "cmdline").read_bytes():
                        totals["postgresql backends"] += used
            elif comm.startswith("redis-server"):
                totals["redis"] += _cpu_of(int(entry.name))
    totals[own] = _cpu_of(os.getpid())
    return totals


def all_processes(parts: dict[str, float]) -> float:
    """The sum of a run's parts, PostgreSQL's backends counted once (they are a part of
    ``postgresql``)."""
    return sum(value for name, value in parts.items() if name != "postgresql backends")


def cpu_split(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    """Average cores used by each part during the measured interval."""
    return {name: round((after.get(name, 0.0) - before.get(name, 0.0)) / seconds, 2) for name in after}


# --- 1. the ceiling -------------------------------------------------------------------------


def bench_noop(folder: Path) -> dict:
    namespace = f"relance-bench-{TAG}-noop"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELANCE_")}
    env.update(
        {
            "RELANCE_REDIS_URL": REDIS_URL,
            "RELANCE_REDIS_NAMESPACE": namespace,
            "RELANCE_HEARTBEAT_TIMEOUT_MS": "5000",
            "RELANCE_MAINTENANCE_CHANCE": "100000",
            "PYTHONPATH": str(ROOT),
        }
    )
    os.environ.update({k: env[k] for k in env if k.startswith("RELANCE_")})
    from adapters.publisher import DramatiqPublisher
    from bench import noop  # its broker reads the environment set just above

    log = open(folder / "noop-worker.log", "wb")  # noqa: SIM115 - closed below
    worker = subprocess.Popen(
        [sys.executable, "-m", "dramatiq", "bench.noop", "-p", PROCESSES, "-t", THREADS],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    client = redis_client()
    queue = f"{namespace}:{noop.QUEUE}"
    publisher = DramatiqPublisher(noop.broker, queue=noop.QUEUE)
    tasks = [noop.NoopTask(index) for index in range(NOOP_MESSAGES)]
    try:
        wait_for_consumers(namespace, int(PROCESSES))
        before = cpu_snapshot({"noop workers": worker.pid})
        start = time.monotonic()
        publisher.publish(tasks)  # batched, as the scheduler publishes
        enqueued = time.monotonic() - start

        def drained() -> bool:
            return client.llen(queue) == 0 and client.hlen(f"{queue}.msgs") == 0

        if not harness.wait_for(drained, TIMEOUT, 0.005):
            raise RuntimeError(f"no-op queue not drained: {client.hlen(f'{queue}.msgs')} left")
        elapsed = time.monotonic() - start
        split = cpu_split(before, cpu_snapshot({"noop workers": worker.pid}), elapsed)
        rss = worker_rss(worker.pid)
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
        "rss_mb": rss,
    }


def worker_rss(pgid: int) -> list[float]:
    """Resident memory (MB) of each Dramatiq worker process in the group (not the parent)."""
    sizes = []
    for pid in harness.group_members(pgid):
        with contextlib.suppress(OSError, ValueError, IndexError):
            status = Path(f"/proc/{pid}/status").read_text()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if pid != pgid and b"dramatiq" in cmdline:
                kb = int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1])
                sizes.append(round(kb / 1024, 1))
    return sorted(sizes)


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


def first_emitting_tick(events: list[dict]) -> float:
    """Wall-clock start (epoch seconds) of the first ``scheduler.tick`` that emitted steps."""
    from datetime import datetime

    for entry in events:
        if entry.get("event") == "scheduler.tick" and entry.get("emitted"):
            end = datetime.fromisoformat(entry["timestamp"].replace("Z", "+00:00")).timestamp()
            return end - float(entry.get("ms", 0.0)) / 1000
    raise RuntimeError("the scheduler logged no tick that emitted steps")


def cpu_before(samples: list[tuple[float, float]], instant: float) -> float:
    """CPU seconds of the last sample ``(wall clock, CPU)`` taken before ``instant`` (the
    polls are 0.1 s apart: what was used in the last tenth of a second is not counted)."""
    return max((cpu for at, cpu in samples if at <= instant), default=0.0)


def analyze(url: str) -> None:
    """Give the planner the statistics of the ingested tables, as autovacuum would.

    Autovacuum is off on the benchmark machine's server, and ``relance ingest`` runs its
    first ``ANALYZE`` only after 2 000 events: without statistics PostgreSQL takes the
    tables for empty and locks a debtor's invoices by scanning every step of the creditor
    (a plan that grows with the number of invoices due).

    Only the tables holding more than 50 rows are analysed, as autovacuum's threshold does
    (50 rows changed): an empty table analysed as empty (``messages``, ``message_items``...
    before the first reminder) is taken for empty by every plan prepared while it grows, and
    the statements that psycopg prepares on their sixth execution keep sequential scans of
    it for the whole run (a reminder reading every message written before it). Where
    autovacuum is on, it analyses those tables as they grow and the plans follow.
    """
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        tables = connection.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        ).fetchall()
        filled = [f'"{name}"' for (name,) in tables if _more_than_50_rows(connection, name)]
        if filled:
            connection.execute("ANALYZE " + ", ".join(filled))


def _more_than_50_rows(connection, table: str) -> bool:
    query = f'SELECT count(*) FROM (SELECT 1 FROM "{table}" LIMIT 51) AS t'
    return connection.execute(query).fetchone()[0] > 50


def transactions(url: str) -> dict[str, int]:
    """Transactions committed and rolled back in the database so far (``pg_stat_database``,
    as the backends last reported them).

    A busy backend reports its counts at the end of a transaction at most once a second;
    what it did in the last second before going idle is reported only 10 s later, or when
    it ends. So the end of a run is counted once the service's processes have stopped and
    their connections are closed: read while they are still up, the counts miss the last
    second of every pooled connection.
    """
    import psycopg

    time.sleep(1.1)  # a backend reports its counts at most once a second
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("SELECT pg_stat_clear_snapshot()")
        committed, rolled_back = connection.execute(
            "SELECT xact_commit, xact_rollback FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    return {"committed": committed, "rolled_back": rolled_back}


def database_size(url: str) -> int:
    """Bytes of the database (tables, indexes, TOAST) after the run."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")
        return connection.execute("SELECT pg_database_size(current_database())").fetchone()[0]


def bench_end_to_end(folder: Path, label: str, max_in_flight: str, processes: str = PROCESSES) -> dict:
    database = f"relance_bench_{TAG}_{label}"
    namespace = f"relance-bench-{TAG}-{label}"
    sink = make_sink().start()
    groups = sink.pids()
    own = "bench" if groups else "bench+smtp sink"
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
            RELANCE_WORKER_PROCESSES=processes,
            RELANCE_WORKER_THREADS=THREADS,
            **({"RELANCE_WORKER_BATCH": WORKER_BATCH} if WORKER_BATCH else {}),
        )
        service.command("migrate")
        empty = database_size(url)
        service.ingest_invoices(REMINDERS)
        analyze(url)
        worker = service.start("worker", "worker")
        wait_for_consumers(namespace, int(processes))
        if not harness.wait_for(
            lambda: (
                sum(e.get("event") == "worker.ready" for e in service.log_events("worker")) >= int(processes)
            ),
            120,
            0.1,
        ):
            raise RuntimeError(f"{label}: the worker processes did not report ready")
        began = transactions(url)
        before = cpu_snapshot({"worker": worker.pid, **groups}, own)
        start, wall_start = time.monotonic(), time.time()
        scheduler = service.start("scheduler", "scheduler")
        samples: list[tuple[float, float]] = []  # (wall clock, the scheduler's CPU seconds)

        def delivered() -> bool:
            samples.append((time.time(), _cpu_of(scheduler.pid)))
            return sink.count() >= REMINDERS

        # the end is the N-th message's own time (sink.times()), not this poll's
        if not harness.wait_for(delivered, TIMEOUT, 0.1):
            raise RuntimeError(f"{label}: only {sink.count()} of {REMINDERS} messages received")
        times = sorted(sink.times())
        last = times[REMINDERS - 1]
        elapsed = last - start
        # from the start of the first tick that emitted (the scheduler process's own
        # start-up, imports and connections, left out as the workers' is)
        first_tick_wall = first_emitting_tick(service.log_events("scheduler"))
        first_tick = start + first_tick_wall - wall_start
        startup_cpu = cpu_before(samples, first_tick_wall)
        after = cpu_snapshot({"worker": worker.pid, "scheduler": scheduler.pid, **groups}, own)
        before["scheduler"] = 0.0
        split = cpu_split(before, after, time.monotonic() - start)
        per_message = {
            name: round((after[name] - before.get(name, 0.0)) / REMINDERS * 1000, 2) for name in after
        }
        rss = worker_rss(worker.pid)
        harness.wait_for(harness.done(sink, url, REMINDERS), 60, 0.2)  # last commits of `sent`
        tally = sink.tally()
        state = harness.database_state(url)
        service.close()  # each backend reports its last counts as it ends (see transactions)
        ended = transactions(url)
        size = database_size(url) - empty
        return {
            "label": label,
            "processes": int(processes),
            "smtp_peer": sink.name,
            "max_in_flight": max_in_flight,
            "worker_batch": WORKER_BATCH or "default",
            "messages": REMINDERS,
            "seconds_with_startup": elapsed,
            "rate_with_startup": REMINDERS / elapsed,
            "seconds": last - first_tick,
            "rate": REMINDERS / (last - first_tick),
            "scheduler_startup": first_tick - start,
            "first_message_after": times[0] - start,
            "steady_rate": (REMINDERS - 1) / (last - times[0]) if last > times[0] else None,
            "unique": tally["unique"],
            "duplicated": tally["duplicated"],
            "sent_in_db": state["messages"].get("email:sent", 0),
            "cpu": split,
            "cpu_ms_per_message": per_message,
            "scheduler_startup_cpu": startup_cpu,
            "rss_mb": rss,
            "database_kb_per_reminder": round(size / REMINDERS / 1024, 1),
            # a rollback makes psycopg forget every statement it prepared on that connection
            "transactions_per_reminder": {
                name: round((ended[name] - began[name]) / REMINDERS, 2) for name in ended
            },
        }
    finally:
        clean_up(service, sink, namespace, database)


def clean_up(service, sink, namespace: str, database: str) -> None:
    """Stop the processes and the sink, drop the Redis namespace and the database."""
    if service is not None:
        service.close()
    sink.stop()
    drop_namespace(namespace)
    drop_database(database)


def main() -> int:
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}", flush=True)
    try:
        peer = choose_peer()
    except SinkUnavailable as error:
        print(f"make bench: {error}", file=sys.stderr)
        return 2
    print(f"smtp peer: {peer} (BENCH_SMTP_SINK={os.environ.get('BENCH_SMTP_SINK', 'auto')})", flush=True)
    with tempfile.TemporaryDirectory(prefix="relance-bench-") as tmp:
        folder = Path(tmp)
        noop = bench_noop(folder)
        print(
            f"noop: {noop['messages']} messages in {noop['seconds']:.2f} s "
            f"(enqueue {noop['enqueue_seconds']:.2f} s) = {noop['rate']:.1f} msgs/s; "
            f"cores used {json.dumps(noop['cpu'])}; worker RSS MB {noop['rss_mb']}",
            flush=True,
        )
        runs = [bench_end_to_end(folder, "e2e", MAX_IN_FLIGHT)]
        for run in runs:
            print(
                f"end_to_end max_in_flight={run['max_in_flight']} worker_batch={run['worker_batch']}: "
                f"{run['messages']} messages in "
                f"{run['seconds']:.2f} s from the first emitting tick = {run['rate']:.1f} msgs/s "
                f"({run['rate_with_startup']:.1f} msgs/s counting the scheduler's start-up of "
                f"{run['scheduler_startup']:.2f} s; first message after "
                f"{run['first_message_after']:.2f} s, then {run['steady_rate']:.1f} msgs/s); "
                f"unique {run['unique']}, duplicated {run['duplicated']}, "
                f"sent in db {run['sent_in_db']}",
                flush=True,
            )
            print(f"  smtp peer {run['smtp_peer']}; cores used {json.dumps(run['cpu'])}", flush=True)
            startup = run["scheduler_startup_cpu"]
            after_startup = run["cpu_ms_per_message"]["scheduler"] - startup / run["messages"] * 1000
            print(
                f"  scheduler CPU: {startup:.2f} s before its first emitting tick (start-up: imports, "
                f"configuration, connections), then {after_startup:.2f} ms per reminder",
                flush=True,
            )
            total = all_processes(run["cpu_ms_per_message"])
            steady = total - startup / run["messages"] * 1000
            print(
                f"  CPU ms per reminder, all processes: {total:.2f}; "
                f"{steady:.2f} without the scheduler's start-up (the workers' is never counted)",
                flush=True,
            )
            print(
                f"  CPU ms per reminder {json.dumps(run['cpu_ms_per_message'])}; "
                f"worker RSS MB {run['rss_mb']}; database {run['database_kb_per_reminder']} kB "
                "per reminder (ingested invoice included); transactions per reminder "
                f"{json.dumps(run['transactions_per_reminder'])}",
                flush=True,
            )
    print(f"end_to_end_vs_noop_ratio={runs[0]['rate'] / noop['rate']:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
