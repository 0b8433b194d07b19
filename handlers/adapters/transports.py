"""Channels: SMTP e-mail, e-mail as .eml files, letters as PDF files, registered letters.

File names come from the Message-ID, reduced to a safe character set, so nothing built
from invoice data can leave the outbox folder. Writing is atomic (temporary file, rename)
and idempotent: the same message always lands in the same file.
"""

from __future__ import annotations

import hashlib
import os
import re
import smtplib
import ssl
import tempfile
from dataclasses import dataclass
from email import message_from_bytes
from email.policy import SMTP as SMTP_POLICY
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


@dataclass
class SmtpMailer:
    """E-mail over SMTP with STARTTLS or implicit TLS, certificates checked."""

    host: str
    port: int
    tls: str  # starttls | tls | none
    user: str | None = None
    password: str | None = None
    timeout: float = 30.0
    ca_file: Path | None = None

    def _context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if self.ca_file is not None:
            context.load_verify_locations(cafile=str(self.ca_file))
        return context

    def _connect(self) -> smtplib.SMTP:
        if self.tls == "tls":
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout,
                                    context=self._context())
        client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        if self.tls == "starttls":
            client.starttls(context=self._context())
        return client

    def transmit(self, message: Outgoing) -> str | None:
        parsed = message_from_bytes(message.content, policy=SMTP_POLICY)
        sender = str(parsed["From"])
        try:
            with self._connect() as client:
                if self.user:
                    client.login(self.user, self.password or "")
                refused = client.sendmail(sender, [message.recipient], message.content)
        except smtplib.SMTPResponseException as exc:
            detail = f"SMTP {exc.smtp_code}: {exc.smtp_error!r}"
            if 400 <= exc.smtp_code < 500:
                raise TransientFailure(detail) from exc
            raise PermanentFailure(detail) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            raise PermanentFailure(f"recipient refused: {exc.recipients}") from exc
        except (TimeoutError, OSError, smtplib.SMTPException) as exc:
            raise TransientFailure(f"SMTP {self.host}:{self.port}: {exc}") from exc
        if refused:
            raise PermanentFailure(f"recipient refused: {refused}")
        return None
