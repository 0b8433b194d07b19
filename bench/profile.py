"""``make profile``: where a reminder's time goes, in one thread, on the real servers.

N invoices (BENCH_PROFILE_REMINDERS, default 500) due at once are ingested into a fresh
PostgreSQL database; one scheduler tick claims them; then each step runs in this process's
main thread exactly as a worker thread runs it (``run_step``, then the transmission of the
recorded message over SMTP to a loopback sink), with no broker in between. Printed: the
thread's CPU time and the wall time per reminder, the SQL statements per reminder (counted
on the engine) and, with BENCH_PROFILE=1 (default), a pyinstrument profile of the loop
written to ``var/profile.txt`` and ``var/profile.html``, summed by kind of work (SQL round
trips, SQLAlchemy, rendering, e-mail bytes, evidence...: ``bench/breakdown.py``). With
BENCH_PROFILE_CPU=1, ``cProfile`` on the thread's CPU clock instead (``var/profile-cpu.txt``),
summed the same way: its overhead inflates every call, so its shares are what count. The SMTP
peer is postfix's ``smtp-sink`` when installed (``bench/smtp_peer.py``); it offers PIPELINING.
The steps go as the worker takes them by default: the tick makes broker messages of
RELANCE_WORKER_BATCH steps (default 50; BENCH_PROFILE_WORKER_BATCH overrides it), each one
handled by ``run_steps`` in one transaction, and the messages its publish carries handed to
``deliver_many`` together, as the worker's ``steps_due`` actor does. With a worker batch of 1,
each step is handled by ``run_step`` and BENCH_PROFILE_DELIVERY_BATCH=N hands the recorded
messages of N reminders to ``deliver_many`` together (default 1: each reminder's alone).
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

from bench.breakdown import cpu_by_kind, report, time_by_kind
from bench.run import (
    TAG,
    analyze,
    create_database,
    drop_database,
    harness,  # tests/chaos/harness.py, put on the path by bench.run
)
from bench.smtp_peer import make_sink

REMINDERS = int(os.environ.get("BENCH_PROFILE_REMINDERS", "500"))
PROFILE = os.environ.get("BENCH_PROFILE", "1") != "0"
PROFILE_CPU = os.environ.get("BENCH_PROFILE_CPU", "0") != "0"
# reminders whose deliveries go together (one connection, one transaction marking them sent)
DELIVERY_BATCH = max(1, int(os.environ.get("BENCH_PROFILE_DELIVERY_BATCH", "1")))
# steps per broker message, as the scheduler makes them for the worker (1: one per step)
WORKER_BATCH = max(
    1, int(os.environ.get("BENCH_PROFILE_WORKER_BATCH", os.environ.get("RELANCE_WORKER_BATCH", "50")))
)
# the statements' texts, whether psycopg prepared them, and EXPLAIN's planning vs execution time
PROFILE_PG = os.environ.get("BENCH_PROFILE_PG", "0") != "0"
OUT = Path(os.environ.get("BENCH_PROFILE_DIR", Path(__file__).resolve().parents[1] / "var"))


class Collect:
    """A publisher that keeps what it is given."""

    def __init__(self) -> None:
        self.tasks: list = []

    def publish(self, tasks) -> None:
        self.tasks.extend(tasks)


def print_cpu_profile(cpu_profile, count: int) -> None:
    """The cProfile run by kind of work, and its slowest functions in var/profile-cpu.txt."""
    import pstats

    OUT.mkdir(parents=True, exist_ok=True)
    cpu_profile.dump_stats(OUT / "profile-cpu.pstats")  # for pstats, snakeviz...
    with open(OUT / "profile-cpu.txt", "w", encoding="utf-8") as out:
        stats = pstats.Stats(cpu_profile, stream=out)
        stats.sort_stats("tottime").print_stats(60)
    print(f"CPU profile (cProfile, its overhead included): {OUT / 'profile-cpu.txt'}")
    for line in report(cpu_by_kind(stats.stats), count):  # type: ignore[attr-defined]
        print(line.replace("profiled wall time", "profiled CPU time"))


def backend_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a local PostgreSQL backend, from /proc; 0 if not local."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _scans(node: dict) -> list[str]:
    """Each scan of a plan: its index (or "seq") and the rows its filter removed."""
    found = []
    if "Index Name" in node or node.get("Node Type") == "Seq Scan":
        name = node.get("Index Name", f"seq {node.get('Relation Name')}")
        found.append(f"{name} ({node.get('Rows Removed by Filter', 0)} removed)")
    for child in node.get("Plans", []):
        found.extend(_scans(child))
    return found


def cached_plans(connections, texts: Counter[str], first_parameters: dict[str, object]) -> dict[str, str]:
    """The scans of the plan each connection holds for its prepared statements, as executed
    (EXPLAIN ANALYZE EXECUTE with the statement's first parameters, rolled back), by kind."""
    import re

    import psycopg

    found: dict[str, str] = {}
    as_sent = {}
    for text in texts:
        names = list(dict.fromkeys(re.findall(r"%\((\w+)\)s", text)))
        numbered = text
        for number, name in enumerate(names, 1):
            numbered = numbered.replace(f"%({name})s", f"${number}")
        as_sent[" ".join(numbered.replace("%%", "%").split())] = (text, names)
    for connection in connections:
        with connection.cursor() as cursor:
            cursor.execute("SELECT name, statement FROM pg_prepared_statements WHERE generic_plans > 0")
            held = cursor.fetchall()
        for name, statement in held:
            match = as_sent.get(" ".join(statement.split()))
            if match is None or not isinstance(first_parameters.get(match[0]), dict):
                continue
            text, names = match
            values = [first_parameters[text][n] for n in names]  # type: ignore[index]
            marks = ", ".join(["%s"] * len(values))
            # EXECUTE takes no bound parameters: the values are written into its text. A
            # write is explained, not run; no savepoint: psycopg forgets every statement it
            # prepared at any ROLLBACK, a savepoint's included
            analyze = "ANALYZE, " if text.lstrip().startswith("SELECT") else ""
            with psycopg.ClientCursor(connection.driver_connection) as cursor:
                try:
                    cursor.execute(f"EXPLAIN ({analyze}FORMAT JSON) EXECUTE {name}({marks})", values)
                    plan = cursor.fetchone()[0][0]["Plan"]
                    took = f"{plan['Actual Total Time']:.3f} ms: " if analyze else ""
                    found.setdefault(" ".join(text.split()[:3]), took + ", ".join(_scans(plan)))
                except Exception as exc:  # a report, not a check
                    found.setdefault(" ".join(text.split()[:3]), f"(not replayed: {type(exc).__name__})")
                    break
        connection.rollback()
    return found


def print_pg(engine, texts: Counter[str], first_parameters: dict[str, object]) -> None:
    """Distinct texts per statement, which ones the connections hold prepared, and
    EXPLAIN (ANALYZE, SUMMARY)'s planning and execution times of each, replayed after the run
    with its first parameters in a transaction rolled back."""
    kinds: dict[str, list[str]] = {}
    for text in texts:
        kinds.setdefault(" ".join(text.split()[:3]), []).append(text)
    idle = engine.pool.checkedin()
    connections = [engine.raw_connection() for _ in range(max(1, idle))]
    prepared: set[str] = set()
    plans: dict[str, tuple[int, int]] = {}  # first words -> generic and custom plans made
    try:
        for connection in connections:
            with connection.cursor() as cursor:
                cursor.execute("SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements")
                for statement, generic, custom in cursor.fetchall():
                    prepared.add(" ".join(statement.split()))
                    plans[" ".join(statement.split()[:3])] = (generic, custom)
        generic_scans = cached_plans(connections, texts, first_parameters)
        OUT.mkdir(parents=True, exist_ok=True)
        with open(OUT / "statements.txt", "w", encoding="utf-8") as out:
            for text, seen in texts.most_common():
                print(f"-- {seen} executions, parameters {first_parameters[text]!r}\n{text}\n", file=out)
            print("-- prepared on the connections:", file=out)
            for text in sorted(prepared):
                print(f"{text}\n", file=out)
        print(f"statements as sent ({len(connections)} connection(s) asked for their prepared ones):")
        print(
            "  executions, distinct texts, generic plans, custom plans (prepared), "
            "planning ms, execution ms (EXPLAIN), statement"
        )
        replay = connections[0]
        plans_out: list[str] = []
        for kind, members in sorted(kinds.items(), key=lambda item: -sum(texts[t] for t in item[1])):
            generic, custom = plans.get(kind, (0, 0))
            planning = execution = 0.0
            text = max(members, key=lambda t: texts[t])
            if kind.split()[0] in {"SELECT", "WITH", "UPDATE", "INSERT", "DELETE"}:
                try:
                    with replay.cursor() as cursor:
                        cursor.execute(
                            "EXPLAIN (ANALYZE, BUFFERS, SUMMARY, FORMAT JSON) " + text,
                            first_parameters[text],
                        )
                        plan = cursor.fetchone()[0][0]
                        planning, execution = plan["Planning Time"], plan["Execution Time"]
                        plans_out.append(f"-- {kind}\n{text}\n{json.dumps(plan, indent=1)}\n")
                except Exception as exc:  # a report, not a check
                    print(f"  (EXPLAIN failed: {type(exc).__name__}: {str(exc).splitlines()[0]})")
                replay.rollback()
            print(
                f"  {sum(texts[t] for t in members):6d} {len(members):4d} {generic:5d} {custom:5d} "
                f"{planning:7.3f} {execution:7.3f}  {kind}"
            )
            if kind in generic_scans:
                print(f"         its cached plan, as executed: {generic_scans[kind]}")
        with connections[0].cursor() as cursor:  # the counts as the backends last reported them
            time.sleep(1.1)
            cursor.execute(
                "SELECT relname, indexrelname, idx_scan FROM pg_stat_user_indexes "
                "WHERE relname IN ('messages', 'message_items', 'evidence', 'evidence_head', "
                "'planned_steps', 'step_leases', 'debtor_salts') ORDER BY relname, indexrelname"
            )
            print(
                "  index scans over the whole run (ingest and tick included): "
                + ", ".join(f"{index} {scans}" for _table, index, scans in cursor.fetchall())
            )
        connections[0].rollback()
        (OUT / "plans.txt").write_text("\n".join(plans_out), encoding="utf-8")
        print(f"  statements: {OUT / 'statements.txt'}, plans: {OUT / 'plans.txt'}")
    finally:
        for connection in connections:
            connection.close()


def main() -> int:
    from sqlalchemy import event

    from adapters.store import migrate
    from config.bootstrap import build_app
    from config.logging import configure_logging
    from config.settings import Settings
    from handlers.delivery import deliver_many
    from handlers.messages import StepsDue
    from handlers.service import run_step, run_steps
    from intake.ingest import ingest_stream
    from scheduler.tick import tick

    configure_logging(os.environ.get("RELANCE_LOG_LEVEL", "INFO"))
    database = f"relance_profile_{TAG}"
    url = create_database(database)
    sink = make_sink().start()
    print(f"smtp peer: {sink.name}", flush=True)
    app = None
    try:
        settings = Settings(
            database_url=url,
            smtp_host="127.0.0.1",
            smtp_port=sink.port,
            smtp_tls="none",
            sender="Relance <relance@creancier.example>",
            now=harness.T0,
            data_dir=OUT / f"profile-{TAG}",
        )
        app = build_app(settings)
        migrate(app.engine)
        events = io.BytesIO(harness.invoice_events(REMINDERS).encode("utf-8"))
        ingest_stream(app, events, "profile", io.StringIO())
        analyze(url)  # as autovacuum would; see bench.run.analyze
        steps = Collect()
        tick(
            app.sessions,
            steps,
            harness.T0,
            lease=timedelta(seconds=300),
            batch_size=500,
            max_in_flight=None,
            worker_batch=WORKER_BATCH,
        )
        statements: Counter[str] = Counter()
        waited: Counter[str] = Counter()  # seconds from sending a statement to its result
        started: list[float] = []

        @event.listens_for(app.engine, "before_cursor_execute")
        def _count(_conn, _cursor, statement, *_args) -> None:
            statements[" ".join(statement.split()[:3])] += 1
            started.append(time.perf_counter())

        commits: list[int] = []

        @event.listens_for(app.engine, "commit")
        def _commit(_conn) -> None:
            commits.append(1)

        texts: Counter[str] = Counter()  # each distinct text as sent, its executions
        first_parameters: dict[str, object] = {}
        backends: dict[int, float] = {}  # backend pid -> its CPU seconds when first seen

        @event.listens_for(app.engine, "before_cursor_execute")
        def _text(_conn, _cursor, statement, parameters, *_args) -> None:
            texts[statement] += 1
            first_parameters.setdefault(statement, parameters)

        @event.listens_for(app.engine, "checkout")
        def _backend(dbapi_connection, *_args) -> None:
            pid = dbapi_connection.info.backend_pid
            if pid not in backends:
                backends[pid] = backend_cpu(pid)

        @event.listens_for(app.engine, "after_cursor_execute")
        def _time(_conn, cursor, statement, *_args) -> None:
            if cursor.connection.autocommit:  # a statement in autocommit is a transaction too
                commits.append(1)
            if started:
                waited[" ".join(statement.split()[:3])] += time.perf_counter() - started.pop()

        units, transports, ctx = app.units, app.transports, app.ctx

        class DeliverHere:  # what the worker's actor does with the recorded messages
            """The deliveries of DELIVERY_BATCH reminders handed to ``deliver_many`` together
            (1: each reminder's own, as one step per broker message publishes them)."""

            def __init__(self) -> None:
                self.waiting: list = []

            def publish(self, tasks) -> None:
                self.waiting.extend(tasks)
                if len(self.waiting) >= DELIVERY_BATCH or WORKER_BATCH > 1:
                    self.flush()

            def flush(self) -> None:
                waiting, self.waiting = self.waiting, []
                if waiting:
                    deliver_many(units, waiting, lambda: harness.T0, transports, ctx)

        deliveries = DeliverHere()
        profiler = None
        if PROFILE and not PROFILE_CPU:
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.001)
            profiler.start()
        cpu_profile = None
        if PROFILE_CPU:  # cProfile on this thread's CPU clock, instead of pyinstrument
            import cProfile

            cpu_profile = cProfile.Profile(time.thread_time)
            cpu_profile.enable()
        wall, cpu = time.perf_counter(), time.thread_time()
        for task in steps.tasks:
            if isinstance(task, StepsDue):  # as the worker's steps_due actor
                run_steps(
                    app.units, deliveries, task.message_id, task.creditor_id, task.steps, harness.T0, app.ctx
                )
            else:
                run_step(
                    app.units, deliveries, task.message_id, task.event, task.step_id, harness.T0, app.ctx
                )
        deliveries.flush()
        wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
        server_cpu = sum(backend_cpu(pid) - start for pid, start in backends.items())
        if cpu_profile is not None:
            cpu_profile.disable()
        if profiler is not None:
            profiler.stop()
            OUT.mkdir(parents=True, exist_ok=True)
            (OUT / "profile.txt").write_text(profiler.output_text(color=False), encoding="utf-8")
            (OUT / "profile.html").write_text(profiler.output_html(), encoding="utf-8")
        count = sum(len(t.steps) if isinstance(t, StepsDue) else 1 for t in steps.tasks)
        together = (
            f"{WORKER_BATCH} steps per broker message"
            if WORKER_BATCH > 1
            else (f"one step per broker message, deliveries of {DELIVERY_BATCH} reminder(s) together")
        )
        print(f"{count} reminders, {sink.count()} at the SMTP sink, {together}", flush=True)
        print(
            f"per reminder: {cpu / count * 1000:.2f} ms CPU of this thread, "
            f"{wall / count * 1000:.2f} ms wall ({count / wall:.1f} reminders/s in one thread)"
        )
        print(
            f"SQL statements per reminder: {sum(statements.values()) / count:.1f} "
            f"(BEGIN and COMMIT not counted), in {len(commits) / count:.2f} transactions"
            " (a statement in autocommit counted as one)"
        )
        print(
            f"PostgreSQL CPU per reminder: {server_cpu / count * 1000:.2f} ms "
            f"(the {len(backends)} backend(s) of this process's connections, from /proc)"
        )
        print("  per reminder: statements, ms from execute to result, statement")
        for statement, seen in sorted(statements.items(), key=lambda item: -waited[item[0]]):
            print(f"  {seen / count:4.1f}  {waited[statement] / count * 1000:6.2f} ms  {statement}")
        if PROFILE_PG:
            print_pg(app.engine, texts, first_parameters)
        if cpu_profile is not None:
            print_cpu_profile(cpu_profile, count)
        if profiler is not None:
            print(f"profile: {OUT / 'profile.txt'} and {OUT / 'profile.html'}")
            session = profiler.last_session
            root = session.root_frame() if session is not None else None
            for line in report(time_by_kind(root), count):
                print(line)
    finally:
        if app is not None:
            app.dispose()
        sink.stop()
        drop_database(database)
    return 0


if __name__ == "__main__":
    sys.exit(main())
