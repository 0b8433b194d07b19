"""Bulk ingest: ``relance ingest FILE`` of a large JSON Lines feed into PostgreSQL.

Run with ``.venv/bin/python -m bench.ingest``. Environment:

- ``BENCH_EVENTS``: number of lines to generate (default 1000000; e.g. 20000 for a quick run);
- ``BENCH_LOG_LEVEL``: ``RELANCE_LOG_LEVEL`` of the ingest process (default ``INFO``, the
  production default: one ``event.accepted`` JSON line per event on stderr, written to a
  file here); ``WARNING`` keeps only the rejections;
- ``BENCH_POSTGRES_URL``: the server (default ``postgresql://postgres@127.0.0.1:5432/postgres``);
  a database ``relance_ingest_<random>`` is created, migrated with ``relance migrate``, and
  dropped at the end, with the temporary folder holding the feed;
- ``BENCH_SEED``: seed of the generator (default 1); ``BENCH_TIMEOUT``: seconds (default 3600);
- ``BENCH_JOBS``: with N above 1, ``relance ingest --jobs N FILE``: the command cuts the
  feed into N parts by debtor itself and applies them in N processes (default 1: one
  process). ``split_by_debtor`` below is the cut as a caller would make it into N files.

The feed looks like a real one: mostly ``invoice.issued`` with their debtor (a debtor has
several invoices, so most debtors are updated again), payments (partial and full) and credit
notes on earlier invoices, a few payments that arrive before their invoice (parked, then
released), exact duplicates (some inside the same batch), and invalid lines (money as a
number, broken JSON, unknown type, an event id reused with other content).

While ``relance ingest`` runs, its resident memory (VmRSS, summed over its processes) and
its read position in the feed (``/proc/PID/fdinfo``; with ``--jobs``, the least advanced of
the parts' processes, each of which reads the whole feed) are sampled every 0.5 s.
Printed: RSS at 10 %, 50 % and 100 % of the feed and the peak, the ingest summary, and
``events_per_second=<n>`` (lines / wall time of the ingest process, start-up included) as
the last line.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import resource
import secrets
import subprocess
import sys
import tempfile
import time
import zlib
from datetime import date, timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
PG_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
EVENTS = int(os.environ.get("BENCH_EVENTS", "1000000"))
LOG_LEVEL = os.environ.get("BENCH_LOG_LEVEL", "INFO")
SEED = int(os.environ.get("BENCH_SEED", "1"))
TIMEOUT = float(os.environ.get("BENCH_TIMEOUT", "3600"))
JOBS = int(os.environ.get("BENCH_JOBS", "1"))
SAMPLE_SECONDS = 0.5

CITIES = [
    ("69007", "Lyon"),
    ("44000", "Nantes"),
    ("13100", "Aix-en-Provence"),
    ("59000", "Lille"),
    ("75011", "Paris"),
    ("33000", "Bordeaux"),
    ("67000", "Strasbourg"),
]


# --- the feed ------------------------------------------------------------------------------


class Feed:
    """Generates the lines one at a time; nothing is kept per line but a few recent ones."""

    def __init__(self, seed: int, today: date) -> None:
        self.rng = random.Random(seed)
        self.today = today
        self.invoices = 0  # invoices issued so far: F-000000 .. F-{invoices-1}
        self.debtors = 0
        self.events = 0
        self.recent: list[str] = []  # the last valid lines, for duplicates
        self.counts: dict[str, int] = {}

    def _id(self, prefix: str) -> str:
        self.events += 1
        return f"{prefix}-{self.events:08d}"

    def _amount(self, index: int) -> int:  # cents, fixed by the invoice index
        return 5000 + (index * 7919) % 2_500_000

    def _issue_day(self, index: int) -> date:
        return self.today - timedelta(days=(index * 13) % 75)

    def _debtor(self, number: int) -> dict:
        postal, city = CITIES[number % len(CITIES)]
        debtor = {
            "id": f"CLI-{number:07d}",
            "name": f"Client {number} SAS",
            "kind": "business",
            "email": f"compta{number}@client{number % 97}.example",
            "language": "fr",
            "timezone": "Europe/Paris",
            "address": {
                "line1": f"{number % 300 + 1} rue des Forges",
                "postal_code": postal,
                "city": city,
                "country": "FR",
            },
        }
        if number % 3 == 0:
            debtor["siren"] = f"{552100000 + number % 99999:09d}"
        return debtor

    def invoice_issued(self, index: int) -> dict:
        rng = self.rng
        if self.debtors == 0 or rng.random() < 0.3:
            self.debtors += 1
            debtor = self.debtors - 1
        else:  # most debtors have several invoices: the debtor is upserted again
            debtor = rng.randrange(max(0, self.debtors - 5000), self.debtors)
        issued = self._issue_day(index)
        cents = self._amount(index)
        invoice = {
            "number": f"F-{index:07d}",
            "debtor_id": f"CLI-{debtor:07d}",
            "issue_date": issued.isoformat(),
            "due_date": (issued + timedelta(days=rng.choice((30, 45, 60)))).isoformat(),
            "currency": "EUR",
            "amount_due": f"{cents // 100}.{cents % 100:02d}",
        }
        if index % 4 == 0:
            invoice["payment_url"] = f"https://pay.example.com/F-{index:07d}"
        return {
            "event_id": self._id("iss"),
            "type": "invoice.issued",
            "occurred_at": f"{issued.isoformat()}T10:00:00+01:00",
            "invoice": invoice,
            "debtor": self._debtor(debtor),
        }

    def money(self, kind: str, index: int) -> dict:
        cents = self._amount(index)
        part = cents if self.rng.random() < 0.6 else max(1, cents // self.rng.choice((2, 3, 4)))
        amount = f"{part // 100}.{part % 100:02d}"
        paid_on = max(self._issue_day(index), self.today - timedelta(days=self.rng.randrange(5)))
        common = {
            "occurred_at": f"{paid_on.isoformat()}T15:00:00+01:00",
            "invoice_number": f"F-{index:07d}",
            "amount": amount,
        }
        if kind == "payment":
            return {
                "event_id": self._id("pay"),
                "type": "payment.received",
                **common,
                "paid_on": paid_on.isoformat(),
            }
        return {
            "event_id": self._id("avo"),
            "type": "credit_note.issued",
            **common,
            "credit_note_number": f"AV-{self.events:08d}",
        }

    def invalid(self) -> str:
        choice = self.rng.randrange(4)
        if choice == 0:  # money as a JSON number
            event = self.money("payment", self.rng.randrange(max(1, self.invoices)))
            event["amount"] = 12.5
            return json.dumps(event, separators=(",", ":"))
        if choice == 1:
            return '{"event_id":"' + self._id("bad") + '","type":"payment.received",'
        if choice == 2:
            return json.dumps(
                {
                    "event_id": self._id("bad"),
                    "type": "invoice.paid",
                    "occurred_at": "2026-03-02T10:00:00+01:00",
                }
            )
        if self.recent:  # an event id already used, with other content
            event = json.loads(self.rng.choice(self.recent))
            event["occurred_at"] = "2026-01-01T00:00:00+01:00"
            return json.dumps(event, separators=(",", ":"))
        return "[]"

    def line(self) -> tuple[str, str]:
        rng = self.rng
        roll = rng.random()
        if roll < 0.010 and self.recent:
            kind, line = "duplicate", rng.choice(self.recent[-8:])  # often in the same batch
        elif roll < 0.015:
            kind, line = "invalid", self.invalid()
        elif roll < 0.115 and self.invoices:
            kind = "payment"
            line = json.dumps(self.money("payment", rng.randrange(self.invoices)), separators=(",", ":"))
        elif roll < 0.155 and self.invoices:
            kind = "credit_note"
            line = json.dumps(self.money("credit_note", rng.randrange(self.invoices)), separators=(",", ":"))
        elif roll < 0.160:  # a payment for an invoice issued a little later: parked
            kind = "early_payment"
            ahead = rng.randrange(1, 20) if rng.random() < 0.5 else rng.randrange(20, 2000)
            line = json.dumps(self.money("payment", self.invoices + ahead), separators=(",", ":"))
        else:
            kind = "invoice_issued"
            line = json.dumps(self.invoice_issued(self.invoices), separators=(",", ":"))
            self.invoices += 1
        if kind != "invalid":
            self.recent.append(line)
            if len(self.recent) > 64:
                del self.recent[:32]
        self.counts[kind] = self.counts.get(kind, 0) + 1
        return kind, line


def write_feed(path: Path, events: int, seed: int) -> dict[str, int]:
    feed = Feed(seed, date.today())
    with path.open("w", encoding="utf-8") as out:
        for _ in range(events):
            out.write(feed.line()[1] + "\n")
    return feed.counts


def split_by_debtor(feed: Path, parts: int) -> list[Path]:
    """The feed cut into ``parts`` files, each debtor's events in one file, in feed order.

    Two passes: the first maps each invoice to its debtor (kept in this process only), the
    second writes each line to its debtor's file; a line naming no debtor or known invoice
    (broken JSON, an invoice never issued) goes by its own hash."""
    debtor_of: dict[str, str] = {}
    with feed.open(encoding="utf-8") as lines:
        for line in lines:
            event = _json_or_none(line)
            if event and event.get("type") == "invoice.issued":
                debtor_of.setdefault(event["invoice"]["number"], event["debtor"]["id"])
    paths = [feed.with_name(f"{feed.stem}.{index}{feed.suffix}") for index in range(parts)]
    outputs = [path.open("w", encoding="utf-8") for path in paths]
    try:
        with feed.open(encoding="utf-8") as lines:
            for line in lines:
                outputs[zlib.crc32(_route(line, debtor_of).encode()) % parts].write(line)
    finally:
        for output in outputs:
            output.close()
    return paths


def _route(line: str, debtor_of: dict[str, str]) -> str:
    event = _json_or_none(line)
    if event is None:
        return line
    if isinstance(event.get("debtor"), dict) and "id" in event["debtor"]:
        return str(event["debtor"]["id"])
    number = event.get("invoice_number")
    return debtor_of.get(number, str(number)) if number is not None else line


def _json_or_none(line: str) -> dict | None:
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


# --- the database --------------------------------------------------------------------------


def _admin_url() -> str:
    return PG_URL.replace("postgresql+psycopg://", "postgresql://")


def create_database(name: str) -> str:
    with psycopg.connect(_admin_url(), autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = _admin_url().rpartition("/")
    return f"{base}/{name}"


def drop_database(name: str) -> None:
    with psycopg.connect(_admin_url(), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- sampling /proc ------------------------------------------------------------------------


def rss_kib(pid: int) -> int | None:
    with contextlib.suppress(OSError):
        for row in Path(f"/proc/{pid}/status").read_text().splitlines():
            if row.startswith("VmRSS:"):
                return int(row.split()[1])
    return None


def read_position(pid: int, paths: list[Path]) -> int | None:
    """The offsets of the process's open descriptors on ``paths`` (its progress in the feed)."""
    names, found = {str(path) for path in paths}, None
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{pid}/fd/{fd}") in names:
                    for row in Path(f"/proc/{pid}/fdinfo/{fd}").read_text().splitlines():
                        if row.startswith("pos:"):
                            found = (found or 0) + int(row.split()[1])
    return found


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the processes of ``relance ingest --jobs``)."""
    found, index = [pid], 0
    while index < len(found):
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{found[index]}/task"):
                with contextlib.suppress(OSError):
                    children = Path(f"/proc/{found[index]}/task/{task}/children").read_text()
                    found += [int(child) for child in children.split()]
        index += 1
    return found


def _tree_sample(pid: int, paths: list[Path], size: int, jobs: int) -> tuple[int | None, float]:
    """(resident memory of the tree in KiB, the part of the feed read, in %): with ``jobs``
    above 1, how far the slowest of the parts' processes is (the parent's reads plan them)."""
    rss, positions = None, []
    for member in process_tree(pid):
        member_rss = rss_kib(member)
        if member_rss is not None:
            rss = (rss or 0) + member_rss
        if jobs == 1 or member != pid:
            positions.append(read_position(member, paths))
    if jobs == 1:
        return rss, 100 * sum(p or 0 for p in positions) / size
    reading = [p for p in positions if p is not None]
    return rss, (100 * min(reading) / size if len(reading) == jobs else 0.0)


def run_ingest(env: dict[str, str], folder: Path, feed: Path, jobs: int = 1) -> dict:
    paths = [feed]
    size = sum(path.stat().st_size for path in paths)
    out_path, err_path = folder / "ingest.out", folder / "ingest.err"
    marks = {10: None, 50: None}
    peak, samples, last_rss = 0, 0, None
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, "-m", "relance", "ingest", "--jobs", str(jobs), str(feed)],
            env=env,
            cwd=folder,
            stdout=out,
            stderr=err,
        )
        while process.poll() is None:
            if time.monotonic() - started > TIMEOUT:
                process.kill()
                process.wait()
                raise RuntimeError(f"relance ingest did not finish within {TIMEOUT:.0f} s")
            rss, done = _tree_sample(process.pid, paths, size, jobs)
            if rss is not None:
                peak, samples, last_rss = max(peak, rss), samples + 1, rss
                for mark in marks:
                    if marks[mark] is None and done >= mark:
                        marks[mark] = rss
                        print(
                            f"rss_at_{mark}%={rss / 1024:.1f} MiB ({time.monotonic() - started:.1f} s)",
                            flush=True,
                        )
            time.sleep(SAMPLE_SECONDS)
        elapsed = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(f"rss_at_100%={(last_rss or 0) / 1024:.1f} MiB (last sample, {elapsed:.1f} s)")
    print(f"rss_peak={peak / 1024:.1f} MiB ({samples} samples)")
    summary = out_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    if process.returncode not in (0, 1) or not summary or not summary[-1].startswith("accepted"):
        tail = err_path.read_text(encoding="utf-8", errors="replace")[-3000:]
        raise RuntimeError(f"relance ingest exited {process.returncode}: {tail}")
    return {
        "seconds": elapsed,
        "cpu_seconds": cpu,
        "summary": summary[-1],
        "rejected_lines": len(summary) - 1,
        "rss_peak_kib": peak,
        "rss_marks_kib": marks,
        "rss_last_kib": last_rss,
        "log_bytes": err_path.stat().st_size,
    }


def main() -> int:
    name = f"relance_ingest_{secrets.token_hex(4)}"
    with tempfile.TemporaryDirectory(prefix="relance-bench-ingest-") as tmp:
        folder = Path(tmp)
        feed = folder / "events.jsonl"
        started = time.monotonic()
        counts = write_feed(feed, EVENTS, SEED)
        print(
            f"feed: {EVENTS} lines, {feed.stat().st_size / 2**20:.1f} MiB in "
            f"{time.monotonic() - started:.1f} s: "
            + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())),
            flush=True,
        )
        url = create_database(name)
        try:
            env = {k: v for k, v in os.environ.items() if not k.startswith("RELANCE_")}
            env.update(
                {
                    "RELANCE_DATABASE_URL": url,
                    "RELANCE_DATA_DIR": str(folder / "var"),
                    "RELANCE_LOG_LEVEL": LOG_LEVEL,
                    "PYTHONPATH": str(ROOT),
                }
            )
            subprocess.run(
                [sys.executable, "-m", "relance", "migrate"],
                env=env,
                cwd=folder,
                check=True,
                capture_output=True,
            )
            result = run_ingest(env, folder, feed, JOBS)
        finally:
            drop_database(name)
    rate = EVENTS / result["seconds"]
    print(f"jobs={JOBS} ({'one process' if JOBS == 1 else f'one file cut by debtor into {JOBS} processes'})")
    print(f"cpu_ms_per_event={1000 * result['cpu_seconds'] / EVENTS:.2f} (ingest processes)")
    print(f"log_level={LOG_LEVEL}, log_output={result['log_bytes'] / 2**20:.1f} MiB")
    print(f"ingest: {result['summary']} ({result['rejected_lines']} rejected lines printed)")
    print(
        f"seconds={result['seconds']:.1f} (ingest process CPU {result['cpu_seconds']:.1f} s, "
        f"load average {os.getloadavg()[0]:.1f})"
    )
    print(f"events_per_second={rate:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
