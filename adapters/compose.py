"""Turn rendered text into the exact bytes that leave: an RFC 5322 e-mail or a PDF letter."""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from datetime import datetime
from email import encoders, quoprimime
from email.charset import QP, Charset
from email.message import EmailMessage
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import SMTP, Compat32
from email.utils import format_datetime, quote
from pathlib import Path
from typing import Any

from handlers.statement import Statement


def new_email(
    *, sender: str, recipient: str, subject: str, message_id: str, at: datetime, **extra_headers: str
) -> EmailMessage:
    """An e-mail with relance's headers; ``extra_headers`` as X_Relance_Step="due" etc."""
    message = EmailMessage(policy=SMTP)
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = subject
    message["Date"] = format_datetime(at)
    message["Message-ID"] = message_id
    for name, value in extra_headers.items():
        message[name.replace("_", "-")] = value
    message["Auto-Submitted"] = "auto-generated"
    return message


def email_bytes(
    *,
    sender: str,
    recipient: str,
    subject: str,
    body_text: str,
    message_id: str,
    at: datetime,
    step: str,
    body_html: str | None = None,
    statement: Statement | None = None,
    reply_to: str | None = None,
) -> bytes:
    """A plain-text e-mail, or multipart/alternative (text first, HTML second) with body_html;
    with a ``statement``, multipart/mixed: that body, then the statement as a CSV attachment.

    Written directly, byte for byte what ``generated_email_bytes`` (the ``email`` package's
    MIME classes and generator) makes of the same arguments, at a fraction of its cost: each
    header folded by the same policy, the bodies encoded by the same functions, the parts
    and boundaries laid out as the generator lays them out. UTF-8 bodies sent as 8bit
    (quoted-printable when a line is too long for SMTP), non-ASCII headers as RFC 2047
    words. tests/unit/test_email_writer.py checks the identity over many shapes.
    """
    if statement is not None and not (statement.filename and statement.filename.isascii()):
        # an RFC 2231 file name, or none: rare enough to leave to the generator
        return generated_email_bytes(
            sender=sender,
            recipient=recipient,
            subject=subject,
            body_text=body_text,
            message_id=message_id,
            at=at,
            step=step,
            body_html=body_html,
            statement=statement,
            reply_to=reply_to,
        )
    digest = hashlib.sha256(message_id.encode()).hexdigest()[:32]
    content_type, headers, body = _text_part(body_text, _PLAIN)
    if body_html is not None:
        html = _text_part(body_html, _HTML)
        content_type, headers, body = _multipart(
            "alternative", "=_relance_" + digest, (content_type, headers, body), html
        )
    if statement is not None:
        content_type, headers, body = _multipart(
            "mixed", "=_relance_mixed_" + digest, (content_type, headers, body), _csv(statement)
        )
    head = (
        content_type,
        _MIME_VERSION,
        headers,
        _folded_from(sender),
        _folded("Reply-To", reply_to) if reply_to else b"",
        _header("To", recipient),
        _header("Subject", _subject_words(subject)),
        _date(at, at.utcoffset()),
        _header("Message-ID", message_id),
        _header("X-Relance-Step", step),
        _AUTO_SUBMITTED,
        _CRLF,
    )
    return b"".join((*head, *body))  # the one copy of the whole message: its parts joined once


# A MIME entity as the generator writes it: its Content-Type line, its other content
# headers (written after MIME-Version in a message, which only the outermost entity has),
# and its body, lines ended by CRLF, as pieces: a multipart's body is the pieces of its
# parts, joined once with the message (a 2 MB attachment is not copied part by part).
_Part = tuple[bytes, bytes, list[bytes]]
_CRLF = b"\r\n"
_LINE_END = re.compile(rb"\r\n|\r|\n")  # the generator's NLCRE: every line end becomes CRLF


def _text_part(text: str, content_type: bytes) -> _Part:
    """``MIMEText(text, subtype, _body_charset(text))`` as the generator writes it."""
    data = text.encode("utf-8")
    if len(data) > _LONGEST_LINE and _has_long_line(text):
        encoded = quoprimime.body_encode(data.decode("latin-1")).encode("ascii")
        return content_type, _QUOTED_PRINTABLE, [_LINE_END.sub(_CRLF, encoded)]
    return content_type, _SEVEN_BIT if data.isascii() else _EIGHT_BIT_CTE, [_LINE_END.sub(_CRLF, data)]


def _multipart(subtype: str, boundary: str, *parts: _Part) -> _Part:
    """``MIMEMultipart(subtype, boundary=boundary)`` of ``parts`` as the generator writes it."""
    dash = b"--" + boundary.encode("ascii")
    body = [dash, _CRLF]
    for index, (content_type, headers, part_body) in enumerate(parts):
        if index:
            body += (_CRLF, dash, _CRLF)
        body += (content_type, headers, _CRLF, *part_body)
    body += (_CRLF, dash, b"--", _CRLF)
    value = f'multipart/{subtype}; boundary="{boundary}"'
    return _WIRE.fold_binary("Content-Type", value), b"", body


def _csv(statement: Statement) -> _Part:
    """``_with_attachment``'s base64 text/csv part (a file name, in ASCII)."""
    disposition = f'attachment; filename="{quote(statement.filename)}"'
    headers = _BASE64 + _WIRE.fold_binary("Content-Disposition", disposition)
    data = statement.csv_bytes()
    # ``base64.encodebytes`` in blocks of whole lines (57 bytes a line of 76 characters):
    # the same lines, each block's line ends made CRLF, with no copy of the whole encoding
    body = [
        base64.encodebytes(data[start : start + _BASE64_BLOCK]).replace(b"\n", _CRLF)
        for start in range(0, len(data), _BASE64_BLOCK)
    ]
    return _CSV, headers, body


_BASE64_BLOCK = 57 * 1024  # bytes of the attachment encoded at a time: 1 024 lines


def _has_long_line(body: str) -> bool:
    """``_body_charset(body) is _QUOTED``, without encoding the lines that cannot be too
    long: a line of at most 247 characters has at most 988 octets in UTF-8."""
    lines = body.splitlines()
    if max(map(len, lines), default=0) * 4 <= _LONGEST_LINE:
        return False
    return any(len(line.encode("utf-8")) > _LONGEST_LINE for line in lines)


def _subject_words(text: str) -> str:
    """``encoded_words(text)``, cut on the encoded bytes instead of character by character:
    each word the longest run of whole characters that fits (39 octets, then 45)."""
    if text.isascii():
        return text
    data = text.encode("utf-8")
    words, start, room = [], 0, 39
    while start < len(data):
        end = start + room
        if end < len(data):
            while data[end] & 0xC0 == 0x80:  # a continuation byte: the cut goes before
                end -= 1
        words.append(_b_word(data[start:end]))
        start, room = end, 45
    return " ".join(words)


def _header(name: str, value: str) -> bytes:
    """``_WIRE.fold_binary(name, value)``; at once when the header fits on its line."""
    if len(name) + len(value) <= 76 and value.isascii() and "\n" not in value and "\r" not in value:
        return f"{name}: {value}\r\n".encode("ascii")  # what _Wire._fold writes for it
    return _WIRE.fold_binary(name, value)


@functools.lru_cache(maxsize=16)
def _date(at: datetime, offset: object) -> bytes:
    """The Date header; a batch's messages share their time. ``offset`` is in the key
    because equal instants in two time zones are equal datetimes, written differently."""
    return _WIRE.fold_binary("Date", format_datetime(at))


@functools.lru_cache(maxsize=64)
def _folded_from(sender: str) -> bytes:
    """The From header as written (one sender per configuration: worked out once)."""
    return _WIRE.fold_binary("From", _mailbox(sender))


@functools.lru_cache(maxsize=64)
def _folded(name: str, value: str) -> bytes:
    return _WIRE.fold_binary(name, value)


def generated_email_bytes(
    *,
    sender: str,
    recipient: str,
    subject: str,
    body_text: str,
    message_id: str,
    at: datetime,
    step: str,
    body_html: str | None = None,
    statement: Statement | None = None,
    reply_to: str | None = None,
) -> bytes:
    """``email_bytes`` built with the ``compat32`` MIME classes and the ``email`` package's
    generator: the reference the direct writer is checked against, and its path for what it
    does not write itself."""
    text = MIMEText(body_text, "plain", _body_charset(body_text))  # type: ignore[arg-type]  # a Charset is accepted
    if body_html is None:
        message: MIMEBase = text
    else:
        boundary = "=_relance_" + hashlib.sha256(message_id.encode()).hexdigest()[:32]
        message = MIMEMultipart("alternative", boundary=boundary)
        html = MIMEText(body_html, "html", _body_charset(body_html))  # type: ignore[arg-type]
        for part in (text, html):
            del part["MIME-Version"]
            message.attach(part)
    if statement is not None:
        message = _with_attachment(message, statement, message_id)
    message["From"] = _mailbox(sender)
    if reply_to:
        message["Reply-To"] = reply_to
    message["To"] = recipient
    message["Subject"] = encoded_words(subject)
    message["Date"] = format_datetime(at)
    message["Message-ID"] = message_id
    message["X-Relance-Step"] = step
    message["Auto-Submitted"] = "auto-generated"
    return message.as_bytes(policy=_WIRE)


def _with_attachment(body: MIMEBase, statement: Statement, message_id: str) -> MIMEBase:
    """multipart/mixed: the body, then the statement as a base64 text/csv attachment."""
    boundary = "=_relance_mixed_" + hashlib.sha256(message_id.encode()).hexdigest()[:32]
    mixed = MIMEMultipart("mixed", boundary=boundary)
    attachment = MIMEBase("text", "csv", charset="utf-8")
    attachment.set_payload(statement.csv_bytes())
    encoders.encode_base64(attachment)
    attachment.add_header("Content-Disposition", "attachment", filename=statement.filename)
    for part in (body, attachment):
        del part["MIME-Version"]
        mixed.attach(part)
    return mixed


class _Wire(Compat32):
    """``compat32`` with CRLF line ends and a quick path for ASCII headers.

    The standard path runs every header through ``email.header.Header``, the largest cost
    of building a message; ASCII values (everything relance writes, once encoded) are
    folded here at spaces, as ``Header`` would fold them.
    """

    def _fold(self, name: str, value: Any, sanitize: bool) -> str:
        if not isinstance(value, str) or not value.isascii() or "\n" in value or "\r" in value:
            return super()._fold(name, value, sanitize)  # type: ignore[misc]  # Compat32's own folding
        lines, line, limit = [], f"{name}:", self.max_line_length or 78
        for token in value.split(" "):
            if len(line) + 1 + len(token) > limit and line.strip():
                lines.append(line)
                line = ""
            line = f"{line} {token}"
        lines.append(line)
        return self.linesep.join(lines) + self.linesep


_WIRE = _Wire(linesep="\r\n", max_line_length=78)
_EIGHT_BIT = Charset("utf-8")
_EIGHT_BIT.body_encoding = None  # type: ignore[assignment]  # 8bit: readable in the .eml files, accepted by SMTP (8BITMIME)
_QUOTED = Charset("utf-8")
_QUOTED.body_encoding = QP


# The content headers every e-mail of the direct writer uses, folded once.
_MIME_VERSION = _WIRE.fold_binary("MIME-Version", "1.0")
_AUTO_SUBMITTED = _WIRE.fold_binary("Auto-Submitted", "auto-generated")
_PLAIN = _WIRE.fold_binary("Content-Type", 'text/plain; charset="utf-8"')
_HTML = _WIRE.fold_binary("Content-Type", 'text/html; charset="utf-8"')
_CSV = _WIRE.fold_binary("Content-Type", 'text/csv; charset="utf-8"')
_SEVEN_BIT = _WIRE.fold_binary("Content-Transfer-Encoding", "7bit")
_EIGHT_BIT_CTE = _WIRE.fold_binary("Content-Transfer-Encoding", "8bit")
_QUOTED_PRINTABLE = _WIRE.fold_binary("Content-Transfer-Encoding", "quoted-printable")
_BASE64 = _WIRE.fold_binary("Content-Transfer-Encoding", "base64")
_LONGEST_LINE = 990  # octets: longer lines are sent quoted-printable (SMTP allows 998)


def encoded_words(text: str) -> str:
    """``text`` as a header value: as it is when ASCII, else RFC 2047 encoded words.

    UTF-8, base64 ("B") encoding, cut between characters so that each word stays within
    75 characters (the first one short enough to share its line with a header name); the
    words are separated by spaces, where the header is folded.
    """
    if text.isascii():
        return text
    words: list[str] = []
    chunk = bytearray()
    room = 39  # 39 bytes -> 52 base64 characters + 12; later words 45 -> 60 + 12 = 72
    for char in text:
        encoded = char.encode("utf-8")
        if len(chunk) + len(encoded) > room:
            words.append(_b_word(bytes(chunk)))
            chunk.clear()
            room = 45
        chunk += encoded
    if chunk:
        words.append(_b_word(bytes(chunk)))
    return " ".join(words)


def _b_word(chunk: bytes) -> str:
    return f"=?utf-8?b?{base64.b64encode(chunk).decode('ascii')}?="


@functools.lru_cache(maxsize=64)
def _mailbox(sender: str) -> str:
    """The From header, folded by the standard policy (one sender per configuration: worked
    out once)."""
    header = EmailMessage(policy=SMTP)
    header["From"] = sender
    return SMTP.fold("From", header["From"])[len("From: ") :].rstrip("\r\n")


def _body_charset(body: str) -> Charset:
    """8bit unless a line is too long for SMTP (998 octets), then quoted-printable."""
    if any(len(line.encode("utf-8")) > 990 for line in body.splitlines()):
        return _QUOTED
    return _EIGHT_BIT


# DejaVu Sans (Latin, Greek, Cyrillic: every language of the EU), from the system's
# fonts-dejavu-core package; embedded (subset) in every letter.
FONT_DIRS = (
    Path("/usr/share/fonts/truetype/dejavu"),  # Debian, Ubuntu
    Path("/usr/share/fonts/dejavu-sans-fonts"),  # Fedora
    Path("/usr/share/fonts/dejavu"),  # Alpine, Arch
    Path("/usr/share/fonts/TTF"),  # Arch (older)
)
FONT = "dejavu"
_FONT_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf"}


class FontMissing(Exception):
    """The letters' Unicode font is not installed; the message says what to install."""


@functools.lru_cache(maxsize=1)
def letter_fonts() -> dict[str, Path]:
    """The DejaVu Sans files (regular, bold) the letters embed; FontMissing when absent."""
    for folder in FONT_DIRS:
        found = {style: folder / name for style, name in _FONT_FILES.items()}
        if all(path.is_file() for path in found.values()):
            return found
    raise FontMissing(
        "letters need the DejaVu Sans font (DejaVuSans.ttf, DejaVuSans-Bold.ttf): install "
        "fonts-dejavu-core (Debian, Ubuntu) or dejavu-sans-fonts (Fedora)"
    )
