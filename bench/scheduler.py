"""``python -m bench.scheduler``: the scheduler's cost at scale, on the system PostgreSQL and Redis.

1. Builds a store of BENCH_INVOICES open invoices (default 1 000 000; one debtor per 4
   invoices), each with the 8 steps of the default ladder (0 to 3 of them already done, the
   rest planned days to years ahead, none due), one sent message per invoice, one case per
   100 invoices with its hand-over, and a few pending deliveries and hand-overs whose lease
   or back-off runs. Written with ``INSERT … SELECT generate_series`` after ``relance
   migrate``'s schema (secondary indexes dropped during the load and rebuilt from their own
   definitions), then ``VACUUM ANALYZE``. This measures the tick, not ingest. Autovacuum is
   then switched off on ``planned_steps``, ``step_leases`` and ``messages``, so that the dead
   index entries the claims and the workers leave are measured at a known moment (5.) and
   removed by one ``VACUUM``.
2. EXPLAIN (ANALYZE, BUFFERS, WAL) of every statement one batch of the tick runs (in-flight
   count, fresh-step claim, expired-lease claim, claim_overdue_deliveries,
   claim_overdue_handovers), in three states: nothing due; BENCH_DUE_STEPS due; those
   steps in flight. Each is run inside a transaction that is rolled back.
3. (a) Idle ticks: BENCH_TICKS ticks (default 20, after one warm-up tick, see run_child) of
   ``scheduler.tick.tick`` with the real settings (batch 500, max in flight 2000, lease
   300 s, ``DramatiqPublisher`` on a ``RedisBroker``), in a fresh process: median and max.
   Again once BENCH_DUE_STEPS steps are in flight (the in-flight count at its cap).
4. (b) Emission: BENCH_DUE_STEPS steps (default 100 000) made due, then one tick with
   max in flight BENCH_EMIT_MAX_IN_FLIGHT (default 1 000 000, not throttling) emits them all
   to Redis, grouped into broker messages as the service's scheduler groups them
   (``scheduler.loop.worker_batch``: RELANCE_WORKER_BATCH, capped by the in-flight limit;
   BENCH_WORKER_BATCH=1 sends one message per step, as before batches existed).
   Rate = steps / tick time. Raw enqueue, in a fresh process before and after:
   the same number of equivalent Dramatiq messages (same actor, kwargs and message ids,
   built with ``dramatiq.Message`` and its encoder) pushed with one HSET and one RPUSH
   per 1000 messages on a non-transactional pipeline. Ratio = emission / best raw rate.
5. After the burst: the emitted steps marked done and their leases deleted (as the workers
   would), then BENCH_TICKS ticks 360 s later (the old leases have run out too), before and
   after a ``VACUUM planned_steps, step_leases``.
6. (c) Memory: VmRSS and the peak VmHWM (reset just before the measured part through
   ``/proc/self/clear_refs``) of each measuring process.

Uses BENCH_POSTGRES_URL (default postgres@127.0.0.1:5432) with its own database
``relance_sched_<random>`` and BENCH_REDIS_URL (default 127.0.0.1:6379/0) with namespaces
``relance-sched-<random>-*``; both are removed at the end (BENCH_KEEP=1 keeps the database).
BENCH_EXPLAIN=full prints the whole plans. The last line printed is
``emission_vs_raw_ratio=<x.xxx>``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PG_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
INVOICES = int(os.environ.get("BENCH_INVOICES", "1000000"))
DUE_STEPS = int(os.environ.get("BENCH_DUE_STEPS", "100000"))
TICKS = int(os.environ.get("BENCH_TICKS", "20"))
BATCH_SIZE = int(os.environ.get("BENCH_BATCH_SIZE", "500"))
MAX_IN_FLIGHT = int(os.environ.get("BENCH_MAX_IN_FLIGHT", "2000"))
EMIT_MAX_IN_FLIGHT = int(os.environ.get("BENCH_EMIT_MAX_IN_FLIGHT", "1000000"))
LEASE_SECONDS = int(os.environ.get("BENCH_LEASE_SECONDS", "300"))
RAW_CHUNK = int(os.environ.get("BENCH_RAW_CHUNK", "1000"))
EXPLAIN = os.environ.get("BENCH_EXPLAIN", "1")
KEEP = os.environ.get("BENCH_KEEP", "0") == "1"
QUEUE = "relance"

# the default ladder (config/policy.toml) and the prescription warning: (step, event, days)
LADDER = [
    ("pre_due", "invoice.due", -5),
    ("due", "invoice.due", 0),
    ("notice", "invoice.overdue", 3),
    ("reminder_1", "invoice.overdue", 10),
    ("reminder_2", "invoice.overdue", 20),
    ("reminder_3", "invoice.overdue", 30),
    ("formal_notice", "invoice.overdue", 40),
    ("prescription_warning", "deadline.expired", 1800),
]


def say(line: str) -> None:
    print(line, flush=True)


def memory() -> dict[str, int]:
    """VmRSS and VmHWM (peak) of this process, in kB."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            name, value = line.split(":", 1)
            fields[name] = int(value.split()[0])
    return fields


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux ``clear_refs``); False where not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def mb(kb: int) -> str:
    return f"{kb / 1024:.1f} MB"


# --- the database ---------------------------------------------------------------------------


def plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def create_database(name: str) -> str:
    import psycopg

    with psycopg.connect(plain(PG_URL), autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return plain(PG_URL).rsplit("/", 1)[0] + f"/{name}"


def drop_database(name: str) -> None:
    import psycopg

    with psycopg.connect(plain(PG_URL), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def drop_namespace(namespace: str) -> int:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{namespace}:*", count=1000))
    for start in range(0, len(keys), 1000):
        client.delete(*keys[start : start + 1000])
    client.close()
    return len(keys)


LOADED_TABLES = ("debtors", "invoices", "planned_steps", "messages", "cases", "handovers")


def load(url: str) -> None:
    """The schema by ``migrate``, then the rows in bulk; secondary indexes rebuilt after."""
    import psycopg

    from adapters.store import make_engine, migrate

    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    debtors = max(INVOICES // 4, 1)
    cases = max(INVOICES // 100, 1)
    ladder = ", ".join(
        f"({k}, '{step}', '{event}', {days})" for k, (step, event, days) in enumerate(LADDER, 1)
    )
    started = time.monotonic()
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("SET maintenance_work_mem = '512MB'")
        db.execute("SET session_replication_role = replica")  # no FK triggers: rows are consistent
        indexes = db.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = 'public' "
            "AND i.tablename = ANY(%s) AND NOT EXISTS (SELECT 1 FROM pg_constraint c "
            "WHERE c.conname = i.indexname)",
            (list(LOADED_TABLES),),
        ).fetchall()
        for name, _ in indexes:
            db.execute(f'DROP INDEX "{name}"')
        db.execute(f"""
            INSERT INTO debtors (id, name, kind, email, language, timezone, country, address,
                                 opt_out, email_bounced, updated_at)
            SELECT 'D-' || g, 'Débiteur ' || g, 'business', 'compta' || g || '@debiteur.example',
                   'fr', 'Europe/Paris', 'FR', '{{"lines": ["1 rue de la Paix"], "city": "Paris"}}',
                   false, false, now()
            FROM generate_series(1, {debtors}) g""")
        db.execute(f"""
            INSERT INTO invoices (id, number, debtor_id, issue_date, due_date, currency, amount_due,
                                  paid, credited, status, disputed, ever_disputed, in_payment_plan,
                                  created_at, updated_at)
            SELECT g, 'F-' || lpad(g::text, 9, '0'), 'D-' || (1 + (g - 1) % {debtors}),
                   current_date - 20 - g % 10, current_date + 10 - g % 10, 'EUR',
                   10000 + g % 500000, 0, 0, 'open', false, false, false, now(), now()
            FROM generate_series(1, {INVOICES}) g""")
        # steps 1..(g % 4) are done (past), the others planned: 1 day to ~5 years ahead
        db.execute(f"""
            INSERT INTO planned_steps (id, invoice_id, debtor_id, step, event, due_at, status,
                                       lease_until, emit_count, done_at)
            SELECT (g - 1) * {len(LADDER)} + s.k, g, 'D-' || (1 + (g - 1) % {debtors}), s.step,
                   s.event,
                   CASE WHEN s.k <= g % 4 THEN now() - make_interval(days => 12 - s.k)
                        ELSE now() + make_interval(days => 1 + s.days + 5 + g % 10,
                                                   secs => g % 3600) END,
                   CASE WHEN s.k <= g % 4 THEN 'done' ELSE 'planned' END,
                   CASE WHEN s.k <= g % 4 THEN now() - make_interval(days => 12 - s.k) END,
                   CASE WHEN s.k <= g % 4 THEN 1 ELSE 0 END,
                   CASE WHEN s.k <= g % 4 THEN now() - make_interval(days => 12 - s.k) END
            FROM generate_series(1, {INVOICES}) g
            CROSS JOIN (VALUES {ladder}) AS s(k, step, event, days)
            ORDER BY g, s.k""")
        # one sent message per invoice; every 1000th pending with its delivery lease running
        db.execute(f"""
            INSERT INTO messages (id, message_id, debtor_id, channel, step, local_day, recipient,
                                  subject, body_text, content, content_sha256, amounts, status,
                                  attempts, lease_until, created_at, sent_at)
            SELECT g, '<' || g || '@bench.example>', 'D-' || (1 + (g - 1) % {debtors}), 'email',
                   'pre_due', current_date - 15, 'compta@debiteur.example', 'Rappel', 'Bonjour',
                   '\\x00'::bytea, repeat('0', 64), '{{}}',
                   CASE WHEN g % 1000 = 0 THEN 'pending' ELSE 'sent' END, 1,
                   CASE WHEN g % 1000 = 0 THEN now() + interval '10 minutes'
                        ELSE now() - interval '15 days' END,
                   now() - interval '15 days',
                   CASE WHEN g % 1000 = 0 THEN NULL ELSE now() - interval '15 days' END
            FROM generate_series(1, {INVOICES}) g""")
        db.execute(f"""
            INSERT INTO cases (id, debtor_id, kind, status, recommended_procedure, reasons,
                               alternatives, currency, principal, late_interest, indemnities,
                               amount_claimed, notes, opened_at, updated_at)
            SELECT g, 'D-' || g, 'escalation', 'handed_over', 'injonction_de_payer', '[]', '[]',
                   'EUR', 100000, 1000, 4000, 105000, '[]', now() - interval '30 days', now()
            FROM generate_series(1, {cases}) g""")
        # every 10th hand-over pending, its back-off running
        db.execute(f"""
            INSERT INTO handovers (id, case_id, partner, partner_kind, channel, idempotency_key,
                                   status, attempts, lease_until, created_at, delivered_at)
            SELECT g, g, 'avocat', 'lawyer', 'webhook', md5(g::text),
                   CASE WHEN g % 10 = 0 THEN 'pending' ELSE 'delivered' END, 1,
                   CASE WHEN g % 10 = 0 THEN now() + interval '1 hour'
                        ELSE now() - interval '29 days' END,
                   now() - interval '30 days',
                   CASE WHEN g % 10 = 0 THEN NULL ELSE now() - interval '29 days' END
            FROM generate_series(1, {cases}) g""")
        for table in LOADED_TABLES[1:]:  # the tables with a serial id
            db.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
            )
        inserted = time.monotonic() - started
        for _, definition in indexes:
            db.execute(definition)
        indexed = time.monotonic() - started - inserted
        db.execute("VACUUM ANALYZE")
        # the dead index entries the claims leave are measured, then removed by one VACUUM;
        # autovacuum (after 50 000 dead rows, migration 0005) would do it at a random moment
        for table in ("planned_steps", "step_leases", "messages"):
            db.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
        steps = db.execute(
            "SELECT count(*), count(*) FILTER (WHERE status = 'planned') FROM planned_steps"
        ).fetchone()
        size = db.execute("SELECT pg_size_pretty(pg_database_size(current_database()))").fetchone()
    say(
        f"data: {INVOICES} open invoices, {debtors} debtors, {steps[0]} planned_steps "
        f"({steps[1]} planned, none due), {INVOICES} messages, {cases} cases and hand-overs; "
        f"database {size[0]}; built in {time.monotonic() - started:.1f} s "
        f"(insert {inserted:.1f} s, {len(indexes)} indexes {indexed:.1f} s, then VACUUM ANALYZE)"
    )


def make_due(url: str) -> None:
    """The formal-notice step (never done yet) of invoices 1..DUE_STEPS falls due an hour ago."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as db:
        updated = db.execute(
            "UPDATE planned_steps SET due_at = now() - interval '1 hour' "
            "WHERE step = 'formal_notice' AND invoice_id <= %s AND status = 'planned'",
            (DUE_STEPS,),
        ).rowcount
        db.execute("ANALYZE planned_steps")
    say(f"made due: {updated} steps")


# --- EXPLAIN of the tick's statements ---------------------------------------------------------


def explain(url: str, label: str) -> None:
    """Run one batch of the tick's claims with EXPLAIN (ANALYZE, BUFFERS) of each statement.

    Each statement is explained on the same connection just before it runs, inside one
    transaction that is rolled back at the end, so nothing changes.
    """
    from sqlalchemy import event

    from adapters.store import make_engine
    from adapters.uow import UnitOfWork
    from handlers.delivery import claim_overdue_deliveries
    from handlers.handover import claim_overdue_handovers
    from scheduler.tick import _claim_steps, _room

    engine = make_engine(url)
    plans: list[tuple[str, list[str]]] = []

    def before(conn, cursor, statement, parameters, context, executemany):
        if executemany or not statement.lstrip().upper().startswith(("SELECT", "UPDATE", "WITH")):
            return
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, WAL) " + statement, parameters)
        plans.append((statement, [row[0] for row in cursor.fetchall()]))

    now, lease = datetime.now(UTC), timedelta(seconds=LEASE_SECONDS)
    with engine.connect() as connection:
        transaction = connection.begin()
        event.listen(connection, "before_cursor_execute", before)
        session = UnitOfWork(bind=connection)  # what the tick's transactions are
        session.scope(None)  # every creditor's rows, as the tick reads them
        room = _room(session, now, MAX_IN_FLIGHT)
        # the claim as the tick runs it, and uncapped (what runs when room is left)
        _claim_steps(session, now, lease, BATCH_SIZE)
        claim_overdue_deliveries(session, now, lease, BATCH_SIZE)
        claim_overdue_handovers(session.store, now, lease, BATCH_SIZE)
        event.remove(connection, "before_cursor_execute", before)
        session.close()
        transaction.rollback()
    engine.dispose()
    say(f"explain [{label}] (room left under max_in_flight={MAX_IN_FLIGHT}: {room}):")
    for statement, plan in plans:
        say(f"  {summary(statement)}")
        wanted = (
            plan
            if EXPLAIN == "full"
            else [
                line
                for line in plan
                if any(
                    word in line
                    for word in (
                        "Scan",
                        "Limit",
                        "Sort",
                        "Update on",
                        "Insert on",
                        "Delete on",
                        "Execution Time",
                        "LockRows",
                        "Aggregate",
                        "WAL:",
                    )
                )
            ]
        )
        for line in wanted:
            say(f"      {line.strip() if EXPLAIN != 'full' else line}")


def summary(statement: str) -> str:
    """A short name for a statement of the tick."""
    text = " ".join(statement.split())
    where = text.split(" WHERE ", 1)[1].split(" ORDER BY")[0].split(" LIMIT")[0] if " WHERE " in text else ""
    where = where.replace("::VARCHAR", "").replace("::TIMESTAMP WITH TIME ZONE", "")
    if text.startswith("WITH") and "INSERT INTO step_leases" in text:
        return (
            "WITH picked AS (SELECT … FROM (SELECT … FROM planned_steps WHERE planned, due, no lease "
            "ORDER BY … LIMIT 4n) WHERE pg_try_advisory_xact_lock(19, id) LIMIT n), "
            "leased AS (INSERT INTO step_leases … ON CONFLICT DO NOTHING RETURNING …) SELECT …"
        )
    if text.startswith("WITH"):
        return (
            "WITH picked AS (SELECT … FROM step_leases WHERE lease_until <= now ORDER BY … LIMIT n "
            "FOR UPDATE SKIP LOCKED), leased AS (UPDATE step_leases … FROM planned_steps WHERE "
            "step_id = ANY(array(picked)) AND planned, due RETURNING …), swept AS (DELETE FROM "
            "step_leases WHERE step_id = ANY(array(picked)) AND step not pending) SELECT …"
        )
    if text.startswith("SELECT count"):
        return f"SELECT count(*) FROM (SELECT … FROM step_leases WHERE {where} LIMIT cap)"
    table = text.split(" FROM ", 1)[1].split()[0] if " FROM " in text else "?"
    return f"SELECT … FROM {table} WHERE {where} ORDER BY … LIMIT n FOR UPDATE SKIP LOCKED"


# --- the measuring processes -----------------------------------------------------------------


def child(phase: str, url: str, namespace: str, shift: float = 0.0) -> dict:
    """Run ``phase`` in a fresh process (``--child``); its JSON result is its last line."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "BENCH_CHILD_URL": url,
        "BENCH_CHILD_NAMESPACE": namespace,
        "BENCH_CHILD_SHIFT": str(shift),
    }
    log_file = Path(os.environ.get("TMPDIR", "/tmp")) / f"{namespace}-{phase}.log"
    with open(log_file, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.scheduler", "--child", phase],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=log,
            start_new_session=True,
        )
        out, _ = process.communicate(timeout=900)
    if process.returncode != 0:
        tail = log_file.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"child {phase} failed ({process.returncode}):\n{tail}")
    result = json.loads(out.decode().strip().splitlines()[-1])
    result["log"] = str(log_file)
    lines = log_file.read_text(errors="replace").splitlines()
    ticks = [line for line in lines if '"scheduler.tick"' in line]
    result["last_tick_log"] = ticks[-1] if ticks else None
    log_file.unlink()
    return result


def scheduler_app(url: str, namespace: str, max_in_flight: int):
    from config.bootstrap import attach_publisher, build_app, prepare_store
    from config.logging import configure_logging
    from config.settings import Settings
    from worker.broker import make_broker

    configure_logging("INFO")
    settings = Settings(
        database_url=url,
        redis_url=REDIS_URL,
        redis_namespace=namespace,
        batch_size=BATCH_SIZE,
        max_in_flight=max_in_flight,
        claim_lease_seconds=LEASE_SECONDS,
        data_dir=Path("/tmp"),
    )
    app = build_app(settings)
    prepare_store(app, auto_migrate=False)
    attach_publisher(app, make_broker(settings))
    return app


def run_child(phase: str) -> dict:
    """``idle``: BENCH_TICKS ticks; ``emit``: one tick; ``raw``: raw enqueue (see the top).

    The objects of the start-up are frozen as the service's scheduler freezes them
    (``config.process.freeze_start_up_objects``). Every tick process then runs one tick at
    an instant long past (2000-01-01: nothing is due, no lease ran out, the same
    statements): it connects to both servers and compiles the statements without touching
    what is measured. A measured tick includes the sweep of the transmission records that the
    service runs after each tick. BENCH_CHILD_SHIFT seconds are added to the clock of the measured ticks.
    """
    url, namespace = os.environ["BENCH_CHILD_URL"], os.environ["BENCH_CHILD_NAMESPACE"]
    if phase == "raw":
        return raw_enqueue(namespace)
    from bench.run import cpu_snapshot, cpu_split
    from config.process import freeze_start_up_objects
    from handlers.delivery import record_left_transmissions
    from scheduler.loop import worker_batch
    from scheduler.tick import tick

    cap = EMIT_MAX_IN_FLIGHT if phase == "emit" else MAX_IN_FLIGHT
    app = scheduler_app(url, namespace, cap)
    freeze_start_up_objects()  # as the service's scheduler does before its first tick
    settings = app.settings
    shift = timedelta(seconds=float(os.environ.get("BENCH_CHILD_SHIFT", "0")))
    published = [0.0]
    messages = [0]
    publish = app.publisher.publish
    # steps per broker message, as the service's scheduler sends them (BENCH_WORKER_BATCH=1:
    # one message per step)
    per_message = int(os.environ.get("BENCH_WORKER_BATCH") or worker_batch(settings))

    def timed_publish(tasks) -> None:
        start = time.perf_counter()
        publish(tasks)
        published[0] += time.perf_counter() - start
        messages[0] += len(tasks)

    app.publisher.publish = timed_publish

    def one(now: datetime) -> tuple[float, object]:
        start = time.perf_counter()
        result = tick(
            app.sessions,
            app.publisher,
            now,
            lease=app.ctx.lease,
            batch_size=settings.batch_size,
            max_in_flight=settings.max_in_flight,
            worker_batch=per_message,
        )
        # the sweep the service runs after every tick (scheduler.loop.safe_tick)
        record_left_transmissions(app.units, now, app.ctx.lease, settings.batch_size)
        return time.perf_counter() - start, result

    warm, _ = one(datetime(2000, 1, 1, tzinfo=UTC))
    collections = watch_collections()
    before = memory()
    peak_reset = reset_peak()
    if phase == "emit":
        cpu_before = cpu_snapshot({})
        seconds, result = one(datetime.now(UTC) + shift)
        cpu = cpu_split(cpu_before, cpu_snapshot({}), seconds)
        cpu["scheduler"] = cpu.pop("bench+smtp sink")
        return {
            "seconds": seconds,
            "steps": result.steps,
            "deliveries": result.deliveries,
            "handovers": result.handovers,
            "warm": warm,
            "before": before,
            "after": memory(),
            "peak_reset": peak_reset,
            "cpu": cpu,
            "publishing": published[0],
            "messages": messages[0],
            "worker_batch": per_message,
            "gc": collections,
        }
    times, emitted = [], 0
    for _ in range(TICKS):
        seconds, result = one(datetime.now(UTC) + shift)
        times.append(seconds)
        emitted += result.steps
    return {
        "times": times,
        "warm": warm,
        "emitted": emitted,
        "gc": collections,
        "before": before,
        "after": memory(),
        "peak_reset": peak_reset,
    }


def watch_collections() -> dict:
    """The garbage collector's passes from now on: how many, and the longest, per
    generation (a full one, generation 2, walks every object not frozen)."""
    import gc

    seen: dict = {"0": [0, 0.0], "1": [0, 0.0], "2": [0, 0.0]}
    started = [0.0]

    def callback(phase: str, info: dict) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            entry = seen[str(info["generation"])]
            entry[0] += 1
            entry[1] = max(entry[1], (time.perf_counter() - started[0]) * 1000)

    gc.callbacks.append(callback)
    return seen


def gc_text(seen: dict) -> str:
    return "garbage collections " + ", ".join(
        f"gen {gen}: {count} (longest {longest:.1f} ms)" for gen, (count, longest) in sorted(seen.items())
    )


def raw_enqueue(namespace: str) -> dict:
    """DUE_STEPS equivalent Dramatiq messages to Redis, one HSET + one RPUSH per chunk.

    Timed: building each ``dramatiq.Message`` (with its ``redis_message_id``), encoding it,
    and the pipelines. Then, for reference, the same bytes again, already encoded: what
    Redis and the client library alone take.
    """
    from uuid import uuid4

    import dramatiq
    import redis

    from handlers.messages import StepDue

    client = redis.Redis.from_url(REDIS_URL)
    raw_ns = f"{namespace}-raw"
    key = f"{raw_ns}:{QUEUE}"
    due_at = datetime.now(UTC).replace(microsecond=0)
    # what the emission sends, prepared outside the measured interval
    specs = [
        (task.actor, task.payload(), task.message_id)
        for task in (StepDue("invoice.overdue", 8_000_000 + i, due_at, 1) for i in range(DUE_STEPS))
    ]
    client.ping()
    before = memory()
    peak_reset = reset_peak()
    chunks = []
    start = time.perf_counter()
    for first in range(0, len(specs), RAW_CHUNK):
        data = {}
        for actor, kwargs, message_id in specs[first : first + RAW_CHUNK]:
            message = dramatiq.Message(
                queue_name=QUEUE,
                actor_name=actor,
                args=(),
                kwargs=kwargs,
                options={"redis_message_id": str(uuid4())},
                message_id=message_id,
            )
            data[message.options["redis_message_id"]] = message.encode()
        pipe = client.pipeline(transaction=False)
        pipe.hset(f"{key}.msgs", mapping=data)
        pipe.rpush(key, *data)
        pipe.execute()
        chunks.append(data)
    seconds = time.perf_counter() - start
    queued = client.llen(key)
    after = memory()
    drop_namespace(raw_ns)
    start = time.perf_counter()
    for data in chunks:
        pipe = client.pipeline(transaction=False)
        pipe.hset(f"{key}.msgs", mapping=data)
        pipe.rpush(key, *data)
        pipe.execute()
    encoded_seconds = time.perf_counter() - start
    client.close()
    drop_namespace(raw_ns)
    return {
        "seconds": seconds,
        "messages": len(specs),
        "queued": queued,
        "before": before,
        "after": after,
        "peak_reset": peak_reset,
        "encoded_seconds": encoded_seconds,
    }


# --- the run ---------------------------------------------------------------------------------


def report_ticks(label: str, result: dict) -> None:
    times = [t * 1000 for t in result["times"]]
    say(
        f"(a) tick [{label}]: {len(times)} ticks, median {statistics.median(times):.2f} ms, "
        f"max {max(times):.2f} ms (first {times[0]:.2f} ms, min {min(times):.2f} ms); "
        f"emitted {result['emitted']}; {gc_text(result['gc'])}"
    )
    say(
        f"(c) memory [{label}]: RSS {mb(result['before']['VmRSS'])} before the ticks, "
        f"{mb(result['after']['VmRSS'])} after, peak during the ticks {mb(result['after']['VmHWM'])}"
        + ("" if result["peak_reset"] else " (peak since start: clear_refs refused)")
    )


def report_raw(label: str, raw: dict) -> float:
    rate = raw["messages"] / raw["seconds"]
    say(
        f"(b) raw enqueue [{label}]: {raw['messages']} messages in {raw['seconds']:.2f} s = "
        f"{rate:.0f} msgs/s (dramatiq.Message + encode + one HSET and one RPUSH per {RAW_CHUNK}; "
        f"{raw['queued']} on the list); the same bytes pre-encoded: "
        f"{raw['messages'] / raw['encoded_seconds']:.0f} msgs/s"
    )
    return rate


def mark_done(url: str) -> int:
    """What the workers do with the leased steps: ``done``, their emissions added to
    ``emit_count`` and their leases deleted (in batches, as they commit)."""
    import psycopg

    done = 0
    with psycopg.connect(url) as db:
        while True:
            with db.transaction():
                ids = [
                    row[0]
                    for row in db.execute(
                        "SELECT l.step_id FROM step_leases l JOIN planned_steps s ON s.id = l.step_id "
                        "WHERE s.status = 'planned' LIMIT 5000"
                    )
                ]
                db.execute(
                    "UPDATE planned_steps s SET status = 'done', done_at = now(), "
                    "emit_count = s.emit_count + l.emission FROM step_leases l "
                    "WHERE l.step_id = s.id AND s.id = ANY(%s)",
                    (ids,),
                )
                db.execute("DELETE FROM step_leases WHERE step_id = ANY(%s)", (ids,))
            done += len(ids)
            if not ids:
                return done


def main() -> int:
    import psycopg
    import redis

    tag = secrets.token_hex(4)
    database = f"relance_sched_{tag}"
    namespace = f"relance-sched-{tag}"
    try:
        url = create_database(database)
        with psycopg.connect(url) as db:
            server = db.execute("SHOW server_version").fetchone()[0]
            buffers = db.execute("SHOW shared_buffers").fetchone()[0]
        say(
            f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, PostgreSQL {server} "
            f"(shared_buffers {buffers}); batch {BATCH_SIZE}, max in flight {MAX_IN_FLIGHT}, "
            f"lease {LEASE_SECONDS} s"
        )
        load(url)
        explain(url, "nothing due")
        report_ticks("nothing due", child("idle", url, namespace))

        make_due(url)
        explain(url, f"{DUE_STEPS} due")
        raw_rates = [report_raw("before", child("raw", url, namespace))]
        emit = child("emit", url, namespace)
        client = redis.Redis.from_url(REDIS_URL)
        queued = client.llen(f"{namespace}:{QUEUE}"), client.hlen(f"{namespace}:{QUEUE}.msgs")
        client.close()
        with psycopg.connect(url) as db:
            in_flight = db.execute("SELECT count(*) FROM step_leases WHERE lease_until > now()").fetchone()[0]
        rate = emit["steps"] / emit["seconds"]
        say(
            f"(b) emission: {emit['steps']} steps in {emit['seconds']:.2f} s = {rate:.0f} steps/s "
            f"(one tick, batch {BATCH_SIZE}, max in flight {EMIT_MAX_IN_FLIGHT}, {emit['messages']} broker "
            f"messages of up to {emit['worker_batch']} steps; publishing {emit['publishing']:.2f} s in "
            "all, in the tick's thread while the next batch is claimed but for the last batch; "
            f"Redis list {queued[0]}, hash {queued[1]}; in flight in the database {in_flight}; "
            f"{gc_text(emit['gc'])})"
        )
        say(f"    cores used during the emission: {json.dumps(emit['cpu'])}")
        say(f"    log: {emit['last_tick_log']}")
        say(
            f"(c) memory [emission]: RSS {mb(emit['before']['VmRSS'])} before, "
            f"{mb(emit['after']['VmRSS'])} after, peak during the emission {mb(emit['after']['VmHWM'])}"
        )
        raw_rates.append(report_raw("after", child("raw", url, namespace)))
        raw = max(raw_rates)

        explain(url, f"{in_flight} in flight")
        report_ticks(f"{in_flight} in flight", child("idle", url, namespace))
        done = mark_done(url)
        shift = LEASE_SECONDS + 60
        say(
            f"the {done} emitted steps marked done (as the workers would); ticks {shift} s later, "
            "once their old leases have run out too, before any vacuum:"
        )
        report_ticks("after the burst, not vacuumed", child("idle", url, namespace, shift))
        with psycopg.connect(url, autocommit=True) as db:
            started = time.monotonic()
            db.execute("VACUUM planned_steps, step_leases")
            say(
                f"VACUUM planned_steps, step_leases: {time.monotonic() - started:.1f} s (what autovacuum "
                "does once 50 000 rows are dead, migration 0005, or a fifth of step_leases; switched "
                "off in this benchmark)"
            )
        report_ticks("after the burst, vacuumed", child("idle", url, namespace, shift))
        say(f"emission {rate:.0f} steps/s vs raw enqueue {raw:.0f} msgs/s (best of {len(raw_rates)})")
        say(f"emission_vs_raw_ratio={rate / raw:.3f}")
        return 0
    finally:
        removed = drop_namespace(namespace)
        if KEEP:
            say(f"kept database {database}; removed {removed} Redis keys")
        else:
            drop_database(database)
            say(f"cleaned up: database {database} dropped, {removed} Redis keys removed")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(run_child(sys.argv[2])), flush=True)
        sys.exit(0)
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
    sys.exit(130)
