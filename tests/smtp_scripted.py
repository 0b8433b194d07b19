"""A loopback SMTP server that follows a script: slow lines, dropped connections, chosen
greetings and extensions. For the faults aiosmtpd cannot be made to show."""

from __future__ import annotations

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
    received: list[bytes] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    connections: int = 0
    port: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    _server: socketserver.ThreadingTCPServer | None = None

    def start(self) -> ScriptedSmtp:
        script = self

        class Handler(socketserver.StreamRequestHandler):
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
            sender, recipients = "", []
            while line := handler.rfile.readline():
                verb = line[:4].decode("ascii", "replace").upper()
                if verb in ("EHLO", "HELO"):
                    extensions = [f"250-{e}" for e in self.extensions]
                    self._say(handler, "250-scripted", *extensions, "250 HELP")
                elif verb == "MAIL":
                    sender, recipients = line.decode("utf-8", "replace").strip(), []
                    self._say(handler, "250 OK")
                elif verb == "RCPT":
                    recipients.append(line.decode("utf-8", "replace").strip())
                    self._say(handler, "250 OK")
                elif verb == "DATA":
                    self._say(handler, "354 go ahead")
                    content = self._read_content(handler)
                    with self.lock:
                        self.received.append(content)
                        self.envelopes.append((sender, recipients))
                    if self.drop_after_data:
                        return
                    self._say(handler, "250 OK queued")
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
