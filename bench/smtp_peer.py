"""The SMTP peer of the benchmarks: postfix's compiled ``smtp-sink`` when installed, else Python.

A benchmark that counts reminders per second must not spend its CPU budget receiving them.
The Python sink of the chaos harness (aiosmtpd, in the bench's own process) costs about
1.5 ms of CPU per message on the same cores as relance; postfix's ``smtp-sink`` (Debian
package ``postfix``, binary ``/usr/sbin/smtp-sink``) is a small C server that costs a
fraction of that. Both are started on a free loopback port and offer the same few methods
to the benchmark: ``port``, ``start``, ``stop``, ``count``, ``unique``, ``times``,
``tally`` and ``pids``.

``BENCH_SMTP_SINK`` chooses: ``auto`` (the default: ``smtp-sink`` when it is found, the
Python sink otherwise), ``smtp-sink`` (fails in one line when it is not installed) or
``python``. ``BENCH_SMTP_SINK_PATH`` names the binary when it is not ``/usr/sbin/smtp-sink``
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
CHOICES = ("auto", "smtp-sink", "python")
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


def make_sink(choice: str | None = None) -> CompiledSink | PythonSink:
    """The SMTP peer BENCH_SMTP_SINK asks for, not yet started."""
    from bench.run import harness

    if choose_peer(choice) == "smtp-sink":
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
