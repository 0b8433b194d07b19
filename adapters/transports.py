"""Channels: SMTP e-mail, e-mail as .eml files, letters as PDF files, registered letters.

File names come from the Message-ID, reduced to a safe character set, so nothing built
from invoice data can leave the outbox folder. Writing is atomic (temporary file, rename)
and idempotent: the same message always lands in the same file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import smtplib
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import parseaddr
from pathlib import Path

from handlers.ports import Outgoing, PermanentFailure, TransientFailure

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def safe_name(message_id: str, suffix: str) -> str:
    stem = _UNSAFE.sub("_", message_id.strip("<>"))[:150].lstrip(".") or "message"
    return f"{stem}{suffix}"


def write_atomic(folder: Path, name: str, content: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = (folder / name).resolve()
    if target.parent != folder.resolve():
        raise PermanentFailure(f"refusing to write outside {folder}: {name}")
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


@dataclass
class FileDrop:
    """Messages written as files under ``folder``, one per Message-ID.

    E-mails as ``.eml`` (embedded mode), letters as ``.pdf`` to print and post, registered
    letters as ``.pdf`` for a provider (LRAR / LRE) to collect. With ``tracking`` set, a
    tracking id derived from the Message-ID is returned, the same on a repeated drop; the
    provider's receipt comes back as a ``delivery.status`` event.
    """

    folder: Path
    suffix: str
    tracking: bool = False

    def transmit(self, message: Outgoing) -> str | None:
        write_atomic(self.folder, safe_name(message.message_id, self.suffix), message.content)
        if not self.tracking:
            return None
        return "DROP-" + hashlib.sha256(message.message_id.encode()).hexdigest()[:16].upper()


class _Connections(threading.local):
    """One SMTP connection per thread, with the instant it was last used."""

    client: smtplib.SMTP | None = None
    used_at: float = 0.0
    sent: int = 0


@dataclass
class SmtpMailer:
    """E-mail over SMTP with STARTTLS or implicit TLS, certificates checked.

    Each thread keeps its connection open between messages (one TCP and TLS handshake, one
    EHLO and login per connection instead of per message). A connection idle for longer
    than ``idle_seconds`` or that carried ``per_connection`` messages is closed and opened
    again; a kept connection the server dropped is noticed on MAIL FROM, before any of the
    message left, and the message is sent once more on a fresh connection.
    """

    host: str
    port: int
    tls: str  # starttls | tls | none
    user: str | None = None
    password: str | None = None
    timeout: float = 30.0
    ca_file: Path | None = None
    idle_seconds: float = 20.0
    per_connection: int = 500
    _local: _Connections = field(default_factory=_Connections, repr=False, compare=False)

    def _context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if self.ca_file is not None:
            context.load_verify_locations(cafile=str(self.ca_file))
        return context

    def _connect(self) -> smtplib.SMTP:
        client: smtplib.SMTP
        if self.tls == "tls":
            client = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=self._context())
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            if self.tls == "starttls":
                client.starttls(context=self._context())
        client.ehlo_or_helo_if_needed()
        if self.user:
            client.login(self.user, self.password or "")
        return client

    def _connection(self) -> tuple[smtplib.SMTP, bool]:
        """The thread's connection and whether it was kept from an earlier message."""
        local = self._local
        stale = time.monotonic() - local.used_at > self.idle_seconds
        if local.client is not None and (stale or local.sent >= self.per_connection):
            self.close()
        if local.client is not None:
            return local.client, True
        local.client, local.sent = self._connect(), 0
        return local.client, False

    def close(self) -> None:
        """Close this thread's connection (QUIT), if any."""
        client, self._local.client = self._local.client, None
        if client is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                client.quit()
            client.close()

    def transmit(self, message: Outgoing) -> str | None:
        sender = envelope_sender(message.content)
        try:
            self._send(sender, message)
        except smtplib.SMTPResponseException as exc:
            self._reset_after_refusal()
            detail = f"SMTP {exc.smtp_code}: {exc.smtp_error!r}"
            if 400 <= exc.smtp_code < 500:
                raise TransientFailure(detail) from exc
            raise PermanentFailure(detail) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            self._reset_after_refusal()
            raise PermanentFailure(f"recipient refused: {exc.recipients}") from exc
        except (TimeoutError, OSError, smtplib.SMTPException) as exc:
            self._drop()
            raise TransientFailure(f"SMTP {self.host}:{self.port}: {exc}") from exc
        return None

    def _send(self, sender: str, message: Outgoing) -> None:
        client, kept = self._connection()
        try:
            code, reply = client.mail(sender)
        except (smtplib.SMTPServerDisconnected, OSError):
            if not kept:
                raise
            self._drop()  # the server closed a kept connection: nothing of this message left
            client, kept = self._connection()
            code, reply = client.mail(sender)
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, reply, sender)
        code, reply = client.rcpt(message.recipient)
        if code not in (250, 251):
            raise smtplib.SMTPRecipientsRefused({message.recipient: (code, reply)})
        code, reply = client.data(message.content)
        if code != 250:
            raise smtplib.SMTPDataError(code, reply)
        self._local.used_at, self._local.sent = time.monotonic(), self._local.sent + 1

    def _reset_after_refusal(self) -> None:
        """After a refused command the connection may serve again once RSET is accepted."""
        client = self._local.client
        if client is None:
            return
        try:
            client.rset()
            self._local.used_at = time.monotonic()
        except (smtplib.SMTPException, OSError):
            self._drop()

    def _drop(self) -> None:
        client, self._local.client = self._local.client, None
        if client is not None:
            client.close()


def envelope_sender(content: bytes) -> str:
    """The address of the From header, read from the header block only."""
    header_block = content.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    parsed = _HEADERS.parsebytes(header_block + b"\r\n\r\n", headersonly=True)
    return parseaddr(str(parsed.get("From", "")))[1]


_HEADERS = BytesHeaderParser(policy=compat32)
