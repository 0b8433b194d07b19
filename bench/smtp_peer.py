"""The SMTP peer of the benchmarks: postfix's compiled ``smtp-sink`` when installed, else Python.

A benchmark that counts reminders per second must not spend its CPU budget receiving them.
The Python sink of the chaos harness (aiosmtpd, in the bench's own process) costs about
1.5 ms of CPU per message on the same cores as relance; postfix's ``smtp-sink`` (Debian
package ``postfix``, binary ``/usr/sbin/smtp-sink``) is a small C server that costs a
fraction of that. Both are started on a free loopback port and offer the same few methods
to the benchmark: ``port``, ``start``, ``stop``, ``count``, ``unique``, ``times``,
``tally`` and ``pids``.

``BENCH_SMTP_SINK`` chooses: ``auto`` (the default: ``smtp-sink`` when it is found, the
Python sink otherwise), ``smtp-sink`` (fails in one line when it is not installed),
``python``, or ``postfix``: a real mail server in front of the sink, for realism
(``RelayingMTA``: a throwaway postfix instance that queues each message on disk, with its
``fsync``, and relays it to ``smtp-sink``; the run counts what reaches the sink).
``BENCH_SMTP_SINK_PATH`` names the binary when it is not ``/usr/sbin/smtp-sink``
nor on ``PATH``.

``smtp-sink`` is run with ``-d``: each message is written to a file of its own in a
throwaway folder, which is how the benchmark counts, dates and checks them (Message-ID,
identical re-sends). It never starts postfix's mail system.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from email.parser import BytesHeaderParser
from pathlib import Path

SMTP_SINK = "/usr/sbin/smtp-sink"
CHOICES = ("auto", "smtp-sink", "python", "postfix")
POSTFIX = "/usr/sbin/postfix"
# the lines smtp-sink writes before the message itself, in each dump file
_ENVELOPE_PREFIXES = (b"X-Client-", b"X-Helo-Args:", b"X-Mail-Args:", b"X-Rcpt-Args:")


class SinkUnavailable(RuntimeError):
    """The SMTP peer asked for cannot run on this machine."""


def smtp_sink_binary() -> str | None:
    """Path of postfix's ``smtp-sink``, or None when it is not installed."""
    named = os.environ.get("BENCH_SMTP_SINK_PATH")
    for candidate in (named, SMTP_SINK, shutil.which("smtp-sink")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def choose_peer(choice: str | None = None, installed: bool | None = None) -> str:
    """``smtp-sink`` or ``python``, from BENCH_SMTP_SINK and whether smtp-sink is installed
    (looked up when ``installed`` is None)."""
    choice = (choice if choice is not None else os.environ.get("BENCH_SMTP_SINK", "auto")).strip() or "auto"
    if choice not in CHOICES:
        raise SinkUnavailable(f"BENCH_SMTP_SINK={choice!r}: expected one of {', '.join(CHOICES)}")
    found = installed if installed is not None else smtp_sink_binary() is not None
    if choice == "python":
        return "python"
    if choice == "postfix" and not (found and os.access(POSTFIX, os.X_OK)):
        raise SinkUnavailable(
            "BENCH_SMTP_SINK=postfix needs postfix and smtp-sink "
            "(apt-get install --no-install-recommends postfix)"
        )
    if choice == "postfix":
        return "postfix"
    if not found:
        if choice == "smtp-sink":
            raise SinkUnavailable(
                "BENCH_SMTP_SINK=smtp-sink but smtp-sink is not installed "
                "(apt-get install --no-install-recommends postfix)"
            )
        return "python"
    return "smtp-sink"


def message_of(dump: bytes) -> bytes:
    """The message as relance sent it, without the lines ``smtp-sink -d`` writes before it.

    Those are the envelope (``X-Client-*``, ``X-Helo-Args``, ``X-Mail-Args``,
    ``X-Rcpt-Args``) then one ``Received:`` header (with its folded lines) naming a
    transaction id of the sink's own, which would make two identical sends differ.
    """
    lines = dump.splitlines(keepends=True)
    index = 0
    while index < len(lines) and lines[index].startswith(_ENVELOPE_PREFIXES):
        index += 1
    if index < len(lines) and lines[index].startswith(b"Received:"):
        index += 1
        while index < len(lines) and lines[index][:1] in (b" ", b"\t"):
            index += 1
    return b"".join(lines[index:])


def tally_of(messages: list[bytes]) -> dict[str, int]:
    """Copies per Message-ID: identical re-sends vs. same id with different bytes."""
    first: dict[str, bytes] = {}
    duplicated = conflicting = 0
    for raw in messages:
        message_id = BytesHeaderParser().parsebytes(raw).get("Message-ID", "").strip()
        if message_id not in first:
            first[message_id] = raw
        elif first[message_id] == raw:
            duplicated += 1
        else:
            conflicting += 1
    return {
        "received": len(messages),
        "unique": len(first),
        "duplicated": duplicated,
        "conflicting": conflicting,
        "missing_message_id": int("" in first),
    }


class CompiledSink:
    """postfix's ``smtp-sink`` on a free loopback port, each message dumped to a file."""

    name = "smtp-sink"

    def __init__(self, binary: str, port: int) -> None:
        self.binary, self.port = binary, port
        self.folder = Path(tempfile.mkdtemp(prefix="relance-bench-smtp-sink-"))
        self.process: subprocess.Popen | None = None
        self._wall_minus_monotonic = time.time() - time.monotonic()

    def start(self) -> CompiledSink:
        self.folder.chmod(0o1777)  # written by the unprivileged user smtp-sink switches to
        command = [self.binary, "-d", str(self.folder / "%H%M%S."), "-m", "1000"]
        if os.geteuid() == 0:  # smtp-sink refuses to keep super-user privileges
            command += ["-u", pwd.getpwnam("nobody").pw_name]
        command += [f"127.0.0.1:{self.port}", "256"]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
        if not _wait_listening(self.port, self.process, 10):
            error = self.process.stderr.read().decode(errors="replace").strip() if self.process.stderr else ""
            self.stop()
            raise SinkUnavailable(f"smtp-sink did not listen on 127.0.0.1:{self.port}: {error}")
        return self

    def stop(self) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(10)
            self.process = None
        shutil.rmtree(self.folder, ignore_errors=True)

    def pids(self) -> dict[str, int]:
        """Process groups whose CPU the benchmark accounts to the sink."""
        return {"smtp sink": self.process.pid} if self.process is not None else {}

    def _files(self) -> list[os.DirEntry]:
        with os.scandir(self.folder) as entries:
            return [entry for entry in entries if entry.is_file()]

    def count(self) -> int:
        """Messages received (a file is created for each transaction)."""
        return len(os.listdir(self.folder))

    def times(self) -> list[float]:
        """When each message was written, on the ``time.monotonic()`` clock."""
        return [entry.stat().st_mtime - self._wall_minus_monotonic for entry in self._files()]

    def messages(self) -> list[bytes]:
        return [message_of(Path(entry.path).read_bytes()) for entry in self._files()]

    def tally(self) -> dict[str, int]:
        return tally_of(self.messages())

    def unique(self) -> int:
        return self.tally()["unique"]


class PythonSink:
    """The chaos harness's aiosmtpd sink, in this process (its CPU is the bench's)."""

    name = "python (aiosmtpd)"

    def __init__(self) -> None:
        from bench.run import harness

        self._sink = harness.Sink()
        self.port = self._sink.port

    def start(self) -> PythonSink:
        self._sink.start()
        return self

    def stop(self) -> None:
        self._sink.stop()

    def pids(self) -> dict[str, int]:
        return {}

    def count(self) -> int:
        return self._sink.count()

    def times(self) -> list[float]:
        return self._sink.times()

    def tally(self) -> dict[str, int]:
        return self._sink.tally()

    def unique(self) -> int:
        return self._sink.unique()


class RelayingMTA:
    """A real mail server between relance and ``smtp-sink``: postfix, started for the run.

    A throwaway instance (its own configuration, queue and log folder, nothing of the
    machine's postfix used or started) listens on a free loopback port, accepts each
    message into its queue on disk (written and ``fsync``-ed before it answers 250, as any
    MTA must), and relays it at once to a ``CompiledSink``, where the run counts and checks
    the messages. Its processes (``master`` and its children: ``smtpd``, ``cleanup``,
    ``qmgr``, ``smtp``…) are one process group, accounted as ``mta``.
    """

    name = "postfix (real MTA) → smtp-sink"

    def __init__(self, binary: str, port: int, relay_port: int) -> None:
        self.port = port
        self.sink = CompiledSink(binary, relay_port)
        self.folder = Path(tempfile.mkdtemp(prefix="relance-bench-mta-"))
        self.config = self.folder / "etc"

    def _configure(self) -> None:
        self.folder.chmod(0o755)  # postfix's own user walks through it to its data folder
        for sub in ("etc", "queue", "data"):
            (self.folder / sub).mkdir(exist_ok=True)
        shutil.chown(self.folder / "data", "postfix")
        settings = {
            "compatibility_level": "3.6",
            "myhostname": "relance-bench-mta.localdomain",
            "mydestination": "",
            "inet_interfaces": "loopback-only",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "relayhost": f"[127.0.0.1]:{self.sink.port}",
            "queue_directory": str(self.folder / "queue"),
            "data_directory": str(self.folder / "data"),
            "meta_directory": "/etc/postfix",
            "shlib_directory": "/usr/lib/postfix",
            "maillog_file": str(self.folder / "maillog"),
            "maillog_file_prefixes": str(self.folder),
            "smtpd_relay_restrictions": "permit_mynetworks, reject",
            "smtp_tls_security_level": "none",
            "alias_maps": "",
            "alias_database": "",
            "biff": "no",
        }
        (self.config / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in settings.items()))
        (self.config / "master.cf").write_text(_master_cf(self.port))

    def start(self) -> RelayingMTA:
        if os.geteuid() != 0:
            raise SinkUnavailable("BENCH_SMTP_SINK=postfix starts its own postfix instance: run as root")
        self.sink.start()
        self._configure()
        started = subprocess.run(
            [POSTFIX, "-c", str(self.config), "start"], capture_output=True, text=True, check=False
        )
        if started.returncode != 0 or not _wait_port(self.port, 15):
            maillog = self.folder / "maillog"
            log = maillog.read_text(errors="replace") if maillog.exists() else ""
            self.stop()
            raise SinkUnavailable(f"postfix did not start on 127.0.0.1:{self.port}: {log.strip()[-300:]}")
        return self

    def stop(self) -> None:
        if self.config.exists():
            subprocess.run([POSTFIX, "-c", str(self.config), "abort"], capture_output=True, check=False)
        self.sink.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _master_pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError):
            return int((self.folder / "queue" / "pid" / "master.pid").read_text().strip())
        return None

    def pids(self) -> dict[str, int]:
        master = self._master_pid()
        return {**self.sink.pids(), **({"mta": os.getpgid(master)} if master else {})}

    def count(self) -> int:
        return self.sink.count()

    def times(self) -> list[float]:
        return self.sink.times()

    def tally(self) -> dict[str, int]:
        return self.sink.tally()

    def unique(self) -> int:
        return self.sink.unique()


def _master_cf(port: int) -> str:
    """The machine's ``master.cf`` with ``smtpd`` on ``port`` of the loopback and no chroot."""
    lines = []
    for line in Path("/etc/postfix/master.cf").read_text().splitlines():
        fields = line.split()
        if fields[:2] == ["smtp", "inet"]:
            line = f"127.0.0.1:{port} inet n - n - - smtpd"
        elif len(fields) >= 5 and not line.startswith(("#", " ", "\t")) and fields[4] == "y":
            fields[4] = "n"  # the queue folder is not a chroot jail
            line = " ".join(fields)
        lines.append(line)
    return "\n".join(lines) + "\n"


def _wait_port(port: int, seconds: float) -> bool:
    import socket

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5) as probe:
            probe.recv(64)
            return True
        time.sleep(0.1)
    return False


def make_sink(choice: str | None = None) -> CompiledSink | PythonSink | RelayingMTA:
    """The SMTP peer BENCH_SMTP_SINK asks for, not yet started."""
    from bench.run import harness

    chosen = choose_peer(choice)
    if chosen == "postfix":
        binary = smtp_sink_binary()
        assert binary is not None  # choose_peer said it is installed
        return RelayingMTA(binary, harness.free_port(), harness.free_port())
    if chosen == "smtp-sink":
        binary = smtp_sink_binary()
        assert binary is not None  # choose_peer said it is installed
        return CompiledSink(binary, harness.free_port())
    return PythonSink()


def _wait_listening(port: int, process: subprocess.Popen, seconds: float) -> bool:
    import socket

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5) as probe:
            probe.recv(64)  # the greeting: the server is up
            return True
        time.sleep(0.05)
    return False
