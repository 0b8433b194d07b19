"""A loopback SMTP server that follows a script: slow lines, dropped connections, chosen
greetings, extensions and answers, and the raw reads it made (to see which commands came
together, as PIPELINING sends them). For the faults aiosmtpd cannot be made to show."""

from __future__ import annotations

import io
import socket
import socketserver
import threading
import time
from dataclasses import dataclass, field


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    block_on_close = False  # a dripping session must not hold up the test's end


@dataclass
class ScriptedSmtp:
    """What the server does, and what it received (raw message bytes, envelopes)."""

    greeting: str = "220 scripted ESMTP"
    extensions: list[str] = field(default_factory=lambda: ["8BITMIME"])
    line_delay: float = 0.0  # seconds before every line the server writes
    drop_after_data: bool = False  # close the connection once the message is in, before the reply
    # "MAIL" / "RCPT" / "DATA": the answer to give instead of accepting. Without an accepted
    # MAIL, RCPT is answered 503; without an accepted RCPT, DATA is answered 554 (RFC 2920)
    answers: dict[str, str] = field(default_factory=dict)
    reads: list[bytes] = field(default_factory=list)  # each read from a client, as it came
    received: list[bytes] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    connections: int = 0
    port: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    _server: socketserver.ThreadingTCPServer | None = None

    def start(self) -> ScriptedSmtp:
        script = self

        class Handler(socketserver.StreamRequestHandler):
            def setup(self) -> None:
                super().setup()
                self.rfile = io.BufferedReader(_Recorded(self.connection, script))

            def handle(self) -> None:
                with script.lock:
                    script.connections += 1
                script._session(self)

        self._server = _Server(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def copies(self) -> int:
        """Messages whose whole content arrived (accepted or not)."""
        with self.lock:
            return len(self.received)

    def _say(self, handler: socketserver.StreamRequestHandler, *lines: str) -> None:
        for line in lines:
            if self.line_delay:
                time.sleep(self.line_delay)
            handler.wfile.write(line.encode() + b"\r\n")
            handler.wfile.flush()

    def _session(self, handler: socketserver.StreamRequestHandler) -> None:
        try:
            self._say(handler, self.greeting)
            if not self.greeting.startswith("2"):
                return
            sender, recipients = None, []
            while line := handler.rfile.readline():
                verb = line[:4].decode("ascii", "replace").upper()
                if verb in ("EHLO", "HELO"):
                    extensions = [f"250-{e}" for e in self.extensions]
                    self._say(handler, "250-scripted", *extensions, "250 HELP")
                elif verb == "MAIL":
                    sender, recipients = None, []
                    if verb in self.answers:
                        self._say(handler, self.answers[verb])
                        continue
                    sender = line.decode("utf-8", "replace").strip()
                    self._say(handler, "250 OK")
                elif verb == "RCPT":
                    if sender is None or verb in self.answers:
                        self._say(handler, self.answers.get(verb, "503 5.5.1 MAIL first"))
                        continue
                    recipients.append(line.decode("utf-8", "replace").strip())
                    self._say(handler, "250 OK")
                elif verb == "DATA":
                    if not recipients or verb in self.answers:
                        self._say(handler, self.answers.get(verb, "554 5.5.1 no valid recipients"))
                        continue
                    self._say(handler, "354 go ahead")
                    content = self._read_content(handler)
                    with self.lock:
                        self.received.append(content)
                        self.envelopes.append((sender or "", recipients))
                    sender, recipients = None, []
                    if self.drop_after_data:
                        return
                    self._say(handler, "250 OK queued")
                elif verb == "RSET":
                    sender, recipients = None, []
                    self._say(handler, "250 OK")
                elif verb == "QUIT":
                    self._say(handler, "221 bye")
                    return
                else:
                    self._say(handler, "250 OK")
        except OSError:
            return

    @staticmethod
    def _read_content(handler: socketserver.StreamRequestHandler) -> bytes:
        lines = []
        while (line := handler.rfile.readline()) not in (b".\r\n", b""):
            lines.append(line[1:] if line.startswith(b"..") else line)
        return b"".join(lines)


class _Recorded(io.RawIOBase):
    """A connection's reading end that keeps each read's bytes in ``script.reads``."""

    def __init__(self, connection: socket.socket, script: ScriptedSmtp) -> None:
        self.connection, self.script = connection, script

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:
        count = self.connection.recv_into(buffer)
        if count:
            with self.script.lock:
                self.script.reads.append(bytes(memoryview(buffer)[:count]))
        return count
