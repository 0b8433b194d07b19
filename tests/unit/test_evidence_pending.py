"""A record about to be chained is hashed from what ``append`` noted, without reading its
payload back: the same text, the same sealed payload and the same hash as reading it."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from decimal import Decimal
from types import MappingProxyType, SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers.evidence import (
    PendingRecord,
    PersonalValue,
    _plain,
    append,
    canonical,
    canonical_noting_personal,
    hash_of,
    needs_salt,
    pending_hash,
    pending_needs_salt,
    seal,
    sealed_payload,
)

T0 = datetime(2026, 4, 14, 8, 0, tzinfo=UTC)
SALT = bytes(range(32))
PREV = "a" * 64

json_leaf = st.none() | st.booleans() | st.integers() | st.text(max_size=8) | st.decimals(allow_nan=False)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)
# generating nested values is slow on a busy machine: no time limit, no speed check
checked = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
keys = st.sampled_from(["address", "email", "name", "phone", "recipient", "to", "a", "zz", "é", "t", "to_"])


class Sink:
    def __init__(self) -> None:
        self.records: list[PendingRecord] = []

    def record_evidence(self, record: PendingRecord) -> None:
        self.records.append(record)

    def write_evidence(self) -> int:
        return len(self.records)


def appended(payload: dict[str, Any], debtor_id: str | None = "D-1") -> PendingRecord:
    sink = Sink()
    append(sink, "reminder.sent", T0, payload, debtor_id=debtor_id, invoice_numbers=["F-2", "F-1"])
    return sink.records[0]


def stored(pending: PendingRecord, digest: str) -> SimpleNamespace:
    return SimpleNamespace(
        seq=8, at=pending.at, kind=pending.kind, payload=pending.payload, prev_hash=PREV, hash=digest,
        debtor_id=pending.debtor_id, invoice_numbers=pending.invoice_numbers, case_id=pending.case_id,
        message_id=pending.message_id, version=4, creditor_id=pending.creditor_id,
    )  # fmt: skip


@checked
@given(st.dictionaries(keys, json_value, max_size=8))
def test_the_noted_text_is_the_canonical_json(payload):
    text, personal = canonical_noting_personal(payload)

    assert text == canonical(payload)
    assert personal is not None
    for noted in personal:
        assert canonical(noted.value) == text[noted.start : noted.end]


def reference_canonical(value: Any) -> str:
    """``canonical`` as it was written first: a ``json.dumps`` per call."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_plain)


@checked
@given(st.dictionaries(keys, json_value | st.datetimes(timezones=st.just(UTC)), max_size=8))
def test_the_encoder_made_once_writes_what_json_dumps_writes(payload):
    # ``canonical`` uses one ``JSONEncoder`` made at import: the text of json.dumps with the
    # same arguments, noted places included
    text, personal = canonical_noting_personal(payload)

    assert canonical(payload) == reference_canonical(payload) == text
    assert personal is not None
    for noted in personal:
        assert reference_canonical(noted.value) == text[noted.start : noted.end]


def test_a_payload_that_is_a_mapping_but_not_a_dict_is_written_as_a_dict():
    payload = MappingProxyType({"b": Decimal("1.50"), "a": [1, "x"]})

    assert canonical_noting_personal(payload) == ('{"a":[1,"x"],"b":"1.50"}', ())
    text, personal = canonical_noting_personal(MappingProxyType({"to": "a@b.c", "z": 1, "a": None}))
    assert text == '{"a":null,"to":"a@b.c","z":1}'
    assert personal == (PersonalValue("to", "a@b.c", 15, 22),)


def test_evidence_goes_to_a_unit_of_work_only_every_time():
    with pytest.raises(TypeError, match="dict"):
        append({}, "reminder.sent", T0, {"a": 1})
    appended({"a": 1})  # a sink's type is known from now on
    with pytest.raises(TypeError, match="list"):
        append([], "reminder.sent", T0, {"a": 1})


@checked
@given(st.dictionaries(keys, json_value, max_size=8), st.sampled_from(["D-1", None]))
def test_a_pending_record_hashes_as_its_stored_record_is_verified(payload, debtor_id):
    pending = appended(payload, debtor_id)

    assert pending_needs_salt(pending) == needs_salt(debtor_id, pending.payload)
    digest = pending_hash(PREV, 8, pending, SALT)
    assert digest == hash_of(stored(pending, digest), SALT)


def test_the_sealed_payload_replaces_each_personal_value_in_place():
    payload = {"to": "ana@example.org", "name": "Ana", "email": None, "phone": seal(SALT, "+33 1"), "n": [1]}
    pending = appended(payload)

    assert [noted.field for noted in pending.personal] == ["name", "to"]
    digest = pending_hash(PREV, 8, pending, SALT)
    sealed = sealed_payload(pending.payload, SALT)
    assert "ana@example.org" not in sealed and "Ana" not in sealed
    assert digest == hash_of(stored(pending, digest), SALT)


def test_a_pending_record_with_personal_values_and_no_salt_is_refused():
    pending = appended({"to": "ana@example.org"})

    assert pending_needs_salt(pending)
    with pytest.raises(ValueError, match="needs the debtor's salt"):
        pending_hash(PREV, 8, pending, None)


def test_a_record_made_without_noting_its_personal_values_hashes_the_same():
    noted = appended({"to": "ana@example.org", "amount": Decimal("10.50")})
    unnoted = PendingRecord(
        noted.kind, noted.at, noted.payload, noted.debtor_id, noted.invoice_numbers, None, None
    )

    assert pending_hash(PREV, 8, unnoted, SALT) == pending_hash(PREV, 8, noted, SALT)


def test_a_version_4_hash_is_the_sha256_of_its_lines():
    pending = appended({"to": "ana@example.org", "invoice_numbers": ["F-1", "F-2"]})
    digest = pending_hash(PREV, 8, pending, SALT)
    selected = canonical(
        {"case_id": None, "debtor_id": "D-1", "invoice_numbers": ["F-1", "F-2"], "message_id": None}
    )
    lines = ["v4", "default", PREV, "8", T0.isoformat(), "reminder.sent", selected]
    text = "\n".join([*lines, sealed_payload(pending.payload, SALT)])

    assert digest == hashlib.sha256(text.encode("utf-8")).hexdigest()
