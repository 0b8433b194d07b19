"""``make bench-db-ceiling``: what PostgreSQL alone does with reminder-shaped transactions.

The database's ceiling, to set relance's own cost against: ``pgbench`` runs the statements of
``bench/reminder_shaped.sql`` (mark a step done, store a 3 kB message, append a hash-chained
evidence record, move the chain's head, all on one creditor's chain) against a throwaway
database ``relance_ceiling_<random>``, first one reminder per transaction, then 50 per
transaction (BENCH_CEILING_BATCH). Each run lasts BENCH_CEILING_SECONDS (default 15) with
BENCH_CEILING_CLIENTS connections (default 2, the cores of the machine). Printed: the
transactions/s pgbench reports, the reminders/s they make, and the cores PostgreSQL and
pgbench used (from /proc). The database is dropped at the end.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.run import TAG, cpu_snapshot, cpu_split, create_database, drop_database

SCRIPT = Path(__file__).with_name("reminder_shaped.sql")
SECONDS = int(os.environ.get("BENCH_CEILING_SECONDS", "15"))
CLIENTS = int(os.environ.get("BENCH_CEILING_CLIENTS", "2"))
BATCH = int(os.environ.get("BENCH_CEILING_BATCH", "50"))
STEPS = 200_000

SCHEMA = f"""
CREATE TABLE ceiling_steps (
    id bigint PRIMARY KEY, invoice bigint NOT NULL, step text NOT NULL,
    status text NOT NULL, due_at timestamptz NOT NULL, done_at timestamptz);
INSERT INTO ceiling_steps
    SELECT n, n, 'pre_due', 'planned', now() FROM generate_series(1, {STEPS}) AS n;
CREATE INDEX ON ceiling_steps (status, due_at);
CREATE TABLE ceiling_messages (
    id bigserial PRIMARY KEY, step_id bigint NOT NULL, debtor bigint NOT NULL,
    status text NOT NULL DEFAULT 'recorded', body text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX ON ceiling_messages (debtor);
CREATE TABLE ceiling_evidence (
    id bigserial PRIMARY KEY, creditor text NOT NULL, kind text NOT NULL, payload jsonb NOT NULL,
    previous bytea NOT NULL, digest bytea NOT NULL, at timestamptz NOT NULL DEFAULT now());
CREATE TABLE ceiling_chain_heads (creditor text PRIMARY KEY, digest bytea NOT NULL, length bigint NOT NULL);
INSERT INTO ceiling_chain_heads VALUES ('default', sha256(''::bytea), 0);
VACUUM ANALYZE;
"""


def transaction_script(batch: int) -> str:
    """``batch`` reminders' statements between one BEGIN and one COMMIT."""
    body = SCRIPT.read_text(encoding="utf-8")
    return "BEGIN;\n" + body * batch + "COMMIT;\n"


def pgbench(url: str, script: Path) -> tuple[float, dict[str, float]]:
    """Transactions/s of ``script`` and the cores each part used while it ran."""
    binary = shutil.which("pgbench") or "/usr/lib/postgresql/15/bin/pgbench"
    command = [binary, "-n", "-M", "prepared", "-c", str(CLIENTS), "-j", str(CLIENTS), "-T", str(SECONDS)]
    command += ["-D", f"steps={STEPS}", "-f", str(script), url]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    before, start = cpu_snapshot({"pgbench": process.pid}, "bench"), time.monotonic()
    time.sleep(SECONDS / 2)  # pgbench has connected; read the CPU before it exits
    middle = cpu_snapshot({"pgbench": process.pid}, "bench")
    split = cpu_split(before, middle, time.monotonic() - start)
    out, err = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"pgbench failed: {err.strip() or out.strip()}")
    found = re.search(r"tps = ([0-9.]+)", out)
    if found is None:
        raise RuntimeError(f"pgbench printed no tps: {out.strip()}")
    failed = re.search(r"number of failed transactions: (\d+)", out)
    if failed and int(failed.group(1)):
        raise RuntimeError(f"pgbench: {failed.group(1)} failed transactions")
    return float(found.group(1)), split


def main() -> int:
    import psycopg

    database = f"relance_ceiling_{TAG}"
    url = create_database(database)
    try:
        with psycopg.connect(url, autocommit=True) as connection:
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    connection.execute(statement)
        print(f"pgbench {SECONDS} s per run, {CLIENTS} clients, {os.cpu_count()} cores", flush=True)
        with tempfile.TemporaryDirectory(prefix="relance-ceiling-") as tmp:
            for batch in (1, BATCH):
                script = Path(tmp) / f"reminders_{batch}.sql"
                script.write_text(transaction_script(batch), encoding="utf-8")
                tps, split = pgbench(url, script)
                per_reminder = {name: round(cores / (tps * batch) * 1000, 3) for name, cores in split.items()}
                print(
                    f"{batch} reminder(s) per transaction: {tps:.1f} transactions/s = "
                    f"{tps * batch:.0f} reminders/s; cores used {split}; "
                    f"CPU ms per reminder {per_reminder}",
                    flush=True,
                )
    finally:
        drop_database(database)
    return 0


if __name__ == "__main__":
    sys.exit(main())
