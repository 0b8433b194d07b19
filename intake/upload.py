"""One file sent through the broker: what the ``import_document`` actor does with it.

The message names the file and carries its bytes in base64 (docs/import.md, "Through the
broker"). The file is written to a private temporary folder under its own name and imported
by ``import_files`` exactly as ``relance import FILE`` would: the same readers, creditor
rules, batches and kept rejections. It is kept under the source ``broker:NAME``. A message
delivered twice gives the same events, which are duplicates, the same bank entries, which
are known, and the same rejection, which is kept once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any, TextIO

import dramatiq
import structlog
from sqlalchemy import text

from adapters.publisher import QUEUE
from config.bootstrap import App
from intake.importing import import_files, json_line, not_kept_before, rejection_item
from intake.ingest import apply_items

log = structlog.get_logger("relance.import")

MAX_NAME_BYTES = 255  # the longest file name of common file systems


def import_upload(app: App, name: str, content: str, creditor: str | None = None) -> dict[str, int]:
    """Import the file ``name`` whose bytes are ``content`` in base64, for ``creditor`` (as
    ``relance import --creditor``) or the creditor its seller is; give the counts of
    ``relance import``. A message that is no file is kept as a rejection, never raised."""
    out = io.StringIO()
    file_name = safe_name(name) if isinstance(name, str) else None
    source = f"broker:{file_name or 'document'}"
    content = content if isinstance(content, str) else ""  # JSON of another type: no file
    data, refused = decoded(content, app.settings.import_max_bytes)
    if file_name is None:
        refused = f"file: {str(name)[:80]!r} is not a file name"
    with _one_at_a_time(app, source, content):
        if refused is not None:
            counts = _keep_refused(app, source, file_name or "document", content, refused, out)
        else:
            assert file_name is not None and data is not None
            counts = _import_bytes(app, file_name, data, creditor, source, out)
    log.info("import.document", file=file_name, source=source, creditor=creditor, **counts)
    return counts


def document_message(name: str, data: bytes, creditor: str | None = None) -> dramatiq.Message:
    """The broker message that has the ``import_document`` actor import the file ``name``."""
    kwargs = {} if creditor is None else {"creditor": creditor}
    content = base64.b64encode(data).decode("ascii")
    return dramatiq.Message(
        queue_name=QUEUE, actor_name="import_document", args=(name, content), kwargs=kwargs, options={}
    )


def send_files(broker: Any, files: Iterable[Path], creditor: str | None, limit: int, out: TextIO) -> int:
    """Send each file to the ``import_document`` actor, printing its message id; a file
    larger than ``limit`` is not sent, and printed. Give how many were not sent."""
    sent = refused = 0
    for path in files:
        if path.stat().st_size > limit:
            out.write(f"{path}: not sent: larger than {limit} bytes (RELANCE_IMPORT_MAX_BYTES)\n")
            refused += 1
            continue
        message = broker.enqueue(document_message(path.name, path.read_bytes(), creditor))
        out.write(f"{path}: sent as message {message.message_id}\n")
        sent += 1
    out.write(f"sent {sent}, not sent {refused}\n")
    return refused


def _import_bytes(
    app: App, file_name: str, data: bytes, creditor: str | None, source: str, out: TextIO
) -> dict[str, int]:
    with tempfile.TemporaryDirectory(prefix="relance-import-") as folder:
        path = Path(folder) / file_name
        path.write_bytes(data)
        return import_files(app, [path], out, creditor=creditor, named=lambda _: source, rejections_once=True)


@contextmanager
def _one_at_a_time(app: App, source: str, content: str) -> Iterator[None]:
    """On PostgreSQL, hold a lock on this file (its source and content) while it is
    imported: two deliveries of one message handled at once by two workers then run one
    after the other, and the second finds what the first did. SQLite writes one at a time."""
    if app.engine.dialect.name != "postgresql":
        yield
        return
    digest = hashlib.sha256(f"{source}\n{content}".encode("utf-8", "surrogatepass")).digest()
    key = int.from_bytes(digest[:8], "big", signed=True)
    with app.engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
        connection.commit()  # the lock is the session's: no transaction is left open
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            connection.commit()


def safe_name(name: str) -> str | None:
    """The last part of ``name`` (``/`` or ``\\`` separated), or None when that is no file
    name: empty, ``.`` or ``..``, with a NUL or a control character, or too long."""
    last = PurePosixPath(name.replace("\\", "/")).name
    if last in ("", ".", "..") or any(ord(c) < 32 for c in last):
        return None
    if len(last.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        return None
    return last


def decoded(content: str, limit: int) -> tuple[bytes | None, str | None]:
    """The bytes ``content`` holds in base64, or why there are none: not base64, or more
    than ``limit`` bytes (told before decoding them)."""
    encoded = "".join(content.split())  # line breaks are allowed, as in MIME
    if not encoded:
        return None, "file: content is not base64"
    if len(encoded) > 4 * ((limit + 2) // 3):
        return None, f"file: larger than {limit} bytes (RELANCE_IMPORT_MAX_BYTES)"
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return None, "file: content is not base64"
    if len(data) > limit:
        return None, f"file: larger than {limit} bytes (RELANCE_IMPORT_MAX_BYTES)"
    return data, None


def _keep_refused(
    app: App, source: str, file_name: str, content: str, reason: str, out: io.StringIO
) -> dict[str, int]:
    """Keep a message that gives no file as a rejection, once: its stand-in names the file
    and the size and SHA-256 of the content as sent (in base64)."""
    sent = content.encode("utf-8", "surrogatepass")
    stand_in = json_line(
        {
            "import_file": file_name,
            "base64_size": len(sent),
            "sha256": hashlib.sha256(sent).hexdigest(),
        }
    )
    counts = {"accepted": 0, "duplicate": 0, "rejected": 0}
    item = rejection_item(source, stand_in, reason)
    apply_items(app, not_kept_before(app, [item], counts), counts, out)
    return counts
