"""``make bench-smtp``: the SMTP transport alone, with and without PIPELINING.

BENCH_SMTP_MESSAGES e-mails (default 1000, about 2 kB each) are transmitted one after the
other by one ``SmtpMailer`` over its one kept connection to the loopback SMTP peer
(``bench/smtp_peer.py``: postfix's ``smtp-sink`` when installed, which offers PIPELINING),
once with the envelope pipelined (MAIL FROM, RCPT TO and DATA in one write, two round trips
per message) and once one command at a time (the extension ignored: four round trips),
BENCH_SMTP_ROUNDS times each (default 3), the two alternating so that both see the same
load. Printed per message: wall time and this thread's CPU time, the median of the rounds.

On loopback a round trip costs next to nothing; BENCH_SMTP_RTT_MS (default 0) puts a relay
in between, in this process, that holds every chunk for half that time in each direction,
as a relay across a network would be reached (each write of the client or the server
forwarded whole, after the delay).

Figures: docs/benchmarks.md ("SMTP: one connection, pipelined").
"""

from __future__ import annotations

import contextlib
import os
import socket
import statistics
import sys
import threading
import time
from datetime import UTC, datetime

from adapters.compose import email_bytes
from adapters.transports import SmtpMailer
from bench.smtp_peer import make_sink
from handlers.ports import Outgoing

MESSAGES = int(os.environ.get("BENCH_SMTP_MESSAGES", "1000"))
ROUNDS = int(os.environ.get("BENCH_SMTP_ROUNDS", "3"))
RTT_MS = float(os.environ.get("BENCH_SMTP_RTT_MS", "0"))
BODY = "Madame, Monsieur,\n\n" + "\n".join(
    f"Facture F-{n} du 2 mars 2026, échue le 20 mars 2026 : 1 234,56 € restant dus." for n in range(20)
)


class OneCommandAtATime(SmtpMailer):
    """The same transport, as if the server did not offer PIPELINING."""

    def _connect(self):  # type: ignore[no-untyped-def]
        client = super()._connect()
        client.esmtp_features.pop("pipelining", None)
        return client


def message(n: int) -> Outgoing:
    message_id = f"<bench-{n}@creancier.example>"
    content = email_bytes(
        sender="Relance <relance@creancier.example>",
        recipient=f"d{n}@debiteur.example",
        subject=f"Rappel : facture F-{n}",
        body_text=BODY,
        message_id=message_id,
        at=datetime(2026, 3, 27, 9, 0, tzinfo=UTC),
        step="reminder_1",
    )
    return Outgoing(
        message_id, "email", f"d{n}@debiteur.example", f"Rappel : facture F-{n}", content, f"D-{n}"
    )


class DelayingRelay:
    """A loopback TCP relay to ``port`` that forwards each chunk after ``delay`` seconds."""

    def __init__(self, port: int, delay: float) -> None:
        self.port, self.delay = port, delay
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listen_port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self.listener.accept()
                server = socket.create_connection(("127.0.0.1", self.port))
                for source, target in ((client, server), (server, client)):
                    threading.Thread(target=self._pipe, args=(source, target), daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while chunk := source.recv(65536):
                time.sleep(self.delay)
                target.sendall(chunk)
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.listener.close()


def one_round(mailer: SmtpMailer, messages: list[Outgoing]) -> tuple[float, float]:
    """Wall and CPU seconds per message of transmitting ``messages`` in turn."""
    mailer.transmit(messages[0])  # the connection, EHLO: not counted
    wall, cpu = time.perf_counter(), time.thread_time()
    for outgoing in messages[1:]:
        mailer.transmit(outgoing)
    count = len(messages) - 1
    return (time.perf_counter() - wall) / count, (time.thread_time() - cpu) / count


def main() -> int:
    sink = make_sink().start()
    relay = DelayingRelay(sink.port, RTT_MS / 2000) if RTT_MS else None
    port = relay.listen_port if relay else sink.port
    print(
        f"smtp peer: {sink.name}; {MESSAGES} messages of {len(message(0).content)} bytes, {ROUNDS} rounds, "
        f"round trip {'loopback' if not relay else f'{RTT_MS:g} ms through a delaying relay'}"
    )
    figures: dict[str, list[tuple[float, float]]] = {"pipelined": [], "one command at a time": []}
    try:
        messages = [message(n) for n in range(MESSAGES + 1)]
        for _ in range(ROUNDS):
            for label, kind in (("pipelined", SmtpMailer), ("one command at a time", OneCommandAtATime)):
                mailer = kind("127.0.0.1", port, "none", timeout=30)
                figures[label].append(one_round(mailer, messages))
                mailer.close()
        received = sink.count()
    finally:
        if relay is not None:
            relay.close()
        sink.stop()
    for label, rounds in figures.items():
        wall = statistics.median(w for w, _ in rounds) * 1000
        cpu = statistics.median(c for _, c in rounds) * 1000
        print(
            f"{label}: {wall:.3f} ms wall, {cpu:.3f} ms CPU of this thread per message (median of {ROUNDS})"
        )
    print(f"received by the peer: {received} (expected {2 * ROUNDS * (MESSAGES + 1)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
