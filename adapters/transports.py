"""Channels: SMTP e-mail, e-mail as .eml files, letters as PDF files, registered letters.

File names come from the Message-ID, reduced to a safe character set, so nothing built
from invoice data can leave the outbox folder. Writing is atomic (temporary file, rename)
and idempotent: the same message always lands in the same file.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import os
import re
import smtplib
import socket
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import parseaddr
from pathlib import Path

from pydantic import SecretStr

from handlers.ports import (
    AddressUnusable,
    AmbiguousTransmission,
    Outgoing,
    PermanentFailure,
    RecipientRefused,
    TransientFailure,
)

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
    stage: str = "connect"  # where the current transaction is: see ``smtp_failure``
    watchdog: _Watchdog | None = None


class _Watchdog:
    """Cuts the connection when a whole SMTP transaction has run longer than its deadline.

    Socket timeouts bound each read, not a transaction: a server writing one line every few
    seconds would hold a thread for as long as it likes. When the deadline passes, the
    process's deadline thread (``_Deadlines``) shuts the socket down, so the blocked read
    returns at once.
    """

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self.client: smtplib.SMTP | None = None
        _DEADLINES.watch(self, seconds)

    def fire(self) -> None:
        self.expired = True
        sock = getattr(self.client, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def cancel(self) -> None:
        _DEADLINES.forget(self)


class _Deadlines:
    """One thread per process fires the deadlines of every thread's SMTP transaction.

    A timer thread started and stopped for each message cost about 80 µs of the process's
    CPU per message (half of it in the sending thread) and a thread start's wait. Here a
    transaction's deadline is an entry in a dict, removed when it ends; the thread sleeps
    until the earliest deadline (or, with none, for the longest deadline seen: one that
    starts meanwhile cannot end sooner), so it is woken only when a deadline is due before
    the instant it would wake anyway. A forked process starts its own thread on first use.
    """

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._changed = threading.Condition()
        self._due: dict[_Watchdog, float] = {}
        self._longest = 1.0  # seconds slept with no deadline to watch, at least
        self._wakes_at = 0.0  # monotonic instant the thread wakes; 0: not started
        self._started = False

    def watch(self, watchdog: _Watchdog, seconds: float) -> None:
        due = time.monotonic() + seconds
        with self._changed:
            if not self._started:
                self._started = True
                threading.Thread(target=self._run, name="relance-smtp-deadlines", daemon=True).start()
            self._due[watchdog] = due
            self._longest = max(self._longest, seconds)
            if due < self._wakes_at:
                self._changed.notify()

    def forget(self, watchdog: _Watchdog) -> None:
        with self._changed:
            self._due.pop(watchdog, None)

    def _run(self) -> None:
        with self._changed:
            while True:
                now = time.monotonic()
                for watchdog in [w for w, due in self._due.items() if due <= now]:
                    del self._due[watchdog]
                    watchdog.fire()
                self._wakes_at = min(self._due.values(), default=now + self._longest)
                self._changed.wait(self._wakes_at - now)


_DEADLINES = _Deadlines()


RECIPIENT_REFUSALS = frozenset({550, 551, 553})
"""RCPT TO answers that refuse the recipient's address itself: the debtor's bounce."""


def smtp_failure(stage: str, code: int, detail: str) -> TransientFailure | PermanentFailure:
    """What an SMTP refusal means, by who is at fault.

    Only RCPT TO answered 550, 551 or 553 is about the recipient (``RecipientRefused``);
    552 to RCPT TO is a full mailbox, temporary (RFC 5321, 4.5.3.1.10). Any other 5xx, on
    connect, login, MAIL FROM, RCPT TO or the message (530/535 login, 552 size, 554
    policy), is ours and permanent; every 4xx is temporary.
    """
    if stage == "rcpt" and code in RECIPIENT_REFUSALS:
        return RecipientRefused(detail, code=code)
    if 400 <= code < 500 or (stage == "rcpt" and code == 552):
        return TransientFailure(detail, code=code)
    return PermanentFailure(detail, code=code)


@dataclass
class SmtpMailer:
    """E-mail over SMTP with STARTTLS or implicit TLS, certificates checked.

    Each thread keeps its connection open between messages (one TCP and TLS handshake, one
    EHLO and login per connection instead of per message). A connection idle for longer
    than ``idle_seconds`` or that carried ``per_connection`` messages is closed and opened
    again; a kept connection the server dropped is noticed on MAIL FROM, before any of the
    message left, and the message is sent once more on a fresh connection. When the server
    offers PIPELINING (RFC 2920), MAIL FROM, RCPT TO and DATA leave in one write and their
    answers are read in order (one round trip instead of three); each refusal is classified
    at its own command as when they go one at a time.

    ``timeout`` bounds each read; ``deadline`` the whole transaction (connection, login,
    MAIL, RCPT, DATA and the answer). Failures are classified by ``smtp_failure``; a
    connection lost after the whole message was sent is an ``AmbiguousTransmission``.
    Addresses are used as given; a non-ASCII one goes with SMTPUTF8 when the server offers
    it, else with its domain in IDNA when only the domain is non-ASCII, else the message
    fails with ``AddressUnusable``.
    """

    host: str
    port: int
    tls: str  # starttls | tls | none
    user: str | None = None
    password: SecretStr | None = field(default=None, repr=False)
    timeout: float = 30.0
    ca_file: Path | None = None
    idle_seconds: float = 20.0
    per_connection: int = 500
    deadline: float = 120.0
    _local: _Connections = field(default_factory=_Connections, repr=False, compare=False)

    def __repr__(self) -> str:
        login = f", user={self.user!r}, password='***'" if self.user else ""
        return f"SmtpMailer({self.host}:{self.port}, tls={self.tls}{login})"

    __str__ = __repr__

    def _context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if self.ca_file is not None:
            context.load_verify_locations(cafile=str(self.ca_file))
        return context

    def _connect(self) -> smtplib.SMTP:
        self._local.stage = "connect"
        timeout = min(self.timeout, self.deadline)
        client: smtplib.SMTP
        if self.tls == "tls":
            client = smtplib.SMTP_SSL(timeout=timeout, context=self._context())
        else:
            client = smtplib.SMTP(timeout=timeout)
        client._host = self.host  # type: ignore[attr-defined]  # the name TLS checks; smtplib sets it only when given a host
        if self._local.watchdog is not None:
            self._local.watchdog.client = client
        try:
            code, reply = client.connect(self.host, self.port)
            if code != 220:
                raise smtplib.SMTPConnectError(code, reply)
            if self.tls == "starttls":
                client.starttls(context=self._context())
            client.ehlo_or_helo_if_needed()
            if self.user:
                self._local.stage = "login"
                self._login(client)
        except BaseException:
            client.close()
            raise
        return client

    def _login(self, client: smtplib.SMTP) -> None:
        """Log in; a password that is not ASCII goes as UTF-8 with AUTH PLAIN (RFC 4616).

        Nothing here may carry the password into an exception: smtplib encodes it as ASCII
        and its error would hold the whole string.
        """
        user, secret = self.user or "", self.password.get_secret_value() if self.password else ""
        if secret.isascii() and user.isascii():
            client.login(user, secret)
            return
        if "PLAIN" not in client.esmtp_features.get("auth", "").upper().split():
            raise PermanentFailure(
                f"SMTP {self.host}:{self.port}: the user name or password is not ASCII "
                "and the server offers no AUTH PLAIN to carry it as UTF-8"
            )
        token = base64.b64encode(b"\0" + user.encode() + b"\0" + secret.encode()).decode("ascii")
        code, reply = client.docmd("AUTH", "PLAIN " + token)
        if code not in (235, 503):  # 503: already authenticated
            raise smtplib.SMTPAuthenticationError(code, reply)

    def _connection(self) -> tuple[smtplib.SMTP, bool]:
        """The thread's connection and whether it was kept from an earlier message."""
        local = self._local
        stale = time.monotonic() - local.used_at > self.idle_seconds
        if local.client is not None and (stale or local.sent >= self.per_connection):
            self.close()
        if local.client is not None:
            if local.watchdog is not None:
                local.watchdog.client = local.client
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
        watchdog = self._local.watchdog = _Watchdog(self.deadline)
        try:
            self._send(sender, message)
        except smtplib.SMTPResponseException as exc:
            stage = self._local.stage
            self._reset_after_refusal() if stage not in ("connect", "login") else self._drop()
            detail = f"SMTP {exc.smtp_code} to {_STAGE_NAMES[stage]}: {exc.smtp_error!r}"
            raise smtp_failure(stage, exc.smtp_code, detail) from exc
        except (TimeoutError, OSError, smtplib.SMTPException) as exc:
            self._drop()
            raise self._lost(exc, expired=watchdog.expired) from exc
        finally:
            watchdog.cancel()
            self._local.watchdog = None
        return None

    def _lost(self, exc: BaseException, *, expired: bool) -> TransientFailure:
        """A connection lost, refused or cut by the deadline: ours, and temporary."""
        where = f"SMTP {self.host}:{self.port}"
        why = f"the transaction exceeded its deadline of {self.deadline:g} s" if expired else str(exc)
        if self._local.stage == "reply":
            return AmbiguousTransmission(
                f"{where}: connection lost after the message was sent, before the answer "
                f"(a copy may have been received): {why}"
            )
        return TransientFailure(f"{where}: {why}")

    def _send(self, sender: str, message: Outgoing) -> None:
        client, kept = self._connection()
        try:
            self._envelope(client, sender, message.recipient)
        except (smtplib.SMTPServerDisconnected, OSError):
            if not kept or self._local.stage != "mail":
                raise
            self._drop()  # the server closed a kept connection: nothing of this message left
            client, kept = self._connection()
            self._envelope(client, sender, message.recipient)
        self._content(client, message.content)
        self._local.used_at, self._local.sent = time.monotonic(), self._local.sent + 1

    def _envelope(self, client: smtplib.SMTP, sender: str, recipient: str) -> None:
        """MAIL FROM, RCPT TO and DATA, each accepted, or the first refusal raised; in one
        write when the server offers PIPELINING (RFC 2920), else one command at a time."""
        self._local.stage = "mail"
        address, options = self._mail_options(client, sender, recipient)
        to, _ = self._address(client, recipient)
        if client.has_extn("pipelining"):
            mail = " ".join([f"MAIL FROM:{_quoted(address)}", *options])
            self._pipelined(client, [mail, f"RCPT TO:{_quoted(to)}", "DATA"], utf8=bool(options))
            return
        self._accepted(client.mail(address, options), (250,))
        self._local.stage = "rcpt"
        self._accepted(client.rcpt(to), (250, 251))
        self._local.stage = "data"
        self._accepted(client.docmd("DATA"), (354,))

    def _pipelined(self, client: smtplib.SMTP, commands: list[str], *, utf8: bool) -> None:
        """Send the envelope's commands in one write, then read their answers in order.

        Every answer is read, even after a refusal, so the connection stays in step; the
        first refusal is the one raised, at its own stage (a RCPT TO refused is the
        recipient's bounce, the DATA refused after it only its consequence). A DATA
        accepted after a refusal is given an empty message (a lone dot), as RFC 2920 asks.
        """
        if any("\r" in command or "\n" in command for command in commands):
            raise ValueError(f"an SMTP command holds a line break: {commands!r}")  # as smtplib's putcmd
        self._local.stage = "mail"
        client.send("".join(f"{command}\r\n" for command in commands).encode("utf-8" if utf8 else "ascii"))
        refusal: tuple[str, int, bytes] | None = None
        for stage, accepted in (("mail", (250,)), ("rcpt", (250, 251)), ("data", (354,))):
            self._local.stage = stage
            try:
                code, reply = client.getreply()
            except (smtplib.SMTPServerDisconnected, OSError):
                if refusal is None:
                    raise
                break  # the refusal stands; RSET after it finds the connection gone
            if refusal is None and code not in accepted:
                refusal = (stage, code, reply)
            elif refusal is not None and code == 354:
                with contextlib.suppress(smtplib.SMTPException, OSError):
                    client.send(b".\r\n")
                    client.getreply()
        if refusal is not None:
            self._local.stage, code, reply = refusal
            raise smtplib.SMTPResponseException(code, reply)

    @staticmethod
    def _accepted(answer: tuple[int, bytes], codes: tuple[int, ...]) -> None:
        code, reply = answer
        if code not in codes:
            raise smtplib.SMTPResponseException(code, reply)

    def _mail_options(self, client: smtplib.SMTP, sender: str, recipient: str) -> tuple[str, list[str]]:
        """The sender's address for MAIL FROM and the options the addresses need (SMTPUTF8,
        BODY=8BITMIME); an address the server cannot carry raises before anything is sent."""
        address, utf8 = self._address(client, sender)
        utf8 = utf8 or self._address(client, recipient)[1]
        options = ["SMTPUTF8"] if utf8 else []
        if utf8 and client.has_extn("8bitmime"):
            options.append("BODY=8BITMIME")
        return address, options

    def _address(self, client: smtplib.SMTP, address: str) -> tuple[str, bool]:
        """The address to give the server, and whether it needs SMTPUTF8."""
        if address.isascii():
            return address, False
        if client.has_extn("smtputf8"):
            return address, True
        local, _, domain = address.rpartition("@")
        if local.isascii():
            try:
                return f"{local}@{domain.encode('idna').decode('ascii')}", False
            except UnicodeError:
                pass
        raise AddressUnusable(
            f"{address!r}: the address is not ASCII and SMTP {self.host}:{self.port} does not "
            "offer SMTPUTF8 (only a non-ASCII domain can be sent, as IDNA)"
        )

    def _content(self, client: smtplib.SMTP, content: bytes) -> None:
        """The message after DATA was accepted, then its answer; once the whole message is
        sent, a lost connection is ambiguous (stage ``reply``)."""
        self._local.stage = "data"
        payload = _DOT_LINE.sub(b"..", content)  # the same object when no line starts with a dot
        end = b".\r\n" if payload.endswith(b"\r\n") else b"\r\n.\r\n"
        if len(payload) < _JOINED_UP_TO:
            client.send(payload + end)  # one write
        else:  # no copy of a large message: its end follows in a second write
            client.send(payload)
            client.send(end)
        self._local.stage = "reply"
        code, reply = client.getreply()
        if code != 250:
            raise smtplib.SMTPResponseException(code, reply)

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


_DOT_LINE = re.compile(rb"(?m)^\.")
# a message up to this size is sent with its end in one write; a larger one in two, so that it
# is not copied whole to add five bytes
_JOINED_UP_TO = 64 * 1024
_STAGE_NAMES = {
    "connect": "the connection",
    "login": "the login",
    "mail": "MAIL FROM",
    "rcpt": "RCPT TO",
    "data": "DATA",
    "reply": "the message",
}


def envelope_sender(content: bytes) -> str:
    """The address of the From header, read from the header block only.

    The From field is parsed once per distinct field (a configuration has one sender):
    found by a scan of the header lines when each one before it is a plain field or its
    continuation, lines ended by CRLF, as in every message relance writes; anything else
    is parsed whole, as before."""
    header_block = _before(_before(content, b"\r\n\r\n"), b"\n\n")
    field = _from_field(header_block)
    if field is None:
        return _sender_of(header_block)
    return _sender_of_field(field)


def _before(content: bytes, separator: bytes) -> bytes:
    """What comes before the first ``separator`` (all of it when there is none), without a
    copy of what follows: the body of a large message is not duplicated to read its header."""
    end = content.find(separator)
    return content if end < 0 else content[:end]


def _from_field(header_block: bytes) -> bytes | None:
    """The lines of the first From field, when the parser would read every line before it
    as the same fields (else None); b"" when there is no From field."""
    if header_block.count(b"\n") != header_block.count(b"\r\n") or header_block.count(b"\r") != (
        header_block.count(b"\r\n")
    ):
        return None
    lines = header_block.split(b"\r\n")
    for index, line in enumerate(lines):
        if line[:5].lower() == b"from:":
            end = index + 1
            while end < len(lines) and lines[end][:1] in (b" ", b"\t"):
                end += 1
            return b"\r\n".join(lines[index:end])
        if not _FIELD_LINE.match(line):
            return None
    return b""


def _sender_of(header_block: bytes) -> str:
    parsed = _HEADERS.parsebytes(header_block + b"\r\n\r\n", headersonly=True)
    return parseaddr(str(parsed.get("From", "")))[1]


@functools.lru_cache(maxsize=64)
def _sender_of_field(field: bytes) -> str:
    return _sender_of(field)


_HEADERS = BytesHeaderParser(policy=compat32)
# smtplib's <address> of MAIL FROM and RCPT TO, parsed once per address (the sender's: once)
_quoted_parsed = functools.lru_cache(maxsize=1024)(smtplib.quoteaddr)
# a bare address of dot-atoms (RFC 5322), ASCII: what ``smtplib.quoteaddr`` gives it back
# within angle brackets, its parser finding no display name, no comment, nothing to drop
_PLAIN_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
)


def _quoted(address: str) -> str:
    """``smtplib.quoteaddr(address)``: a plain address (each recipient's, which a cache of
    the parsed ones would not hold) put within angle brackets without parsing it."""
    if _PLAIN_ADDRESS.fullmatch(address):
        return f"<{address}>"
    return _quoted_parsed(address)


# a field's first line (a name of printable characters but ':', then ':'), or a continuation
_FIELD_LINE = re.compile(rb"[\x21-\x39\x3b-\x7e]+:|[ \t]")
