"""Machinery for the chaos tests: throwaway servers, the production processes, counting.

Everything runs on 127.0.0.1. PostgreSQL and Redis are throwaway servers started here (never
the shared system services, which the tests must not stop): a PostgreSQL cluster from the
binaries under ``/usr/lib/postgresql/<version>/bin`` (run as ``nobody`` when the tests run as
root, since ``initdb`` refuses root) and ``redis-server`` from PATH. The SMTP server is an
aiosmtpd controller in the test process that keeps the raw bytes of every message it accepts,
so that a re-sent message can be compared byte for byte with the first copy.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.parser import BytesHeaderParser
from pathlib import Path

N = int(os.environ.get("CHAOS_REMINDERS", "2000"))  # reminders per run, one debtor each
ROOT = Path(__file__).resolve().parents[2]
T0 = datetime.fromisoformat("2026-03-27T10:00:00+01:00")  # pre_due steps of 1 April are due
RESULTS = Path(os.environ.get("RELANCE_CHAOS_RESULTS", ROOT / "var" / "chaos-results.jsonl"))

# The settings under test (see docs/reliability.md)
SETTINGS = {
    "RELANCE_TICK_SECONDS": "0.5",
    "RELANCE_CLAIM_LEASE_SECONDS": os.environ.get("CHAOS_LEASE_SECONDS", "10"),
    # keep what is in flight below lease x throughput (~20-35 steps/s on 2 cores)
    "RELANCE_MAX_IN_FLIGHT": os.environ.get("CHAOS_MAX_IN_FLIGHT", "150"),
    "RELANCE_HEARTBEAT_TIMEOUT_MS": "5000",
    "RELANCE_MAINTENANCE_CHANCE": "100000",
    "RELANCE_SMTP_TLS": "none",
    "RELANCE_SMTP_TIMEOUT": "10",
    "RELANCE_SENDER": "Relance <relance@creancier.example>",
}


class Unavailable(Exception):
    """A binary the chaos tests need is missing."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(predicate: Callable[[], bool], seconds: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


# --- SMTP ---------------------------------------------------------------------------------


class _Handler:
    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.sink.rcpt_answer != "250 OK":
            self.sink.refused += 1
            return self.sink.rcpt_answer
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        answer = self.sink.answer
        if not answer.startswith("2"):
            self.sink.refused += 1
            return answer
        raw = bytes(envelope.content)
        message_id = BytesHeaderParser().parsebytes(raw).get("Message-ID", "").strip()
        with self.sink.lock:
            self.sink.received.append((time.monotonic(), message_id, raw))
        return answer


class _PipeliningHandler(_Handler):
    """The same, offering PIPELINING (RFC 2920) as Postfix does."""

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]


@dataclass
class Sink:
    """A loopback SMTP server that can be stopped and started again on the same port;
    ``pipelining`` offers PIPELINING (the envelope's commands then come in one write)."""

    port: int = field(default_factory=free_port)
    answer: str = "250 OK"  # to the message, after DATA
    rcpt_answer: str = "250 OK"  # to RCPT TO: a refusal of the recipient's address
    received: list[tuple[float, str, bytes]] = field(default_factory=list)
    refused: int = 0
    pipelining: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    _controller: object | None = None

    def start(self) -> Sink:
        from aiosmtpd.controller import Controller

        handler = (_PipeliningHandler if self.pipelining else _Handler)(self)
        self._controller = Controller(handler, hostname="127.0.0.1", port=self.port, ready_timeout=10)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def count(self) -> int:
        with self.lock:
            return len(self.received)

    def unique(self) -> int:
        with self.lock:
            return len({m for _, m, _ in self.received})

    def times(self) -> list[float]:
        with self.lock:
            return [t for t, _, _ in self.received]

    def tally(self) -> dict[str, int]:
        """Copies per Message-ID: identical re-sends vs. same id with different bytes."""
        first: dict[str, bytes] = {}
        duplicated = conflicting = 0
        with self.lock:
            for _, message_id, raw in self.received:
                if message_id not in first:
                    first[message_id] = raw
                elif first[message_id] == raw:
                    duplicated += 1
                else:
                    conflicting += 1
        return {
            "received": len(self.received),
            "unique": len(first),
            "duplicated": duplicated,
            "conflicting": conflicting,
            "missing_message_id": int("" in first),
        }

    def first_seen(self) -> dict[str, float]:
        seen: dict[str, float] = {}
        with self.lock:
            for t, message_id, _ in self.received:
                seen.setdefault(message_id, t)
        return seen

    def message_ids(self) -> set[str]:
        with self.lock:
            return {m for _, m, _ in self.received}


# --- Redis --------------------------------------------------------------------------------


class RedisServer:
    """A throwaway ``redis-server`` (nothing on disk) that can be killed and restarted."""

    def __init__(self, folder: Path) -> None:
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            raise Unavailable("redis-server is not on PATH")
        self.folder, self.port = folder, free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.folder),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if not wait_for(self.answers, 10, 0.05):
            raise RuntimeError("redis-server did not start")
        return self

    def answers(self) -> bool:
        with socket.socket() as probe:
            probe.settimeout(0.5)
            try:
                probe.connect(("127.0.0.1", self.port))
                probe.sendall(b"PING\r\n")
                return probe.recv(16).startswith(b"+PONG")
            except OSError:
                return False

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)


# --- PostgreSQL -----------------------------------------------------------------------------


def _pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise Unavailable("no PostgreSQL server binaries (initdb) found")
    return Path(initdb).parent


class PgCluster:
    """A throwaway PostgreSQL cluster on its own port; restartable (``-m immediate``)."""

    def __init__(self, folder: Path) -> None:
        self.bin = _pg_bin()
        self.folder, self.port = folder, free_port()
        self.data = folder / "data"
        self.as_nobody = os.geteuid() == 0

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = [str(self.bin / args[0]), *args[1:]]
        if self.as_nobody:
            command = ["runuser", "-u", "nobody", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=check, timeout=120)

    def _options(self) -> str:
        return f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c max_connections=200"

    def init(self) -> PgCluster:
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.as_nobody:
            shutil.chown(self.folder, "nobody")
        os.chmod(self.folder, 0o700)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-N")
        return self.start()

    def start(self) -> PgCluster:
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            self._options(),
            "-l",
            str(self.folder / "log"),
            "-w",
            "start",
        )
        return self

    def restart_immediate(self) -> None:
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            self._options(),
            "-l",
            str(self.folder / "log"),
            "-m",
            "immediate",
            "-w",
            "restart",
        )

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str, template: str | None = None) -> str:
        import psycopg

        copy = f' TEMPLATE "{template}"' if template else ""
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"{copy}')
        return self.url(name)

    def prepare_template(self, name: str, invoices: int, folder: Path) -> None:
        """A database migrated and fed ``invoices`` invoices; tests copy it (fast)."""
        url = self.create_database(name)
        folder.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("RELANCE_")}
        env.update(
            {
                "RELANCE_DATABASE_URL": url,
                "RELANCE_DATA_DIR": str(folder / "var"),
                "RELANCE_NOW": T0.isoformat(),
            }
        )
        (folder / "events.jsonl").write_text(invoice_events(invoices), encoding="utf-8")
        for args in (["migrate"], ["ingest", str(folder / "events.jsonl")]):
            result = subprocess.run(
                [sys.executable, "-m", "relance", *args],
                env=env,
                cwd=folder,
                capture_output=True,
                text=True,
                timeout=600,
            )
            if result.returncode != 0:
                raise RuntimeError(f"relance {args[0]}: {result.stderr[-2000:]}")
        assert result.stdout.strip().endswith(f"accepted {invoices}, duplicate 0, rejected 0")


def invoice_events(count: int) -> str:
    """``count`` invoices due 1 April 2026, one debtor each (no merging): N pre_due steps."""
    lines = []
    for i in range(count):
        debtor = {
            "id": f"D-{i:05d}",
            "name": f"Client {i} SAS",
            "kind": "business",
            "email": f"compta{i}@client.example",
            "language": "fr",
            "timezone": "Europe/Paris",
            "address": {
                "line1": f"{i} rue des Forges",
                "postal_code": "69007",
                "city": "Lyon",
                "country": "FR",
            },
        }
        lines.append(
            json.dumps(
                {
                    "event_id": f"issued-F-{i:05d}",
                    "type": "invoice.issued",
                    "occurred_at": "2026-03-02T10:00:00+01:00",
                    "invoice": {
                        "number": f"F-{i:05d}",
                        "debtor_id": debtor["id"],
                        "issue_date": "2026-03-02",
                        "due_date": "2026-04-01",
                        "currency": "EUR",
                        "amount_due": f"{1000 + i}.00",
                    },
                    "debtor": debtor,
                }
            )
        )
    return "\n".join(lines) + "\n"


# --- the production processes ------------------------------------------------------------


class Service:
    """``relance scheduler`` / ``relance worker`` processes against one database and broker.

    Every process gets RELANCE_NOW = T0 and RELANCE_NOW_SINCE = the Unix time this object was
    made, so all processes, including those started again after a crash, share one running
    clock however long each takes to start.
    """

    def __init__(self, folder: Path, database_url: str, redis_url: str, smtp_port: int, **extra: str) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.since = time.time()  # when the service's clock read T0
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("RELANCE_")}
        self.env.update(SETTINGS)
        self.env.update(
            {
                "RELANCE_DATA_DIR": str(folder / "var"),
                "RELANCE_DATABASE_URL": database_url,
                "RELANCE_REDIS_URL": redis_url,
                "RELANCE_REDIS_NAMESPACE": f"chaos-{folder.name}",
                "RELANCE_SMTP_HOST": "127.0.0.1",
                "RELANCE_SMTP_PORT": str(smtp_port),
                "RELANCE_WORKER_PROCESSES": "2",
                "RELANCE_WORKER_THREADS": "8",
                **extra,
            }
        )
        self.processes: dict[str, subprocess.Popen] = {}
        self._logs: list = []

    def _environment(self, **extra: str) -> dict[str, str]:
        return {**self.env, "RELANCE_NOW": T0.isoformat(), "RELANCE_NOW_SINCE": repr(self.since), **extra}

    def command(self, *args: str, stdin: str | None = None, timeout: float = 300) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "relance", *args],
            input=stdin,
            env=self._environment(),
            cwd=self.folder,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise RuntimeError(f"relance {' '.join(args)}: {result.stderr[-2000:]}")
        return result.stdout

    def ingest_invoices(self, count: int) -> None:
        path = self.folder / "events.jsonl"
        path.write_text(invoice_events(count), encoding="utf-8")
        out = self.command("ingest", str(path))
        assert out.strip().splitlines()[-1] == f"accepted {count}, duplicate 0, rejected 0", out

    def start(self, name: str, role: str, **extra: str) -> subprocess.Popen:
        """Start ``relance <role>`` in its own process group (so kill -9 takes its children)."""
        log = open(self.folder / f"{name}.log", "ab")  # noqa: SIM115 - closed in close()
        self._logs.append(log)
        process = subprocess.Popen(
            [sys.executable, "-m", "relance", role],
            env=self._environment(**extra),
            cwd=self.folder,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        self.processes[name] = process
        return process

    def kill9(self, name: str) -> int:
        """SIGKILL the whole process group of ``name``; return how many processes died."""
        process = self.processes[name]
        members = group_members(process.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
        return len(members)

    def alive(self, name: str) -> bool:
        return self.processes[name].poll() is None

    def log_events(self, name: str) -> list[dict]:
        lines = (self.folder / f"{name}.log").read_text(encoding="utf-8", errors="replace")
        events = []
        for line in lines.splitlines():
            with contextlib.suppress(ValueError):
                events.append(json.loads(line))
        return events

    def close(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
        for log in self._logs:
            log.close()


def group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[2]) == pgid:
                    members.append(int(entry.name))
    return members


# --- the database's view --------------------------------------------------------------------


def database_state(url: str) -> dict[str, object]:
    import psycopg

    with psycopg.connect(url) as connection:
        steps = dict(
            connection.execute(
                "SELECT status, count(*) FROM planned_steps WHERE step = 'pre_due' GROUP BY status"
            ).fetchall()
        )
        messages = dict(
            connection.execute(
                "SELECT channel || ':' || status, count(*) FROM messages GROUP BY 1"
            ).fetchall()
        )
        ids = {
            row[0]
            for row in connection.execute(
                "SELECT message_id FROM messages WHERE channel = 'email'"
            ).fetchall()
        }
        retried = {
            row[0]
            for row in connection.execute("SELECT message_id FROM messages WHERE attempts > 1").fetchall()
        }
        attempts = connection.execute(
            "SELECT coalesce(max(attempts), 0), coalesce(sum(attempts), 0) FROM messages"
        ).fetchone()
    return {
        "steps": steps,
        "messages": messages,
        "email_ids": ids,
        "retried": retried,
        "max_attempts": attempts[0],
        "sum_attempts": attempts[1],
    }


def done(sink: Sink, url: str, expected: int) -> Callable[[], bool]:
    def check() -> bool:
        if sink.unique() < expected:
            return False
        state = database_state(url)
        return state["messages"].get("email:sent", 0) == expected

    return check


def record(
    test: str, fault: str, load: dict, tally: dict, expected: int, timings: dict, **extra: object
) -> dict:
    """Append one JSON line to the results file (read by docs/reliability.md)."""
    line = {
        "test": test,
        "fault": fault,
        "at": datetime.now().astimezone().isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "load": load,
        "expected": expected,
        "sent_unique": tally["unique"],
        "received": tally["received"],
        "duplicated": tally["duplicated"],
        "conflicting": tally["conflicting"],
        "lost": expected - tally["unique"],
        **{k: round(v, 2) if isinstance(v, float) else v for k, v in timings.items()},
        **extra,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(line) + "\n")
    return line


def first_after(times: list[float], instant: float) -> float | None:
    later = [t for t in times if t >= instant]
    return min(later) - instant if later else None


def longest_gap(times: list[float], start: float, end: float) -> float:
    inside = sorted(t for t in times if start <= t <= end)
    points = [start, *inside, end]
    return max(b - a for a, b in itertools.pairwise(points))


def smtp_app(pg_cluster: PgCluster, smtp_port: int, tmp_path: Path, invoices: int, **settings: object):
    """An in-process app on a throwaway PostgreSQL database of ``pg_cluster``, sending to the
    SMTP server on ``smtp_port``, with ``invoices`` invoices due 1 April, one debtor each."""
    import uuid

    from adapters.store import normalise_url
    from tests.support import ingest, invoice_issued, make_test_app

    url = pg_cluster.create_database(f"chaos_{uuid.uuid4().hex[:10]}")
    app = make_test_app(
        normalise_url(url),
        tmp_path / "var",
        T0,
        smtp_host="127.0.0.1",
        smtp_port=smtp_port,
        smtp_tls="none",
        smtp_timeout=5,
        sender="Relance <relance@creancier.example>",
        **settings,
    )
    debtors = [
        {
            "id": f"D-{i}",
            "name": f"Client {i}",
            "kind": "business",
            "email": f"c{i}@client.example",
            "language": "fr",
            "timezone": "Europe/Paris",
            "address": {"line1": "1 rue", "postal_code": "69007", "city": "Lyon", "country": "FR"},
        }
        for i in range(invoices)
    ]
    ingest(app, *[invoice_issued(f"F-{i}", "2026-04-01", debtor=d) for i, d in enumerate(debtors)])
    return app
