"""The evidence chain: every action and fact, appended in the transaction that makes it.

Each record's hash covers its own canonical content and the previous record's hash, so
altering, removing or reordering a record breaks every hash after it.

Records have a version. Version 1 (records written before version 2) hashes the previous
hash, the sequence number, the time, the kind and the canonical payload. Version 2, written
since, also hashes the columns the dossier selects and shows a record by: its debtor, its
invoice numbers, its case and its message (``selectors``), so a record cannot be moved to
another debtor, invoice, case or message without breaking its hash.

Version 3, written since migration 0010, hashes like version 2 but covers the *sealed*
payload: the value of each personal field (``PERSONAL_FIELDS``: a name, an e-mail address,
a postal address, a phone number, a message's recipient) replaced by its HMAC-SHA256 under
a random salt of the record's debtor (``debtor_salts``). The stored payload keeps the
cleartext; erasing a debtor replaces it by the sealed values, which the hash already
covers, and deletes the salt: the chain still verifies, and the digests no longer lead
back to the values (docs/dossier.md#personal-data-in-the-chain).

Version 4, written since migration 0011 (one chain per creditor), hashes like version 3
after a line naming the record's creditor, so a record, or a whole chain, cannot be passed
off as another creditor's.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from itertools import repeat
from typing import Any, Protocol, cast, runtime_checkable

from handlers.conformance import conforms

GENESIS = "0" * 64
VERSION = 4  # the version of the records written now
DEFAULT_CREDITOR = "default"  # the chain of the records written before version 4
# the payload fields whose values are personal data of the debtor: sealed in version 3
PERSONAL_FIELDS = ("address", "email", "name", "phone", "recipient", "to")
SEALED_PREFIX = "hmac-sha256:"
_SEALED = re.compile(r"hmac-sha256:[0-9a-f]{64}")


def canonical(value: Any) -> str:
    """Deterministic JSON: sorted keys, no spaces, decimals and datetimes as strings."""
    return _encode(value)


def _plain(value: Any) -> str:
    if isinstance(value, Decimal | datetime):
        return str(value) if isinstance(value, Decimal) else value.isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"cannot put {type(value).__name__} in evidence")


# The encoder of ``canonical``, made once: ``json.dumps(value, sort_keys=True, ...)`` makes a
# new ``JSONEncoder`` with these very arguments at each call and returns its ``encode``
# (the others, ``skipkeys``, ``check_circular`` and ``allow_nan``, at their defaults in both).
# ``encode`` keeps no state between calls (the C encoder it uses is made per call): one
# encoder serves every thread.
_encode = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_plain).encode


def record_hash(prev_hash: str, seq: int, at: datetime, kind: str, payload: str) -> str:
    """The hash of a version 1 record: five parts joined by line feeds."""
    text = f"{prev_hash}\n{seq}\n{at.astimezone(UTC).isoformat()}\n{kind}\n{payload}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def selectors(
    debtor_id: str | None, invoice_numbers: Iterable[str] | None, case_id: int | None, message_id: str | None
) -> str:
    """The canonical JSON of the columns a record is selected and shown by, as stored (the
    invoice numbers are sorted when the record is added)."""
    return canonical(
        {
            "case_id": case_id,
            "debtor_id": debtor_id,
            "invoice_numbers": list(invoice_numbers) if invoice_numbers is not None else None,
            "message_id": message_id,
        }
    )


def record_hash_v2(prev_hash: str, seq: int, at: datetime, kind: str, selected_by: str, payload: str) -> str:
    """The hash of a version 2 record: ``v2``, then the parts of version 1 with the selectors
    (``selectors(...)``) before the payload, joined by line feeds."""
    text = f"v2\n{prev_hash}\n{seq}\n{at.astimezone(UTC).isoformat()}\n{kind}\n{selected_by}\n{payload}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def record_hash_v3(prev_hash: str, seq: int, at: datetime, kind: str, selected_by: str, sealed: str) -> str:
    """The hash of a version 3 record: the parts of version 2 after a ``v3`` line, with the
    sealed payload (``sealed_payload``) instead of the stored one."""
    text = f"v3\n{prev_hash}\n{seq}\n{at.astimezone(UTC).isoformat()}\n{kind}\n{selected_by}\n{sealed}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def record_hash_v4(
    creditor_id: str, prev_hash: str, seq: int, at: datetime, kind: str, selected_by: str, sealed: str
) -> str:
    """The hash of a version 4 record: ``v4`` and the creditor's id, then the parts of a
    version 3 record (without its ``v3`` line).

    The parts are hashed one after the other, not joined first: the same bytes, without a
    copy of a big payload (a catch-up's 20 000 invoice numbers) and of its UTF-8 encoding."""
    moment = at.astimezone(UTC).isoformat()
    digest = hashlib.sha256(f"v4\n{creditor_id}\n{prev_hash}\n{seq}\n{moment}\n{kind}\n".encode())
    digest.update(selected_by.encode("utf-8"))
    digest.update(b"\n")
    digest.update(sealed.encode("utf-8"))
    return digest.hexdigest()


def is_sealed(value: Any) -> bool:
    """Whether a personal field's value is already its sealed form (``hmac-sha256:HEX``)."""
    return isinstance(value, str) and _SEALED.fullmatch(value) is not None


def seal(salt: bytes, value: Any) -> str:
    """A personal value's sealed form: HMAC-SHA256 of its canonical JSON under the salt."""
    if is_sealed(value):
        return str(value)
    return SEALED_PREFIX + hmac.new(salt, canonical(value).encode("utf-8"), hashlib.sha256).hexdigest()


def cleartext_fields(payload: str) -> list[str]:
    """The personal fields of a canonical payload that still hold a cleartext value."""
    return list(_reading(payload)[1])


def _reading(payload: str) -> tuple[Any, tuple[str, ...]]:
    """A payload's JSON value and its personal fields holding a cleartext value. A record
    about to be chained is not read back (``pending_needs_salt``, ``_pending_sealed``): what
    reads here is the stored chain (``verify``, the dossier, erasure), a record once."""
    value = json.loads(payload)
    if not isinstance(value, dict):
        return value, ()
    return value, tuple(k for k in PERSONAL_FIELDS if value.get(k) is not None and not is_sealed(value[k]))


def sealed_payload(payload: str, salt: bytes | None) -> str | None:
    """The payload a version 3 hash covers: every personal value sealed under ``salt``.

    It is also what erasure stores instead of the payload. None when a cleartext value is
    there without its salt, or the payload is not canonical JSON (it was altered)."""
    value, fields = _reading(payload)
    if not fields:
        return payload  # hashed exactly as stored
    if salt is None or canonical(value) != payload:
        return None
    return canonical(value | {k: seal(salt, value[k]) for k in fields})


def needs_salt(debtor_id: str | None, payload: str) -> bool:
    """Whether a version 3 record needs its debtor's salt to be hashed: it names a debtor
    and has a personal value in cleartext (a record of no debtor is hashed as it is)."""
    return debtor_id is not None and bool(cleartext_fields(payload))


def hash_of(record: StoredRecord, salt: bytes | None = None) -> str | None:
    """What a stored record's hash must be, by its version; None for an unknown version,
    or a version 3 record whose personal values cannot be sealed (its salt is gone)."""
    version = record.version or 1  # not given: written before versions existed
    if version == 1:
        return record_hash(record.prev_hash, record.seq, record.at, record.kind, record.payload)
    selected_by = selectors(record.debtor_id, record.invoice_numbers, record.case_id, record.message_id)
    if version == 2:
        return record_hash_v2(
            record.prev_hash, record.seq, record.at, record.kind, selected_by, record.payload
        )
    if version not in (3, 4):
        return None
    sealed = _hashed_payload(record.debtor_id, record.payload, salt)
    if sealed is None:
        return None
    if version == 3:
        return record_hash_v3(record.prev_hash, record.seq, record.at, record.kind, selected_by, sealed)
    creditor = getattr(record, "creditor_id", None) or DEFAULT_CREDITOR
    return record_hash_v4(creditor, record.prev_hash, record.seq, record.at, record.kind, selected_by, sealed)


def _hashed_payload(debtor_id: str | None, payload: str, salt: bytes | None) -> str | None:
    if debtor_id is None:
        return payload
    try:
        return sealed_payload(payload, salt)
    except ValueError:  # not JSON any more: altered
        return None


def pending_hash(prev_hash: str, seq: int, pending: PendingRecord, salt: bytes | None = None) -> str:
    """The hash of a record about to be written (the current version); ``salt`` is its
    debtor's when ``pending_needs_salt`` says so."""
    selected_by = selectors(pending.debtor_id, pending.invoice_numbers, pending.case_id, pending.message_id)
    sealed = _pending_sealed(pending, salt)
    if sealed is None:
        raise ValueError(f"a {pending.kind} record of debtor {pending.debtor_id} needs the debtor's salt")
    return record_hash_v4(pending.creditor_id, prev_hash, seq, pending.at, pending.kind, selected_by, sealed)


def pending_needs_salt(pending: PendingRecord) -> bool:
    """``needs_salt`` of a record about to be written, from the cleartext personal values
    noted when it was added (``append``), without reading its payload back."""
    if pending.personal is None:
        return needs_salt(pending.debtor_id, pending.payload)
    return pending.debtor_id is not None and bool(pending.personal)


def _pending_sealed(pending: PendingRecord, salt: bytes | None) -> str | None:
    """``sealed_payload`` of a record about to be written, without parsing its payload:
    each cleartext personal value's text, whose place ``append`` noted, replaced by its
    sealed form; the same text as sealing the parsed payload and encoding it again."""
    if pending.personal is None:
        return _hashed_payload(pending.debtor_id, pending.payload, salt)
    if pending.debtor_id is None or not pending.personal:
        return pending.payload
    if salt is None:
        return None
    parts, done = [], 0
    for personal in pending.personal:
        parts += [pending.payload[done : personal.start], canonical(seal(salt, personal.value))]
        done = personal.end
    parts.append(pending.payload[done:])
    return "".join(parts)


@dataclass(frozen=True)
class PersonalValue:
    """A personal field's cleartext value in a canonical payload, and where its canonical
    text lies there (``payload[start:end]``)."""

    field: str
    value: Any
    start: int
    end: int


def canonical_noting_personal(payload: Mapping[str, Any]) -> tuple[str, tuple[PersonalValue, ...] | None]:
    """``canonical(payload)`` and its cleartext personal values with their places (None
    when a key is not a string: the places are then not noted).

    A payload without a cleartext personal value is encoded at once. Otherwise the text is
    made in sorted key order, as ``json.dumps`` with ``sort_keys`` writes a mapping: each
    run of keys between personal ones encoded together (a mapping of the run, its braces
    taken off), each personal value alone, where its place is noted: the same text."""
    if not all(map(isinstance, payload, repeat(str))):
        return canonical(payload), None
    noted = [k for k in PERSONAL_FIELDS if payload.get(k) is not None and not is_sealed(payload[k])]
    if not noted:
        return _encode(payload if type(payload) is dict else dict(payload)), ()
    parts: list[str] = []
    personal: list[PersonalValue] = []
    length = 1  # the text so far, with its "{"
    run: dict[str, Any] = {}
    for key in sorted(payload):
        if key not in noted:
            run[key] = payload[key]
            continue
        if run:
            parts.append(("," if parts else "") + _encode(run)[1:-1])
            length += len(parts[-1])
            run = {}
        head = ("," if parts else "") + _encode(key) + ":"
        text = _encode(payload[key])
        start = length + len(head)
        # sealed as read back from the text, as ``sealed_payload`` seals it
        personal.append(PersonalValue(key, json.loads(text), start, start + len(text)))
        parts += [head, text]
        length = start + len(text)
    if run:
        parts.append(("," if parts else "") + _encode(run)[1:-1])
    return "{" + "".join(parts) + "}", tuple(personal)


@runtime_checkable
class EvidenceSink(Protocol):
    """Where records go: the unit of work, which chains them when its transaction commits."""

    def record_evidence(self, record: PendingRecord) -> None: ...
    def write_evidence(self) -> int: ...


@dataclass(frozen=True)
class PendingRecord:
    """A fact to add to the chain; its sequence number and hashes are given at commit."""

    kind: str
    at: datetime
    payload: str  # canonical JSON
    debtor_id: str | None
    invoice_numbers: list[str]
    case_id: int | None
    message_id: str | None
    creditor_id: str = DEFAULT_CREDITOR  # whose chain: the unit of work's creditor sets it
    # its cleartext personal values and their places in the payload, noted by ``append``:
    # the record is then hashed without parsing its payload back; None: not noted
    personal: tuple[PersonalValue, ...] | None = None


def append(
    sink: object,
    kind: str,
    at: datetime,
    payload: dict[str, Any],
    *,
    debtor_id: str | None = None,
    invoice_numbers: Iterable[str] = (),
    case_id: int | None = None,
    message_id: str | None = None,
) -> None:
    """Add one record to the chain, as part of the unit of work's transaction.

    The unit of work chains and writes its records when the transaction commits: the chain
    head, which serialises every append, is then locked only for the last statements of the
    transaction and its commit. Records added in a savepoint that is rolled back are dropped
    with it.
    """
    at = at.astimezone(UTC)  # hashed exactly as the store gives it back
    text, personal = canonical_noting_personal(payload)
    _sink(sink).record_evidence(
        PendingRecord(
            kind, at, text, debtor_id, sorted(invoice_numbers), case_id, message_id, personal=personal
        )
    )


def write_pending(sink: object) -> int:
    """Chain and write the records added so far in this transaction; return how many.

    The unit of work does it when it commits; call it before reading the evidence table in
    a transaction that added to it.
    """
    return _sink(sink).write_evidence()


def _sink(candidate: object) -> EvidenceSink:
    """The unit of work behind a store session (every session the store makes is one)."""
    if not is_sink(candidate):
        raise TypeError(f"evidence is recorded in a unit of work, not in a {type(candidate).__name__}")
    return cast(EvidenceSink, candidate)


def is_sink(candidate: object) -> bool:
    """``isinstance(candidate, EvidenceSink)``, each type checked once (``conforms``)."""
    return conforms(candidate, EvidenceSink)


class StoredRecord(Protocol):
    """A record as the store gives it back."""

    @property
    def seq(self) -> int: ...
    @property
    def at(self) -> datetime: ...
    @property
    def kind(self) -> str: ...
    @property
    def payload(self) -> str: ...
    @property
    def prev_hash(self) -> str: ...
    @property
    def hash(self) -> str: ...
    @property
    def debtor_id(self) -> str | None: ...
    @property
    def invoice_numbers(self) -> list[str] | None: ...
    @property
    def case_id(self) -> int | None: ...
    @property
    def message_id(self) -> str | None: ...
    @property
    def version(self) -> int | None: ...


class StoredHead(Protocol):
    @property
    def seq(self) -> int: ...
    @property
    def hash(self) -> str: ...


@dataclass(frozen=True)
class ChainCheck:
    ok: bool
    records: int
    broken_seq: int | None = None
    reason: str | None = None
    head_hash: str | None = None  # hash of the last record checked, when the chain holds


def verify(
    records: Iterable[StoredRecord], head: StoredHead | None, salts: Mapping[str, bytes] | None = None
) -> ChainCheck:
    """Recompute the chain in order; name the first record that does not hold.

    A chain with records must have its head, and the head must be its last record: a
    missing head, or one that is not the last record, is a broken chain. ``salts`` are the
    debtors' salts (by debtor id) that version 3 records with personal values need.
    """
    prev, expected_seq, count = GENESIS, 1, 0
    for record in records:
        if record.seq != expected_seq:
            return ChainCheck(False, count, expected_seq, f"record {expected_seq} is missing")
        if record.prev_hash != prev:
            return ChainCheck(False, count, record.seq, "previous-hash link does not match")
        if hash_of(record, _salt_of(record, salts)) != record.hash:
            return ChainCheck(False, count, record.seq, _mismatch(record, salts))
        prev, expected_seq, count = record.hash, expected_seq + 1, count + 1
    if head is None and count:
        return ChainCheck(False, count, count, "the chain head is missing")
    if head is not None and head.seq > count:
        return ChainCheck(False, count, count + 1, "records after this one were removed")
    if head is not None and head.seq < count:
        return ChainCheck(False, count, head.seq + 1, "records after the chain head were added")
    if head is not None and head.hash != prev:
        return ChainCheck(False, count, count, "last record does not match the chain head")
    return ChainCheck(True, count, head_hash=prev if count else None)


def _salt_of(record: StoredRecord, salts: Mapping[str, bytes] | None) -> bytes | None:
    if record.version not in (3, 4) or record.debtor_id is None or not salts:
        return None
    return salts.get(record.debtor_id)


def _mismatch(record: StoredRecord, salts: Mapping[str, bytes] | None) -> str:
    """Why a record does not match: a version 3 record's missing salt is said as such."""
    try:
        salt_missing = (
            record.version in (3, 4)
            and needs_salt(record.debtor_id, record.payload)
            and _salt_of(record, salts) is None
        )
    except ValueError:
        salt_missing = False
    return "personal data without its debtor's salt" if salt_missing else "content does not match its hash"
